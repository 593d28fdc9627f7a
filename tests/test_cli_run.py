"""``replay run`` end to end through click, against the scripted mock server on 127.0.0.1."""

import csv
import io
import json
import sqlite3

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, SUPPORT_LOG, record, write_log
from replay.cli import cli


def invoke(*args, env=None):
    args = [str(a) for a in args]
    if args[0] == "run" and "--gates" not in args:
        args += ["--gates", NO_GATES]
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def adhoc(server, log, store_path, *extra):
    return invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "cand-1",
                  "--store", store_path, "--quiet", "--gates", NO_GATES, *extra)  # fmt: skip


def results(store_path, arm="candidate"):
    db = sqlite3.connect(store_path)
    db.row_factory = sqlite3.Row
    rows = db.execute("SELECT * FROM results WHERE arm = ? ORDER BY request_id", (arm,)).fetchall()
    return {row["request_id"]: dict(row) for row in rows}


def run_row(store_path):
    db = sqlite3.connect(store_path)
    return db.execute("SELECT id, status, message, planned FROM runs ORDER BY started_at DESC").fetchone()


def test_adhoc_run_stores_every_outcome(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"question {i}") for i in range(12)])
    result = adhoc(server, log, store_path)
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "candidate: 12 ok, 0 errors" in result.output
    rows = results(store_path)
    assert len(rows) == 12
    row = rows["r3"]
    assert row["status"] == "ok" and row["finish_reason"] == "stop" and row["text"].startswith("Thanks for asking")
    assert row["latency_ms"] >= 20 and 0 < row["ttft_ms"] < row["latency_ms"]
    assert row["prompt_tokens"] > 0 and row["tokens_estimated"] == 0 and row["attempts"] == 1
    params = json.loads(row["params_json"])
    assert params == {"model": "cand-1", "max_tokens": 50, "temperature": 0, "seed": 1234, "stream": True,
                      "stream_options": {"include_usage": True}}  # fmt: skip
    assert row["system_fingerprint"] == "fp_mock"
    sent = server.stats.bodies[0]
    assert sent["temperature"] == 0 and sent["seed"] == 1234 and sent["model"] == "cand-1"
    assert len(results(store_path, "logged")) == 12


@pytest.mark.parametrize(
    "directive, attempts, first_error",
    [
        ("[mock:500*2]", 3, "http_error"),
        ("[mock:429*1]", 2, "http_error"),
        ("[mock:503*1]", 2, "http_error"),
        ("[mock:drop*1]", 2, "connection_error"),
        ("[mock:truncate*1]", 2, "truncated_stream"),
    ],
)
def test_retries_recover_and_record_every_attempt(server, tmp_path, store_path, directive, attempts, first_error):
    log = write_log(tmp_path / "log.jsonl", [record("ok1", "fine"), record("flaky", f"help {directive}")])
    result = adhoc(server, log, store_path)
    assert result.exit_code == 0, result.output
    row = results(store_path)["flaky"]
    assert row["status"] == "ok" and row["attempts"] == attempts
    history = json.loads(row["attempts_json"])
    assert [a["number"] for a in history] == list(range(1, attempts + 1))
    assert history[0]["error_class"] == first_error and history[-1]["http_status"] == 200
    # backoff never counts as latency: the stored latency is the last attempt's alone
    assert row["latency_ms"] == pytest.approx(history[-1]["latency_ms"])


def test_retry_after_hint_is_honoured(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("limited", "hi [mock:429*1]")])
    assert adhoc(server, log, store_path).exit_code == 0
    first = json.loads(results(store_path)["limited"]["attempts_json"])[0]
    assert first["http_status"] == 429 and first["retry_after_s"] == pytest.approx(0.2)


def test_exhausted_retries_store_an_error_outcome(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("a", "ok"), record("bad", "x [mock:500]"), record("c", "[mock:400]")])
    result = adhoc(server, log, store_path, "--max-attempts", 2)
    assert result.exit_code == 0
    rows = results(store_path)
    assert rows["bad"]["status"] == "error" and rows["bad"]["http_status"] == 500 and rows["bad"]["attempts"] == 2
    assert rows["c"]["status"] == "error" and rows["c"]["attempts"] == 1  # a 400 is not retried
    assert "candidate: 1 ok, 2 errors" in result.output


def test_missing_usage_is_estimated(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("n", "count me [mock:nousage]")])
    assert adhoc(server, log, store_path).exit_code == 0
    row = results(store_path)["n"]
    assert row["tokens_estimated"] == 1 and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


@pytest.mark.parametrize("stream_flag", [[], ["--no-stream"]])
def test_tool_calls_are_reassembled(server, tmp_path, store_path, stream_flag):
    log = write_log(tmp_path / "log.jsonl", [record("t", "weather please [mock:tool]")])
    assert adhoc(server, log, store_path, *stream_flag).exit_code == 0
    row = results(store_path)["t"]
    calls = json.loads(row["tool_calls_json"])
    assert calls[0]["name"] == "lookup" and json.loads(calls[0]["arguments"]) == {"q": "weather please [mock"}
    assert row["finish_reason"] == "tool_calls"
    assert server.stats.bodies[0].get("stream") is (None if stream_flag else True)


@pytest.mark.parametrize("directive, needle", [("[mock:401]", "answered 401"), ("[mock:quota]", "exceeded your current quota")])
def test_fatal_answers_stop_the_run(server, tmp_path, store_path, directive, needle):
    log = write_log(tmp_path / "log.jsonl", [record("a", f"hi {directive}")] + [record(f"b{i}", "x") for i in range(3)])
    result = adhoc(server, log, store_path, "--concurrency", 1)
    assert result.exit_code == 3
    assert needle in result.stderr and "not retrying" in result.stderr
    assert "resume with: replay run --resume" in result.stderr
    assert server.stats.requests == 1  # stopped at once, no retry
    assert "a" not in results(store_path)  # not stored: a resume re-sends it
    assert run_row(store_path)[1] == "failed"


def test_dead_endpoint_is_an_input_error(tmp_path, store_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(5)])
    result = invoke("run", "--logs", log, "--candidate-url", f"http://127.0.0.1:{port}/v1", "--candidate-model", "m",
                    "--store", store_path, "--max-attempts", 1, "--quiet")  # fmt: skip
    assert result.exit_code == 2
    assert f"candidate endpoint http://127.0.0.1:{port}/v1 is unreachable" in result.stderr
    assert results(store_path) == {}  # nothing stored: resume will send them all


def test_budget_stops_dispatching(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", "word " * 400) for i in range(30)])
    # gpt-4o prices: each request is ~400 prompt tokens + 50 max output = ~$0.0015
    result = invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "gpt-4o",
                    "--budget", "0.01", "--concurrency", 1, "--store", store_path, "--quiet")  # fmt: skip
    assert result.exit_code == 3
    assert "budget $0.01 reached" in result.stderr
    status = run_row(store_path)[1]
    assert status == "budget_exhausted"
    spent = sum(r["cost_usd"] for r in results(store_path).values())
    assert 0 < spent <= 0.01
    assert len(results(store_path)) < 30


def test_fresh_baseline_sends_both_arms_with_the_same_parameters(make_server, tmp_path, store_path):
    prod, cand = make_server(latency_ms=10), make_server(latency_ms=10)
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(8)])
    result = invoke("run", "--logs", log, "--baseline", "fresh", "--production-url", prod.base_url,
                    "--production-model", "prod-1", "--candidate-url", cand.base_url, "--candidate-model", "cand-1",
                    "--store", store_path, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(results(store_path, "production")) == 8 and len(results(store_path, "candidate")) == 8
    assert results(store_path, "logged") == {}
    assert {b["model"] for b in prod.stats.bodies} == {"prod-1"} and {b["model"] for b in cand.stats.bodies} == {"cand-1"}

    def by_prompt(bodies):
        return {b["messages"][0]["content"]: {k: v for k, v in b.items() if k != "model"} for b in bodies}

    assert by_prompt(prod.stats.bodies) == by_prompt(cand.stats.bodies)


def test_api_key_is_sent_but_never_stored(server, tmp_path, store_path):
    secret = "sk-test-" + "s3cr3t" * 6
    log = write_log(tmp_path / "log.jsonl", [record("a", "hi"), record("b", "boom [mock:500]")])
    result = invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "m",
                    "--candidate-key-env", "MY_KEY", "--max-attempts", 1, "--store", store_path,
                    env={"MY_KEY": secret})  # fmt: skip
    assert result.exit_code == 0
    assert server.stats.authorization == {f"Bearer {secret}"}
    exported = invoke("export", "latest", "--store", store_path).stdout
    blobs = [open(path, "rb").read() for path in (store_path, store_path + "-wal") if __import__("os").path.exists(path)]
    for blob in blobs + [exported.encode(), result.output.encode()]:
        assert secret.encode() not in blob


def test_missing_key_variable_is_an_input_error(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("a")])
    result = adhoc(server, log, store_path, "--candidate-key-env", "NOT_SET_ANYWHERE")
    assert result.exit_code == 2
    assert result.stderr == "Error: candidate.api_key_env: the environment variable NOT_SET_ANYWHERE is not set\n"


def test_a_key_with_a_line_break_is_an_input_error_that_never_shows_the_key(server, tmp_path, store_path, monkeypatch):
    monkeypatch.setenv("KEY_WITH_NEWLINE", "sk-secret-123\r\n")
    log = write_log(tmp_path / "log.jsonl", [record("a")])
    result = adhoc(server, log, store_path, "--candidate-key-env", "KEY_WITH_NEWLINE")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: candidate.api_key_env: the value of KEY_WITH_NEWLINE contains a space, a line break or a control character\n"
    )
    assert invoke("runs", "--store", store_path).stdout == ""  # no run was created (the note goes to stderr)


def test_a_report_path_that_can_never_be_written_stops_the_run_before_it_starts(server, tmp_path, store_path):
    blocker = tmp_path / "results.csv"
    blocker.write_text("x")
    log = write_log(tmp_path / "log.jsonl", [record("a")])
    result = adhoc(server, log, store_path, "--report-json", str(blocker / "r.json"))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {blocker / 'r.json'}: cannot write the report ({blocker} is not a directory)\n"
    assert server.stats.requests == 0


def test_a_header_variable_that_is_not_set_names_the_arm_and_header(server, tmp_path, store_path, monkeypatch):
    monkeypatch.delenv("AZ_KEY_NOT_SET", raising=False)
    scenario = tmp_path / "s.yaml"
    log = write_log(tmp_path / "log.jsonl", [record("a")])
    scenario.write_text(f"name: t\nlogs: {log}\ncandidate: {{base_url: '{server.base_url}', model: m, "
                        "headers: {api-key: '${AZ_KEY_NOT_SET}'}}\n")  # fmt: skip
    result = invoke("run", str(scenario), "--store", store_path, "--gates", NO_GATES)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: candidate.headers.api-key: header 'api-key' needs the environment variable AZ_KEY_NOT_SET, which is not set\n"
    )
    assert invoke("runs", "--store", store_path).stdout == ""


def test_malformed_log_stops_before_sending(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("a"), "{oops", record("b")])
    result = adhoc(server, log, store_path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {log}:2: not valid JSON")
    assert len(result.stderr.strip().splitlines()) == 1
    assert server.stats.requests == 0


def test_skip_invalid_reports_the_count(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("a"), "{oops", record("a"), record("b")])
    result = adhoc(server, log, store_path, "--skip-invalid")
    assert result.exit_code == 0
    assert "skipped 2 invalid log line(s)" in result.stderr
    assert set(results(store_path)) == {"a", "b"}


def test_sampling_is_reproducible(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(100)])
    adhoc(server, log, store_path, "--sample", 0.3, "--seed", 5, "--max", 10)
    first = set(results(store_path))
    other = str(tmp_path / "other.db")
    adhoc(server, log, other, "--sample", 0.3, "--seed", 5, "--max", 10)
    assert len(first) == 10 and set(results(other)) == first


def test_resume_sends_only_what_is_missing(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(10)])
    assert adhoc(server, log, store_path).exit_code == 0
    db = sqlite3.connect(store_path)
    run_id = db.execute("SELECT id FROM runs").fetchone()[0]
    db.execute("DELETE FROM results WHERE arm = 'candidate' AND request_id IN ('r2', 'r7')")
    db.execute("UPDATE runs SET status = 'interrupted'")
    db.commit()
    before = server.stats.requests
    result = invoke("run", "--resume", "latest", "--store", store_path, "--quiet", "--gates", NO_GATES)
    assert result.exit_code == 0, result.output
    assert server.stats.requests - before == 2
    assert {b["messages"][0]["content"] for b in server.stats.bodies[before:]} == {"q2", "q7"}
    assert len(results(store_path)) == 10
    assert run_row(store_path)[:2] == (run_id, "completed")


def test_resume_rejects_overrides(server, store_path, tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record("a")])
    adhoc(server, log, store_path)
    result = CliRunner().invoke(cli, ["run", "--resume", "latest", "--rpm", "10", "--store", store_path, "--gates", NO_GATES])
    assert result.exit_code == 2 and "--resume takes no scenario" in result.stderr


def test_export_formats_and_runs_listing(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(3)])
    adhoc(server, log, store_path)
    lines = [json.loads(line) for line in invoke("export", "latest", "--store", store_path).stdout.splitlines()]
    assert len(lines) == 6 and {line["arm"] for line in lines} == {"candidate", "logged"}
    assert lines[0]["metadata"] == {"category": "a"} and isinstance(lines[0]["attempts"], list)
    rows = list(csv.DictReader(io.StringIO(invoke("export", "latest", "--format", "csv", "--store", store_path).stdout)))
    assert len(rows) == 6 and rows[0]["request_id"] == "r0"
    listing = [json.loads(line) for line in invoke("runs", "--json", "--store", store_path).stdout.splitlines()]
    assert listing[0]["status"] == "completed" and listing[0]["planned"] == 3 and listing[0]["outcomes"] == 3


def test_unknown_run_is_an_input_error(store_path):
    result = CliRunner().invoke(cli, ["export", "nope", "--store", store_path])
    assert result.exit_code == 2 and "no run 'nope'" in result.stderr


def test_logs_validate(tmp_path):
    good = invoke("logs", "validate", SUPPORT_LOG)
    assert good.exit_code == 0 and good.stdout == "ok: 160 records in 1 file(s)\n"
    bad = write_log(tmp_path / "bad.jsonl", [record("a"), "[]", record("a")])
    result = CliRunner().invoke(cli, ["logs", "validate", bad])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{bad}:2: expected a JSON object, got list",
        f"{bad}:3: duplicate id 'a' (first at {bad}:1)",
        "Error: 2 invalid line(s), 1 valid record(s)",
    ]


def test_an_empty_log_is_an_input_error_and_stores_no_run(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [])
    result = adhoc(server, log, store_path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {log}: the log is empty (no records)\n"
    assert invoke("runs", "--json", "--store", store_path).stdout == "" and server.stats.requests == 0


def test_a_sample_of_nothing_is_an_input_error(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("a"), record("b")])
    result = adhoc(server, log, store_path, "--sample", "0.000001")
    assert result.exit_code == 2
    assert result.stderr == ("Error: sample.rate: 1e-06 selects none of the 2 record(s) (seed 0);"
                             " raise it (--sample) to replay something\n")  # fmt: skip
    assert invoke("runs", "--json", "--store", store_path).stdout == ""


def test_a_record_over_the_cap_is_skipped_with_skip_invalid(server, tmp_path, store_path):
    big = record("big", "x" * (2 << 20))
    log = write_log(tmp_path / "log.jsonl", [record("a"), big, record("b")])
    refused = adhoc(server, log, store_path, "--max-record-mb", "1")
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"Error: {log}:2: record is 4.0 MB, over the 1 MB limit")  # prompt and logged answer
    result = adhoc(server, log, store_path, "--max-record-mb", "1", "--skip-invalid")
    assert result.exit_code == 0 and "skipped 1 invalid log line(s)" in result.stderr
    assert set(results(store_path)) == {"a", "b"}


def test_a_directory_of_logs_is_read(server, tmp_path, store_path):
    (tmp_path / "logs").mkdir()
    write_log(tmp_path / "logs" / "one.jsonl", [record("a")])
    write_log(tmp_path / "logs" / "two.jsonl", [record("b")])
    result = adhoc(server, str(tmp_path / "logs"), store_path)
    assert result.exit_code == 0, result.output
    assert set(results(store_path)) == {"a", "b"}


def test_a_segment_by_key_no_record_has_stops_before_sending(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("a"), record("b")])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"logs: {log}\ncandidate: {{base_url: {server.base_url}, model: m}}\nsegment_by: categroy\n")
    result = invoke("run", scenario, "--store", store_path, "--quiet")
    assert result.exit_code == 2
    assert result.stderr == f"Error: {scenario}: segment_by: no record has the metadata key 'categroy' (did you mean 'category'?)\n"
    assert server.stats.requests == 0
