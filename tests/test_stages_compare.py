"""replay.stages.compare: pairs compared as they are answered store what the report would compute."""

import asyncio
import random
import sqlite3

import orjson
import pytest
from click.testing import CliRunner

from conftest import NO_GATES, record, write_log
from replay.cli import cli
from replay.evaluate import evaluate, settings_for
from replay.pipeline import AnsweredPair, StageServices
from replay.stages import compare as compare_stage
from replay.stages import run_stages
from replay.stages.compare import CompareAsAnswered, Digests, compare_stored, side_of
from replay.store import Store
from replay.types import Completion, LogRecord, Outcome, ToolCall, Usage
from stored_runs import scenario_snapshot

SNAPSHOT = scenario_snapshot(compare={"ignore_paths": ["$.ts"]})


def answers():
    """Pairs that exercise every comparator: text, JSON, tool calls, refusals, errors, missing usage."""
    json_request = {"model": "m", "messages": [{"role": "user", "content": "extract"}],
                    "response_format": {"type": "json_object"}}  # fmt: skip
    plain = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}

    def ok(rid, arm, text, calls=(), refusal=None, finish="stop", usage=Usage(12, 4), cost=0.001):
        completion = Completion(text, tuple(calls), refusal, finish, usage, latency_ms=420.5, ttft_ms=80.25)
        return Outcome(rid, arm, "ok", completion, (), {"temperature": 0}, 200, cost_usd=cost)

    call = ToolCall("c1", "lookup", '{"order": 12, "when": "today"}')
    other_call = ToolCall("c9", "lookup", '{"when": "today", "order": 12.0}')
    pairs = [
        ("same", plain, ok("same", "logged", "Hi there."), ok("same", "candidate", "Hi there.")),
        ("reworded", plain, ok("reworded", "logged", "Your parcel ships Monday."),
         ok("reworded", "candidate", "The parcel will ship on Monday!")),
        ("json", json_request, ok("json", "logged", '{"a": 1, "ts": 5}'), ok("json", "candidate", '```json\n{"a": 2}\n```')),
        ("bad-json", json_request, ok("bad-json", "logged", '{"a": 1}'), ok("bad-json", "candidate", "{'a': 1")),
        ("tools", plain, ok("tools", "logged", None, [call], finish="tool_calls"),
         ok("tools", "candidate", None, [other_call], finish="tool_calls")),
        ("refused", plain, ok("refused", "logged", "Sure."), ok("refused", "candidate", "I can't help with that.")),
        ("refusal-field", plain, ok("refusal-field", "logged", "Sure."),
         ok("refusal-field", "candidate", None, refusal="no", finish="stop")),
        ("errored", plain, ok("errored", "logged", "Fine."),
         Outcome("errored", "candidate", "error", None, (), {}, 503, "http_error", "overloaded")),
        ("no-usage", plain, ok("no-usage", "logged", "A", usage=Usage()), ok("no-usage", "candidate", "B", cost=None)),
        ("cut", plain, ok("cut", "logged", "A long answer"), ok("cut", "candidate", "A long", finish="length")),
    ]
    return [(rid, request, {"category": "billing" if i % 2 else "shipping"}, base, cand)
            for i, (rid, request, base, cand) in enumerate(pairs)]  # fmt: skip


def stored_run(path, run_id):
    store = Store(str(path))
    store.create_run(run_id, "pipe", SNAPSHOT, "h")
    rows = answers()
    store.add_cases(run_id, [(i, LogRecord(rid, req, metadata=meta)) for i, (rid, req, meta, _, _) in enumerate(rows)])
    store.add_outcomes(run_id, [o for *_, base, cand in rows for o in (base, cand)])
    return store


def services(store, run_id, warnings, planned=10):
    async def pause(seconds):
        return None

    return StageServices(store, run_id, planned, pause, lambda: False, random.Random(0), lambda usd: None, warnings.append)


def stage_for(store):
    settings = settings_for(store.get_run("pipe-run"))
    digests = Digests(settings.compare_digest(), orjson.dumps(settings.comparator_digests()).decode())
    return settings, digests, CompareAsAnswered(settings.compare, digests, "logged")


def test_a_pair_compared_from_memory_measures_exactly_what_the_stored_pair_does(tmp_path):
    store = stored_run(tmp_path / "s.db", "pipe-run")
    settings, digests, stage = stage_for(store)
    ids = sorted(rid for rid, *_ in answers())
    from_store = compare_stored(store, "pipe-run", "logged", ids, settings.compare, digests)
    expected = {row["request_id"]: row for row in _rows(from_store)}
    store.db.execute("DELETE FROM comparisons")
    warnings = []
    stage.start(services(store, "pipe-run", warnings))
    for rid, request, metadata, base, cand in answers():
        stage.offer(AnsweredPair(rid, request, metadata, base, cand))
    asyncio.run(stage.finish())
    stored = {rid: orjson.loads(measures) for rid, measures in store.comparisons("pipe-run", digests.settings)}
    assert warnings == [] and sorted(stored) == ids
    for rid in ids:
        assert stored[rid] == {k: v for k, v in expected[rid].items() if k != "request_id"}, rid
    assert stored["tools"]["divergence"] < stored["errored"]["divergence"]  # real measures, not empty dicts


def _rows(compared):
    keys = list(compared.columns)
    return [{k: compared.columns[k][i] for k in keys if compared.columns[k][i] is not None}
            for i in range(len(compared.ids))]  # fmt: skip


def test_side_of_an_outcome_equals_the_side_read_from_its_stored_row(tmp_path):
    from replay.compare.base import ANSWER_COLUMNS, Side

    store = stored_run(tmp_path / "s.db", "pipe-run")
    rows = {(row[0], row[1]): row for row in store.answers("pipe-run", ("logged", "candidate"), ANSWER_COLUMNS)}
    for rid, _, _, base, cand in answers():
        for outcome in (base, cand):
            assert side_of(outcome) == Side.from_answer(rows[(rid, outcome.arm)]), (rid, outcome.arm)


def test_a_store_refusing_the_comparisons_costs_one_warning_and_nothing_else(tmp_path, monkeypatch):
    store = stored_run(tmp_path / "s.db", "pipe-run")
    _, _, stage = stage_for(store)
    monkeypatch.setattr(compare_stage, "WRITE_BATCH", 2)

    def locked(*args):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Store, "add_comparisons", locked)  # the stage's thread has a connection of its own
    warnings = []
    stage.start(services(store, "pipe-run", warnings))
    for rid, request, metadata, base, cand in answers():
        stage.offer(AnsweredPair(rid, request, metadata, base, cand))
    asyncio.run(stage.finish())
    assert warnings == [f"{store.path}: comparisons not stored (database is locked); the report computes them"]


def test_replay_run_leaves_the_report_nothing_to_compare(scripted, tmp_path, store_path, monkeypatch):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"question {i}") for i in range(40)])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: s\nlogs: {log}\ncandidate: {{base_url: '{scripted.base_url}', model: c, provider: scripted}}\n")
    result = CliRunner().invoke(cli, ["run", str(scenario), "--store", store_path, "--quiet", "--gates", NO_GATES],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    store = Store(store_path)
    run = store.get_run("latest")
    digest = settings_for(run).compare_digest()
    assert store.comparisons_with_digest(run.id, digest) == 40

    def no_more(*args, **kwargs):
        raise AssertionError("the report compared pairs the run had compared")

    monkeypatch.setattr(compare_stage, "compare_stored", no_more)
    evaluation = evaluate(store, run.id)
    assert evaluation.pairs == 40 and evaluation.metrics["similarity"].candidate.value == pytest.approx(1.0)


def test_run_stages_compares_against_the_baseline_the_run_uses():
    from replay.scenario_file import build_scenario
    from replay.settings import decision_from

    fresh = build_scenario({"name": "x", "logs": "l.jsonl", "baseline": "fresh",
                            "candidate": {"base_url": "http://127.0.0.1:9/v1", "model": "c"},
                            "production": {"base_url": "http://127.0.0.1:9/v1", "model": "p"}}, source="x.yaml")  # fmt: skip
    logged = build_scenario({"name": "x", "logs": "l.jsonl", "candidate": {"base_url": "http://127.0.0.1:9/v1", "model": "c"}},
                            source="x.yaml")  # fmt: skip
    for scenario, arm in ((fresh, "production"), (logged, "logged")):
        (stage,) = run_stages(scenario, decision_from(dict(scenario.decision)))
        assert isinstance(stage, CompareAsAnswered) and stage.base_arm == arm


@pytest.mark.parametrize("debugging", [True, False])
def test_a_comparator_that_fails_is_a_traceback_under_tests_and_one_warning_for_users(tmp_path, monkeypatch, debugging):
    store = stored_run(tmp_path / "s.db", "pipe-run")
    _, digests, stage = stage_for(store)

    def broken(*args, **kwargs):
        raise ValueError("a plugin comparator broke")

    monkeypatch.setattr(compare_stage, "measure_sides", broken)
    monkeypatch.setattr(compare_stage, "keep_tracebacks", lambda: debugging)
    warnings = []
    stage.start(services(store, "pipe-run", warnings))
    for rid, request, metadata, base, cand in answers():
        stage.offer(AnsweredPair(rid, request, metadata, base, cand))
    if debugging:
        with pytest.raises(ValueError, match="a plugin comparator broke"):
            asyncio.run(stage.finish())
    else:
        asyncio.run(stage.finish())
        assert warnings == ["comparing while replaying stopped (ValueError: a plugin comparator broke);"
                            " the report compares the pairs"]  # fmt: skip
    assert store.comparisons_with_digest("pipe-run", digests.settings) == 0


def test_a_store_that_is_not_a_file_is_compared_on_the_event_loop(tmp_path):
    """A second connection to an in-memory store would see another, empty, database."""
    store = stored_run(":memory:", "pipe-run")
    _, digests, stage = stage_for(store)
    stage.start(services(store, "pipe-run", []))
    for rid, request, metadata, base, cand in answers():
        stage.offer(AnsweredPair(rid, request, metadata, base, cand))
    asyncio.run(stage.finish())
    assert stage._thread is None and store.comparisons_with_digest("pipe-run", digests.settings) == len(answers())


def test_preparing_the_report_draws_the_resample_counts_for_the_runs_size(tmp_path):
    from replay.cli.run import PrepareReport
    from replay.stats import bootstrap

    bootstrap._WEIGHTS.pop((1234, bootstrap.BOOTSTRAP_SEED), None)
    preparing = PrepareReport()
    preparing.start(services(Store(str(tmp_path / "s.db")), "pipe-run", [], planned=1234))
    preparing.wait()
    assert bootstrap._WEIGHTS[(1234, bootstrap.BOOTSTRAP_SEED)].shape[1] == 1234
