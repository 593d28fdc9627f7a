"""``replay purge --older-than`` and ``replay runs delete``: every row of the removed runs goes
(cases, outcomes, comparisons, the judge's verdicts and the vectors only they used), the store is
compacted, and the removed text is in neither the file's bytes nor its WAL's; the runs kept, and
live runs, are untouched."""

import os
import sqlite3
import time

import pytest
from click.testing import CliRunner

from replay.cli import cli
from replay.owners import Owner
from replay.store import Store
from replay.types import PAIR_CANDIDATE, LogRecord
from stored_runs import golden_run, outcome

DAY = 86_400
OLD, NEW = "20261001-090000-aaaaaa", "20261130-090000-bbbbbb"


def marker(run_id, what):
    return f"MARKER-{run_id[-6:]}-{what}"


def add_run(store, run_id, started_at, n=20):
    """A run whose every kind of row holds text that names it: cases, both arms, comparisons, the
    judge's verdict and reason, an embedding, a review."""
    store.create_run(run_id, f"name-{run_id[-6:]}", {"name": "x", "candidate": {"model": "m"}}, "h")
    store.db.execute("UPDATE runs SET started_at = ?, ended_at = ?, status = 'completed', planned = ? WHERE id = ?",
                     (started_at, started_at + 60, n, run_id))  # fmt: skip
    cases = [(i, LogRecord(f"q{i}", {"messages": [{"role": "user", "content": marker(run_id, f"request{i}")}]},
                           metadata={"who": marker(run_id, "meta")})) for i in range(n)]  # fmt: skip
    store.add_cases(run_id, cases)
    store.add_outcomes(run_id, [outcome(f"q{i}", arm, marker(run_id, f"{arm}{i}"), 100.0)
                                for i in range(n) for arm in ("logged", "candidate")])  # fmt: skip
    store.add_comparisons(run_id, [(f"q{i}", "logged", "d", 0.5, f'{{"note": "{marker(run_id, "measure")}"}}', None)
                                   for i in range(n)])  # fmt: skip
    key = marker(run_id, "verdict-key")
    store.add_judgements(run_id, [(key, "candidate", marker(run_id, "reason"), 1, 0.001, "judge-m")],
                         [("q0", 0, True, key, None, 1, 0.001)])  # fmt: skip
    store.add_vectors("emb", [(marker(run_id, "digest"), 4, marker(run_id, "vector").encode())])
    store.add_pair_similarities(run_id, "emb", [("q0", marker(run_id, "digest"), marker(run_id, "digest"), 0.9)])
    store.add_review_items(run_id, [("item-" + run_id[-6:], "q0", "A")])
    store.add_reviews([(run_id, "item-" + run_id[-6:], "q0", "rev", "tie", marker(run_id, "comment"))])


@pytest.fixture
def store_path(tmp_path):
    path = str(tmp_path / "replay.db")
    store = Store(path)
    now = time.time()
    add_run(store, OLD, now - 40 * DAY)
    add_run(store, NEW, now - 2 * DAY)
    store.close()
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def raw(path):
    return b"".join(open(p, "rb").read() for p in (path, f"{path}-wal", f"{path}-shm") if os.path.exists(p))


def rows(path, run_id):
    db = sqlite3.connect(path)
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
              if any(col[1] == "run_id" for col in db.execute(f"PRAGMA table_info({name})"))]  # fmt: skip
    counts = {table: db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,)).fetchone()[0] for table in tables}
    counts["runs"] = db.execute("SELECT COUNT(*) FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    return {table: n for table, n in counts.items() if n}


def test_purge_removes_the_old_run_everywhere_and_its_text_from_the_files_bytes(store_path):
    assert b"MARKER-aaaaaa" in raw(store_path)  # the check below can see the text
    result = invoke("purge", "--older-than", "30d", "--store", store_path)
    assert result.exit_code == 0 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("deleted 1 run(s) started before ")
    assert lines[0].endswith(": 20 cases, 20 comparisons, 1 judge_pairs, 1 pair_similarities, 40 results,"
                             " 1 review_items, 1 reviews, 1 judge_verdicts, 1 embeddings")  # fmt: skip
    assert lines[1] == f"  {OLD}  name-aaaaaa  completed"
    assert lines[2].startswith("store compacted: ") and len(lines) == 3
    assert rows(store_path, OLD) == {}
    assert b"MARKER-aaaaaa" not in raw(store_path)
    assert os.path.getsize(f"{store_path}-wal") == 0
    kept = rows(store_path, NEW)
    assert kept["cases"] == 20 and kept["results"] == 40 and kept["comparisons"] == 20 and kept["runs"] == 1
    assert b"MARKER-bbbbbb-reason" in raw(store_path) and b"MARKER-bbbbbb-vector" in raw(store_path)


def test_runs_delete_removes_the_named_run(store_path):
    result = invoke("runs", "delete", NEW[:15], "--store", store_path)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == ("deleted 1 run(s): 20 cases, 20 comparisons, 1 judge_pairs, 1 pair_similarities,"
                                             " 40 results, 1 review_items, 1 reviews, 1 judge_verdicts, 1 embeddings")
    assert rows(store_path, NEW) == {} and rows(store_path, OLD)["results"] == 40
    assert b"MARKER-bbbbbb" not in raw(store_path) and b"MARKER-aaaaaa-candidate3" in raw(store_path)
    listed = invoke("runs", "--json", "--store", store_path)
    assert [line.split('"')[3] for line in listed.stdout.splitlines()] == [OLD]


def test_the_store_option_may_come_before_the_subcommand(store_path):
    assert invoke("runs", "--store", store_path, "delete", OLD).exit_code == 0
    assert rows(store_path, OLD) == {}


def test_a_cached_verdict_another_run_uses_is_kept(store_path):
    store = Store(store_path)
    shared = marker(OLD, "verdict-key")
    store.add_judgements(NEW, [], [("q1", 0, True, shared, None, 0, None)])
    store.close()
    assert invoke("runs", "delete", OLD, "--store", store_path).exit_code == 0
    assert Store(store_path, create=False).judge_verdict(shared) == ("candidate", marker(OLD, "reason"))


def test_dry_run_removes_nothing(store_path):
    before = raw(store_path)
    for args in (["purge", "--older-than", "5w", "--dry-run"], ["runs", "delete", OLD, NEW, "--dry-run"]):
        result = invoke(*args, "--store", store_path)
        assert result.exit_code == 0 and result.stderr.startswith("would delete ")
        assert "compacted" not in result.stderr
    assert "would delete 2 run(s): 40 cases," in result.stderr
    assert rows(store_path, OLD)["results"] == 40 and rows(store_path, NEW)["results"] == 40
    assert b"MARKER-aaaaaa" in raw(store_path) and len(raw(store_path)) >= len(before) - 4096


def test_nothing_old_enough_says_so(store_path):
    result = invoke("purge", "--older-than", "12w", "--store", store_path)
    assert result.exit_code == 0 and result.stderr.startswith("no run started before ")
    assert rows(store_path, OLD)["results"] == 40


def test_a_live_run_is_refused_by_delete_and_kept_by_purge(store_path):
    store = Store(store_path)
    store.db.execute("INSERT INTO run_owners VALUES (?, ?, ?, ?, ?)", (OLD, *Owner.this_process().values()))
    store.close()
    result = CliRunner().invoke(cli, ["runs", "delete", OLD, NEW, "--store", store_path])
    assert result.exit_code == 2
    assert result.stderr == f"Error: run {OLD} is being run by a live process: stop it first (nothing was removed)\n"
    assert rows(store_path, NEW)["results"] == 40
    result = invoke("purge", "--older-than", "1d", "--store", store_path)
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0] == f"kept run {OLD}: a live process is running it"
    assert result.stderr.splitlines()[1].startswith("deleted 1 run(s) started before ")
    assert rows(store_path, OLD)["results"] == 40 and rows(store_path, NEW) == {}


@pytest.mark.parametrize("value", ["30", "d", "-3d", "0h", "3y", "1.5.2d"])
def test_a_bad_duration_is_a_usage_error(store_path, value):
    result = CliRunner().invoke(cli, ["purge", "--older-than", value, "--store", store_path])
    assert result.exit_code == 2 and "is not a duration such as 30d, 12h, 2w, 90m or 45s" in result.stderr


@pytest.mark.parametrize("value, seconds", [("30d", 30 * DAY), ("12h", 12 * 3600), ("2w", 14 * DAY), ("1.5d", 1.5 * DAY),
                                            ("90m", 5400), ("45s", 45)])  # fmt: skip
def test_durations(value, seconds):
    from replay.cli.purge import Duration

    assert Duration().convert(value, None, None) == seconds


def test_an_unknown_run_is_one_line_and_exit_2(store_path):
    result = CliRunner().invoke(cli, ["runs", "delete", "nope", "--store", store_path])
    assert result.exit_code == 2 and result.stderr == f"Error: {store_path}: no run 'nope' (see 'replay runs')\n"


def test_a_golden_store_deleted_to_empty_lists_no_runs(tmp_path):
    path = tmp_path / "g.db"
    golden_run(path, n=10).close()
    assert invoke("runs", "delete", "latest", "--store", path).exit_code == 0
    result = invoke("runs", "--store", path)
    assert result.exit_code == 0 and result.stderr == f"no runs in {path}\n"
    assert Store(str(path), create=False).comparisons_with_digest("golden-run", "d", PAIR_CANDIDATE) == 0


def test_a_table_of_a_later_migration_is_cleaned_too(store_path):
    """Whatever table holds a run_id column (sampling weights, sessions...) loses the run's rows."""
    db = sqlite3.connect(store_path)
    db.execute("CREATE TABLE later_rows (run_id TEXT NOT NULL, note TEXT)")
    db.executemany("INSERT INTO later_rows VALUES (?, ?)", [(OLD, marker(OLD, "later")), (NEW, marker(NEW, "later"))])
    db.commit()
    db.close()
    result = invoke("runs", "delete", OLD, "--store", store_path)
    assert result.exit_code == 0 and ", 1 later_rows," in result.stderr
    assert rows(store_path, OLD) == {} and rows(store_path, NEW)["later_rows"] == 1
    assert b"MARKER-aaaaaa-later" not in raw(store_path)


def test_a_reader_holding_the_wal_is_said_to_keep_it(store_path):
    reader = sqlite3.connect(store_path)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM results").fetchone()  # a read transaction: the WAL cannot be reset
    try:
        result = invoke("runs", "delete", OLD, "--store", store_path)
    finally:
        reader.close()
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-1].endswith(
        "; another process has it open, so its WAL (which may still hold removed text) could not be truncated:"
        " run this again once that process is done")  # fmt: skip
    assert rows(store_path, OLD) == {}
