"""The disagreement ranking: the shortcut that skips pairs below the top N ranks exactly like a full sort."""

import random

import pytest

from replay.evaluate import top_disagreements
from replay.gates import SegmentSpec
from replay.metrics import Pairs


def brute_force(rows, top, category=None):
    chosen = [row for row in rows if row.get("divergence", 0) > 0
              and (category is None or row["metadata"].get("category") == category)]  # fmt: skip
    chosen.sort(key=lambda row: (-row["divergence"], row["request_id"]))
    return [(row["request_id"], row["divergence"]) for row in chosen[:top]]


@pytest.mark.parametrize("top", [1, 5, 40, None])
@pytest.mark.parametrize("segment", [None, "category=billing"])
def test_the_top_n_equals_a_full_sort_with_ties_and_segments(top, segment):
    rng = random.Random(7)
    rows = [
        {"request_id": f"r{i:04d}", "divergence": rng.choice([0, 0, 5.0, 12.5, 12.5, 40.0, rng.random() * 50]),
         "reasons": ["why"], "metadata": {"category": rng.choice(["billing", "shipping"])}}
        for i in range(400)
    ]  # fmt: skip
    rows[3].pop("divergence")  # a pair without a score is never ranked
    ranked = top_disagreements(Pairs(rows), SegmentSpec(by=("category",)), top, segment)
    expected = brute_force(rows, top, segment.split("=")[1] if segment else None)
    assert [(d.request_id, d.divergence) for d in ranked] == expected
    assert all(d.segment.startswith("category=") for d in ranked)


def counting_comparators(monkeypatch):
    """Wrap every registered comparator to count its calls, by name."""
    import collections

    from replay.compare import COMPARATORS

    calls = collections.Counter()
    for name, comparator in list(COMPARATORS.items()):
        def wrapped(*args, _name=name, _comparator=comparator):
            calls[_name] += 1
            return _comparator(*args)

        monkeypatch.setitem(COMPARATORS, name, wrapped)
    return calls


@pytest.mark.parametrize(("changed", "recomputed"), [
    ({"ignore_paths": ["order_id"]}, "structured"),
    ({"number_tolerance": 0.5, "key_fields": ["category"]}, "structured"),
    ({"refusal_phrases": ["Sorry"]}, "safety"),
    ({"policies": [{"name": "no_urgent", "pattern": "urgent"}]}, "safety"),
])  # fmt: skip
def test_changing_an_option_recomputes_only_the_comparator_that_reads_it(tmp_path, monkeypatch, changed, recomputed):
    from replay.compare import COMPARATORS
    from replay.evaluate import measure_table, settings_for
    from replay.settings import decision_from
    from replay.store import Store
    from stored_runs import golden_run

    golden_run(tmp_path / "g.db", n=48)
    store = Store(str(tmp_path / "g.db"))
    run = store.get_run("golden-run")
    before = measure_table(store, run, settings_for(run)).rows
    settings = decision_from({"compare": changed})
    calls = counting_comparators(monkeypatch)
    refreshed = measure_table(store, run, settings).rows
    assert dict(calls) == {recomputed: len(before)}
    assert store.comparisons_with_digest(run.id, settings.compare_digest()) == len(before)
    calls.clear()
    assert measure_table(store, run, settings).rows == refreshed and not calls  # stored: nothing recomputed
    store.db.execute("DELETE FROM comparisons")
    scratch = measure_table(store, run, settings).rows
    assert set(calls) == set(COMPARATORS) and refreshed == scratch  # the same measures as comparing afresh


def test_comparisons_stored_by_an_older_version_are_recomputed_whole(tmp_path, monkeypatch):
    """Rows without comparator digests (before m006) and rows whose digests disagree are compared afresh."""
    from replay.compare import COMPARATORS
    from replay.evaluate import measure_table, settings_for
    from replay.store import Store
    from stored_runs import golden_run

    golden_run(tmp_path / "g.db", n=24)
    store = Store(str(tmp_path / "g.db"))
    run = store.get_run("golden-run")
    before = measure_table(store, run, settings_for(run)).rows
    store.db.execute("UPDATE comparisons SET spec_digest = 'old', comparator_digests = NULL")
    calls = counting_comparators(monkeypatch)
    assert measure_table(store, run, settings_for(run)).rows == before
    assert dict(calls) == {name: len(before) for name in COMPARATORS}


def test_a_new_comparator_recomputes_every_pair_whole(tmp_path, monkeypatch):
    """Its measures exist in no stored row: refreshing only the changed options would leave them out."""
    from replay.compare import COMPARATOR_INFO, COMPARATORS, ComparatorInfo
    from replay.evaluate import measure_table, settings_for
    from replay.settings import decision_from
    from replay.store import Store
    from stored_runs import golden_run

    golden_run(tmp_path / "g.db", n=24)
    store = Store(str(tmp_path / "g.db"))
    run = store.get_run("golden-run")
    measure_table(store, run, settings_for(run))
    monkeypatch.setitem(COMPARATORS, "answer_length", lambda request, b, c, spec: {"c_chars": len(c.text or "")})
    monkeypatch.setitem(COMPARATOR_INFO, "answer_length", ComparatorInfo())
    calls = counting_comparators(monkeypatch)
    rows = measure_table(store, run, decision_from({"compare": {"ignore_paths": ["order_id"]}})).rows
    assert dict(calls) == {name: len(rows) for name in COMPARATORS} and all("c_chars" in row for row in rows)
