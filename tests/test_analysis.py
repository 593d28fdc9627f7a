"""``replay.open_store``: a store's runs and a run's pairs as DataFrames, read-only, with the
report's measures (a run recorded through ``replay run`` against the mock server on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

import replay
from conftest import NO_GATES, ROOT, record, write_log
from replay.cli import cli
from replay.errors import StoreError


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def recorded(server, tmp_path, store_path):
    """A run of five requests; the candidate's answers are the mock server's, the log's are its own."""
    records = [record(f"r{i}", f"question {i}", metadata={"category": "ab"[i % 2], "user": f"u{i}"}) for i in range(5)]
    records[2]["response"]["choices"][0]["message"]["content"] = "same"
    log = write_log(tmp_path / "log.jsonl", records[::-1])  # log order is not id order
    result = invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "cand-1",
                    "--store", store_path, "--quiet", "--gates", NO_GATES)  # fmt: skip
    assert result.exit_code == 0, result.output
    return store_path


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def stored(store_path, query, *args):
    db = sqlite3.connect(store_path)
    try:
        return db.execute(query, args).fetchall()
    finally:
        db.close()


def test_results_are_one_row_per_pair_with_both_sides_and_the_measures(recorded):
    with replay.open_store(recorded) as store:
        frame = store.results("latest")
    assert list(frame["request_id"]) == ["r4", "r3", "r2", "r1", "r0"] and list(frame["seq"]) == [0, 1, 2, 3, 4]
    assert list(frame["metadata.category"]) == ["a", "b", "a", "b", "a"] and frame.loc[0, "metadata.user"] == "u4"
    texts = dict(stored(recorded, "SELECT request_id, text FROM results WHERE arm = 'candidate'"))
    assert list(frame["candidate_text"]) == [texts[rid] for rid in frame["request_id"]]
    assert list(frame["baseline_text"]) == ["answer to question 4", "answer to question 3", "same",
                                            "answer to question 1", "answer to question 0"]  # fmt: skip
    assert set(frame["baseline_status"]) == set(frame["candidate_status"]) == {"ok"}
    assert list(frame["baseline_latency_ms"]) == [400.0] * 5 and list(frame["baseline_tokens_in"]) == [10] * 5
    latencies = dict(stored(recorded, "SELECT request_id, latency_ms FROM results WHERE arm = 'candidate'"))
    assert list(frame["candidate_latency_ms"]) == [latencies[rid] for rid in frame["request_id"]]
    assert frame["similarity"].between(0, 1).all() and frame["exact_match"].dtype == bool
    assert frame.attrs == {"run": frame.attrs["run"], "kind": "candidate", "baseline_arm": "logged", "notes": []}


def test_the_measures_equal_those_the_report_stores(recorded):
    with replay.open_store(recorded) as store:
        compared_by_the_run = store.results("latest")
    db = sqlite3.connect(recorded)
    db.execute("DELETE FROM comparisons")  # as a run whose report never ran
    db.commit()
    db.close()
    before = digest(recorded)
    with replay.open_store(recorded) as store:
        caught_up = store.results("latest")  # compared in memory, nothing written
    assert digest(recorded) == before and stored(recorded, "SELECT COUNT(*) FROM comparisons") == [(0,)]
    assert invoke("report", "latest", "--store", recorded).exit_code in (0, 1)
    measures = {rid: json.loads(text) for rid, text in stored(recorded, "SELECT request_id, measures_json FROM comparisons")}
    assert len(measures) == 5
    with replay.open_store(recorded) as store:
        read_back = store.results("latest")
    pd.testing.assert_frame_equal(caught_up, read_back)
    pd.testing.assert_frame_equal(compared_by_the_run, read_back)
    for _, row in read_back.iterrows():
        want = measures[row["request_id"]]
        assert (row["similarity"], row["exact_match"], row["divergence"], row["reasons"]) == (
            want["similarity"], want["exact_match"], want["divergence"], want["reasons"])
        assert row["candidate_latency_ms"] == want["c_latency_ms"]


def test_a_run_is_named_as_the_commands_name_it(recorded):
    with replay.open_store(recorded) as store:
        run_id = store.runs().loc[0, "id"]
        by_prefix = store.results(run_id[:10])
        pd.testing.assert_frame_equal(by_prefix, store.results(run_id))
        assert by_prefix.attrs["run"] == run_id
        with pytest.raises(StoreError, match=f"^{recorded}: no run 'nope' \\(see 'replay runs'\\)$"):
            store.results("nope")
        with pytest.raises(ValueError, match="kind must be 'candidate' or 'noise'"):
            store.results("latest", kind="both")


def test_runs_lists_every_run_newest_first(recorded, server, tmp_path):
    log = write_log(tmp_path / "second.jsonl", [record("x")])
    assert invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "cand-2",
                  "--store", recorded, "--quiet", "--gates", NO_GATES).exit_code == 0  # fmt: skip
    with replay.open_store(recorded) as store:
        runs = store.runs()
    ids = [row[0] for row in stored(recorded, "SELECT id FROM runs ORDER BY started_at DESC, id DESC")]
    assert list(runs["id"]) == ids and list(runs.columns) == [
        "id", "name", "status", "planned", "outcomes", "errors", "started", "ended", "seconds", "message"]
    assert list(runs["status"]) == ["completed", "completed"] and list(runs["planned"]) == [1, 5]
    assert list(runs["outcomes"]) == [1, 5] and list(runs["errors"]) == [0, 0]
    assert str(runs["started"].dtype) == "datetime64[us, UTC]" and (runs["ended"] >= runs["started"]).all()


def test_a_missing_store_is_an_error_that_creates_nothing(tmp_path):
    path = tmp_path / "none.db"
    with pytest.raises(StoreError, match="no store there"):
        replay.open_store(str(path))
    assert not path.exists()


def test_importing_replay_stays_light():
    code = "import sys, replay; print(sorted(m for m in ('pandas', 'numpy', 'replay.store', 'replay.analysis') if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
    assert callable(replay.open_store)
    with pytest.raises(AttributeError, match="module 'replay' has no attribute 'nope'"):
        replay.nope  # noqa: B018


def test_the_noise_floor_pairs_are_production_against_itself(tmp_path):
    from test_noise_floor import noisy_run

    noisy_run(tmp_path / "s.db", n=40, noise=10).close()
    with replay.open_store(str(tmp_path / "s.db")) as store:
        noise = store.results("noisy", kind="noise")
        candidate = store.results("noisy")
    assert list(noise["request_id"]) == [f"req-{i:03d}" for i in range(10)] and len(candidate) == 40
    assert noise.attrs["kind"] == "noise" and "noise_text" in noise and "candidate_text" not in noise
    texts = dict(stored(str(tmp_path / "s.db"), "SELECT request_id, text FROM results WHERE arm = 'noise'"))
    assert list(noise["noise_text"]) == [texts[rid] for rid in noise["request_id"]]
    assert list(noise["similarity"] == 1.0) == list(noise["noise_text"] == noise["baseline_text"])
