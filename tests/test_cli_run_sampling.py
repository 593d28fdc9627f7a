"""``replay run`` and ``replay plan`` with a time window, strata and dedupe, end to end through click
against the mock server on 127.0.0.1: what is sent, what is stored, and what the report says later
without the log."""

import json
import os
import sqlite3

import pytest

from click.testing import CliRunner

from conftest import NO_GATES, record, write_log
from replay.cli import cli


def invoke(*args):
    args = [str(a) for a in args]
    if args[0] == "run" and "--gates" not in args:
        args += ["--gates", NO_GATES]
    return CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"}).invoke(cli, args, catch_exceptions=False)


def timed_log(path):
    """30 records a day apart from 2026-11-01 (r0..r29), their categories a, a, b; r29 and r30 without a timestamp."""
    records = [record(f"r{i}", f"question {i}", timestamp=f"2026-11-{1 + i:02d}T12:00:00Z" if i < 29 else None,
                      metadata={"category": "aab"[i % 3]}) for i in range(31)]  # fmt: skip
    return write_log(path, records)


def adhoc(server, log, store_path, *extra):
    return invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "cand-1",
                  "--store", store_path, "--quiet", *extra)  # fmt: skip


def test_a_window_samples_only_its_records_and_the_report_states_the_mix_without_the_log(server, tmp_path, store_path):
    log = timed_log(tmp_path / "log.jsonl")
    scenario = tmp_path / "s.yaml"  # no strata: the mix is by the segment keys
    scenario.write_text(f"name: s\nlogs: {log}\ncandidate: {{base_url: '{server.base_url}', model: cand-1}}\n"
                        "segment_by: category\n")  # fmt: skip
    result = invoke("run", scenario, "--store", store_path, "--quiet", "--since", "2026-11-11",
                    "--until", "2026-11-21T00:00:00+00:00")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: sample.since/sample.until: 2 record(s) without a timestamp left out of the sample\n" in result.stderr
    db = sqlite3.connect(store_path)
    ids = {row[0] for row in db.execute("SELECT request_id FROM cases")}
    assert ids == {f"r{i}" for i in range(10, 20)} and server.stats.requests == 10
    os.remove(log)  # the report needs the store alone
    report = invoke("report", "latest", "--store", store_path, "--format", "markdown")
    assert report.exit_code == 0, report.output
    section = report.stdout[report.stdout.index("### Traffic mix"):report.stdout.index("### Segments")]
    assert section == (
        "### Traffic mix (log vs sample)\n\n"
        "| category | Log | Log share | Sample | Sample share |\n"
        "|:---|---:|---:|---:|---:|\n"
        "| a | 21 | 67.7% | 7 | 70.0% |\n"
        "| b | 10 | 32.3% | 3 | 30.0% |\n\n"
        "- Log: 31 records, 2026-11-01T12:00:00Z to 2026-11-29T12:00:00Z\n"
        "- Sample: 10 records, 2026-11-11T12:00:00Z to 2026-11-20T12:00:00Z\n"
        "- Window from 2026-11-11T00:00:00Z until 2026-11-21T00:00:00Z: 19 records outside it and 2 without a timestamp"
        " left out\n\n"
    )


def test_the_plan_counts_the_sample_the_run_would_send(tmp_path):
    log = timed_log(tmp_path / "log.jsonl")
    result = invoke("plan", "--logs", log, "--candidate-url", "http://127.0.0.1:9/v1", "--candidate-model", "m",
                    "--since", "2026-11-11", "--until", "2026-11-21", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["records"] == 31 and plan["sample"] == 10


def test_an_empty_window_is_one_line_and_sends_nothing(server, tmp_path, store_path):
    log = timed_log(tmp_path / "log.jsonl")
    result = adhoc(server, log, store_path, "--since", "2027-01-01")
    assert result.exit_code == 2
    assert result.stderr == ("Error: sample.since/sample.until: none of the 31 records read falls in the window from"
                             " 2027-01-01T00:00:00Z until now (2 have no timestamp); widen it (--since, --until) to replay"
                             " something\n")  # fmt: skip
    assert server.stats.requests == 0


def test_strata_and_dedupe_store_the_weights_and_the_allocation(server, tmp_path, store_path):
    # 12 records: category a (8, of which r0..r3 ask the same question) and b (4)
    records = [record(f"r{i}", "same question" if i < 4 else f"question {i}", metadata={"category": "a" if i < 8 else "b"})
               for i in range(12)]  # fmt: skip
    log = write_log(tmp_path / "log.jsonl", records)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: s\nlogs: {log}\ncandidate: {{base_url: '{server.base_url}', model: cand-1}}\n"
                        "sample: {stratify_by: category, dedupe: true}\n")  # fmt: skip
    result = invoke("run", scenario, "--store", store_path, "--quiet")
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(store_path)
    weights = dict(db.execute("SELECT request_id, weight FROM cases"))
    assert len(weights) == 9 and sorted(weights.values()) == [1] * 8 + [4] and server.stats.requests == 9
    assert {rid for rid, weight in weights.items() if weight == 4} <= {"r0", "r1", "r2", "r3"}
    mix = json.loads(db.execute("SELECT mix_json FROM run_mix").fetchone()[0])
    assert (mix["sampled"], mix["replayed"]) == (12, 9)
    assert mix["tables"][0]["values"] == [{"value": "a", "log": 8, "sample": 8}, {"value": "b", "log": 4, "sample": 4}]


def test_a_key_too_fine_to_stratify_by_is_one_line(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", metadata={"user": f"u{i}"}) for i in range(120)])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: s\nlogs: {log}\ncandidate: {{base_url: '{server.base_url}', model: c}}\n"
                        "sample: {stratify_by: user}\n")  # fmt: skip
    result = invoke("run", scenario, "--store", store_path, "--quiet")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {scenario}: sample.stratify_by: user has more than 100 distinct values in the log;"
                             " stratify by a coarser key\n")  # fmt: skip
    assert server.stats.requests == 0


def test_dedupe_counts_each_replayed_request_with_its_weight_in_the_report(server, tmp_path, store_path):
    # production failed on a request sent 6 times; 6 other requests answered: 12 records, 7 distinct requests
    stuck = [record(f"s{i}", "stuck prompt", status=500, error="upstream failed") for i in range(6)]
    log = write_log(tmp_path / "log.jsonl", stuck + [record(f"r{i}", f"question {i}") for i in range(6)])
    result = adhoc(server, log, store_path, "--dedupe")
    assert result.exit_code == 0, result.output
    assert server.stats.requests == 7
    report = json.loads(invoke("report", "latest", "--store", store_path, "--format", "json").stdout)
    error_rate = report["metrics"]["error_rate"]
    assert error_rate["n"] == 7 and error_rate["baseline"]["value"] == pytest.approx(6 / 12)  # unweighted: 1 / 7
    assert error_rate["candidate"]["value"] == 0.0 and error_rate["flips"]["fail_to_pass"] == 6
    assert (report["mix"]["sampled"], report["mix"]["replayed"], report["mix"]["dedupe"]) == (12, 7, True)
    terminal = invoke("report", "latest", "--store", store_path).stdout
    assert ("Dedupe: 7 distinct requests replayed stood for 12 sampled records, each counted with its weight (its"
            " copies) in every metric Top disagreements") in " ".join(terminal.split())  # however the terminal wraps it
