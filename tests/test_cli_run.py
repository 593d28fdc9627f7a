"""``replay run`` end to end through click, against the scripted mock server on 127.0.0.1, or, where
only the engine is under test (retries, fatal answers, budget, resume), the scripted in-process provider."""

import csv
import io
import json
import os
import re
import sqlite3

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, SUPPORT_LOG, record, write_log
from scripted_provider import fail
from replay.cli import cli


def invoke(*args, env=None):
    args = [str(a) for a in args]
    if args[0] == "run" and "--gates" not in args:
        args += ["--gates", NO_GATES]
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def adhoc(server, log, store_path, *extra):
    return invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "cand-1",
                  "--store", store_path, "--quiet", "--gates", NO_GATES, *extra)  # fmt: skip


def scripted_run(script, log, store_path, *extra, model="cand-1"):
    """``replay run`` of a scenario whose candidate is the in-process scripted provider."""
    scenario = os.path.join(os.path.dirname(log), "scripted.yaml")
    with open(scenario, "w", encoding="utf-8") as handle:
        handle.write(f"name: scripted\nlogs: {log}\ncandidate: {{base_url: '{script.base_url}', model: {model}, provider: scripted}}\n")
    return invoke("run", scenario, "--store", store_path, "--quiet", "--gates", NO_GATES, *extra)


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
    "failures, first_error",
    [
        ([fail(500), fail(500)], "http_error"),
        ([fail(429)], "http_error"),
        ([fail(503)], "http_error"),
        ([fail(None, error_class="connection_error")], "connection_error"),
        ([fail(None, error_class="truncated_stream")], "truncated_stream"),
    ],
)
def test_retries_recover_and_record_every_attempt(scripted, tmp_path, store_path, failures, first_error):
    attempts = len(failures) + 1
    scripted.on("help", *failures)
    log = write_log(tmp_path / "log.jsonl", [record("ok1", "fine"), record("flaky", "help")])
    result = scripted_run(scripted, log, store_path)
    assert result.exit_code == 0, result.output
    row = results(store_path)["flaky"]
    assert row["status"] == "ok" and row["attempts"] == attempts
    history = json.loads(row["attempts_json"])
    assert [a["number"] for a in history] == list(range(1, attempts + 1))
    assert history[0]["error_class"] == first_error and history[-1]["http_status"] == 200
    # backoff never counts as latency: the stored latency is the last attempt's alone
    assert row["latency_ms"] == pytest.approx(history[-1]["latency_ms"])


def test_retry_after_hint_is_honoured(scripted, tmp_path, store_path):
    scripted.on("hi", fail(429, wait_s=0.2))
    log = write_log(tmp_path / "log.jsonl", [record("limited", "hi")])
    assert scripted_run(scripted, log, store_path).exit_code == 0
    first = json.loads(results(store_path)["limited"]["attempts_json"])[0]
    assert first["http_status"] == 429 and first["retry_after_s"] == pytest.approx(0.2)


def test_exhausted_retries_store_an_error_outcome(scripted, tmp_path, store_path):
    scripted.always("x", fail(500)).on("bad request", fail(400, retry=False))
    log = write_log(tmp_path / "log.jsonl", [record("a", "ok"), record("bad", "x"), record("c", "bad request")])
    result = scripted_run(scripted, log, store_path, "--max-attempts", 2)
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


@pytest.mark.parametrize("failure, needle", [
    (fail(401, "invalid key", fatal=True), "answered 401"),
    (fail(429, "You exceeded your current quota", fatal=True), "exceeded your current quota"),
])  # fmt: skip
def test_fatal_answers_stop_the_run(scripted, tmp_path, store_path, failure, needle):
    scripted.on("hi", failure)
    log = write_log(tmp_path / "log.jsonl", [record("a", "hi")] + [record(f"b{i}", "x") for i in range(3)])
    result = scripted_run(scripted, log, store_path, "--concurrency", 1)
    assert result.exit_code == 3
    assert needle in result.stderr and "not retrying" in result.stderr
    assert re.search(r"^run (\S+): failed; resume with:\n  replay run --resume \1 --store \S+\n", result.stderr, re.M)
    assert len(scripted.bodies) == 1  # stopped at once, no retry
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


class BannerServer:
    """A port on 127.0.0.1 that answers every connection with a non-HTTP banner, or resets it."""

    def __init__(self, reply):
        import socket
        import threading

        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import socket
        import struct

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                if self.reply == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    conn.sendall(self.reply)

    def close(self):
        self.sock.close()


def _dead_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("transport", ["native", "httpx", "aiohttp"])
@pytest.mark.parametrize("fault", ["dead", "banner", "reset"])
@pytest.mark.parametrize("n", [1, 2])
def test_an_endpoint_never_reached_is_an_error_whatever_the_sample_size(tmp_path, store_path, n, fault, transport):
    banner = None if fault == "dead" else BannerServer(b"SSH-2.0-OpenSSH_9.6\r\n" if fault == "banner" else "reset")
    port = _dead_port() if banner is None else banner.port
    url = f"http://127.0.0.1:{port}/v1"
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(n)])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: t\nlogs: {log}\ncandidate: {{base_url: '{url}', model: m, transport: {transport}}}\n"
                        "limits: {max_attempts: 1}\n")  # fmt: skip
    try:
        result = invoke("run", scenario, "--store", store_path, "--quiet")
    finally:
        if banner is not None:
            banner.close()
    assert result.exit_code == 2, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"Error: candidate endpoint {url} is unreachable: "), result.stderr
    assert results(store_path) == {}  # nothing stored: resume will send them all
    assert run_row(store_path)[1] == "failed"


def test_connection_errors_before_an_error_answer_are_stored(server, tmp_path, store_path):
    """An endpoint that answered (even with an error) was reached: no failure is held back and lost."""
    log = write_log(tmp_path / "log.jsonl", [record("a", "x [mock:drop]"), record("b", "y [mock:400]")])
    result = adhoc(server, log, store_path, "--max-attempts", 1, "--concurrency", 1)
    assert result.exit_code == 1, result.output  # the run completed; no pair was answered on both arms
    assert "no pair was answered on both arms" in result.stdout
    rows = results(store_path)
    assert rows["a"]["error_class"] == "connection_error" and rows["b"]["http_status"] == 400


def test_budget_stops_dispatching(scripted, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", "word " * 400) for i in range(30)])
    # gpt-4o prices: each request is ~400 prompt tokens + 50 max output = ~$0.0015
    result = scripted_run(scripted, log, store_path, "--budget", "0.01", "--concurrency", 1, model="gpt-4o")
    assert result.exit_code == 3
    assert "budget $0.01 reached" in result.stderr
    status = run_row(store_path)[1]
    assert status == "budget_exhausted"
    spent = sum(r["cost_usd"] for r in results(store_path).values())
    assert 0 < spent <= 0.01
    assert len(results(store_path)) < 30


def test_a_run_stopped_by_its_budget_is_finished_with_a_larger_one(server, store_path):
    first = invoke("run", "--logs", SUPPORT_LOG, "--candidate-url", server.base_url, "--candidate-model", "gpt-4o",
                   "--budget", "0.01", "--concurrency", 4, "--store", store_path, "--quiet")  # fmt: skip
    assert first.exit_code == 3
    run_id, status = run_row(store_path)[:2]
    assert status == "budget_exhausted"
    assert f"  replay run --resume {run_id} --store {store_path} --budget USD\n" in first.stderr
    stored = len(results(store_path))
    again = invoke("run", "--resume", run_id, "--store", store_path, "--quiet")
    assert again.exit_code == 3 and len(results(store_path)) == stored  # the same budget stops it at once
    more = invoke("run", "--resume", run_id, "--budget", "5", "--store", store_path, "--quiet", "--gates", NO_GATES)
    assert more.exit_code == 0, more.output
    assert run_row(store_path)[1] == "completed" and len(results(store_path)) == 160
    other = invoke("run", "--resume", run_id, "--rpm", "5", "--store", store_path)
    assert other.exit_code == 2 and "--resume takes no scenario and no override flags but --budget" in other.stderr


def test_a_budget_is_spent_though_every_concurrent_slot_reserves_its_worst_case(server, store_path):
    result = invoke("run", "--logs", SUPPORT_LOG, "--candidate-url", server.base_url, "--candidate-model", "gpt-4o",
                    "--budget", "0.01", "--concurrency", 16, "--store", store_path, "--quiet")  # fmt: skip
    assert result.exit_code == 3
    spent = sum(r["cost_usd"] for r in results(store_path).values())
    error = result.stderr.splitlines()[-1]
    match = re.fullmatch(rf"Error: budget \$0\.01 reached: spent \${spent:.4f}, and the next request could cost ~\$(0\.\d{{4}}) more", error)
    assert match, error
    assert spent <= 0.01 < spent + float(match[1]) + 0.00005  # stopped only when the next request might not fit


def test_a_budget_below_one_request_says_nothing_was_sent(server, store_path):
    result = invoke("run", "--logs", SUPPORT_LOG, "--candidate-url", server.base_url, "--candidate-model", "gpt-4o",
                    "--budget", "0.0001", "--store", store_path, "--quiet")  # fmt: skip
    assert result.exit_code == 3
    assert re.fullmatch(r"Error: budget \$0\.0001 is less than one request could cost \(~\$0\.\d{4}\): nothing sent",
                        result.stderr.splitlines()[-1])  # fmt: skip
    assert server.stats.requests == 0


def test_fresh_baseline_sends_both_arms_with_the_same_parameters(make_server, tmp_path, store_path):
    prod, cand = make_server(latency_ms=10), make_server(latency_ms=10)
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(8)])
    result = invoke("run", "--logs", log, "--baseline", "fresh", "--production-url", prod.base_url,
                    "--production-model", "prod-1", "--candidate-url", cand.base_url, "--candidate-model", "cand-1",
                    "--store", store_path, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(results(store_path, "production")) == 8 and len(results(store_path, "candidate")) == 8
    assert len(results(store_path, "logged")) == 8  # the log's answers are kept: the drift ledger compares them
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


def test_resume_sends_only_what_is_missing(scripted, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(10)])
    assert scripted_run(scripted, log, store_path).exit_code == 0
    db = sqlite3.connect(store_path)
    run_id = db.execute("SELECT id FROM runs").fetchone()[0]
    db.execute("DELETE FROM results WHERE arm = 'candidate' AND request_id IN ('r2', 'r7')")
    db.execute("UPDATE runs SET status = 'interrupted'")
    db.commit()
    before = len(scripted.bodies)
    result = invoke("run", "--resume", "latest", "--store", store_path, "--quiet", "--gates", NO_GATES)
    assert result.exit_code == 0, result.output
    assert len(scripted.bodies) - before == 2
    assert set(scripted.prompts[before:]) == {"q2", "q7"}
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
    from replay.store import Store

    Store(store_path).close()
    result = CliRunner().invoke(cli, ["export", "nope", "--store", store_path])
    assert result.exit_code == 2 and "no run 'nope'" in result.stderr


@pytest.mark.parametrize("command", [["report"], ["gate"], ["disagreements"], ["show", "latest", "a"], ["runs"],
                                     ["export", "latest"], ["run", "--resume", "latest"]])  # fmt: skip
def test_a_command_on_a_missing_store_says_so_and_creates_nothing(tmp_path, command):
    path = tmp_path / "new.db"
    result = CliRunner().invoke(cli, [*command, "--store", str(path)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}: no store there ('replay run' creates one; --store or REPLAY_STORE names another)\n"
    assert not path.exists()


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


def summary_lines(stderr):
    """The run summary on stderr, the run id masked."""
    start = stderr.index("\nrun ") + 1 if not stderr.startswith("run ") else 0
    return re.sub(r"run \S+: ", "run RUN: ", stderr[start:]).splitlines()


def test_an_unpriced_model_has_spent_unknown_not_zero(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(3)])
    result = adhoc(server, log, store_path)  # cand-1 is in no price table
    assert result.exit_code == 0
    assert result.stderr.startswith("warning: no price for model 'cand-1': its cost counts as unknown")
    assert summary_lines(result.stderr) == [
        "run RUN: completed", "  sampled requests: 3", "  candidate: 3 ok, 0 errors", "  logged: 3 ok, 0 errors",
        "  spent: unknown (no price for 'cand-1')", f"  store: {store_path}",
    ]  # fmt: skip


def test_a_priced_and_an_unpriced_arm_say_both(make_server, tmp_path, store_path):
    prod, cand = make_server(latency_ms=5), make_server(latency_ms=5)
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(2)])
    result = invoke("run", "--logs", log, "--baseline", "fresh", "--production-url", prod.base_url,
                    "--production-model", "prod-1", "--candidate-url", cand.base_url, "--candidate-model", "gpt-4o",
                    "--store", store_path, "--quiet")  # fmt: skip
    assert result.exit_code == 0
    spent = sum(r["cost_usd"] for r in results(store_path).values())
    assert spent > 0
    assert f"  spent: ${spent:.4f}, plus an unknown amount for 'prod-1' (no price)" in summary_lines(result.stderr)


def test_a_priced_model_has_spent_in_dollars(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(2)])
    result = invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "gpt-4o",
                    "--store", store_path, "--quiet")  # fmt: skip
    spent = sum(r["cost_usd"] for r in results(store_path).values())
    assert "warning" not in result.stderr
    assert f"  spent: ${spent:.4f}" in summary_lines(result.stderr)

class FaultyStore:
    """Stores whose writes fail the way a full disk makes them fail."""

    @staticmethod
    def full_after_create(path, create=True):
        """A real SQLITE_FULL: the file may not grow past its size when the run is created."""
        from replay.store import Store

        class Full(Store):
            def create_run(self, *args, **kwargs):
                super().create_run(*args, **kwargs)
                pages = self.db.execute("PRAGMA page_count").fetchone()[0]
                self.db.execute(f"PRAGMA max_page_count = {pages}")

        return Full(path)

    @staticmethod
    def first_outcomes_write_fails(path, create=True):
        """The first write of candidate outcomes fails as SQLite fails it on a full disk; later ones succeed."""
        from replay.store import Store

        class Connection:
            def __init__(self, db):
                self.db, self.failed = db, False

            def executemany(self, sql, rows):
                rows = list(rows)
                if not self.failed and sql.startswith("INSERT OR REPLACE INTO results") and rows[0][2] == "candidate":
                    self.failed = True
                    raise sqlite3.OperationalError("database or disk is full")
                return self.db.executemany(sql, rows)

            def __getattr__(self, name):
                return getattr(self.db, name)

        store = Store(path)
        store.db = Connection(store.db)
        return store


def _sent_ids(server):
    return {body["messages"][0]["content"].replace("q", "r") for body in server.stats.bodies}


def test_a_full_disk_stops_the_run_and_names_every_request_a_resume_re_sends(server, tmp_path, store_path, monkeypatch):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(40)])
    monkeypatch.setattr("replay.cli.run.open_store", FaultyStore.full_after_create)
    result = adhoc(server, log, store_path, "--concurrency", 2)
    assert result.exit_code == 3
    run_id = run_row(store_path)[0]
    warning, hint, command, error = result.stderr.splitlines()
    assert warning == "warning: no price for model 'cand-1': its cost counts as unknown (add it under 'prices')"
    assert (hint, command) == (f"run {run_id}: failed; resume with:", f"  replay run --resume {run_id} --store {store_path}")
    match = re.fullmatch(
        rf"Error: {re.escape(store_path)}: cannot write to the store \(database or disk is full\): dispatching stopped;"
        r" (\d+) answered request\(s\) could not be stored and a resume re-sends them: (.+)", error)  # fmt: skip
    assert match, error
    unstored, stored = set(match[2].split(", ")), set(results(store_path))
    assert len(unstored) == int(match[1]) and not unstored & stored
    assert unstored | stored == _sent_ids(server) and len(_sent_ids(server)) < 40  # stopped at once, each named
    assert run_row(store_path)[1:3] == ("failed", error[len("Error: "):])
    monkeypatch.undo()
    before = server.stats.requests
    resumed = invoke("run", "--resume", run_id, "--store", store_path, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert len(results(store_path)) == 40 and server.stats.requests - before == 40 - len(stored)


def test_a_write_that_fails_once_is_retried_and_nothing_answered_is_lost(server, tmp_path, store_path, monkeypatch):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(40)])
    monkeypatch.setattr("replay.cli.run.open_store", FaultyStore.first_outcomes_write_fails)
    result = adhoc(server, log, store_path, "--concurrency", 4)
    assert result.exit_code == 3
    run_id = run_row(store_path)[0]
    assert result.stderr.splitlines() == [
        "warning: no price for model 'cand-1': its cost counts as unknown (add it under 'prices')",
        f"run {run_id}: failed; resume with:", f"  replay run --resume {run_id} --store {store_path}",
        f"Error: {store_path}: cannot write to the store (database or disk is full): dispatching stopped;"
        " a retry stored every answer received",
    ]
    assert set(results(store_path)) == _sent_ids(server) and server.stats.requests < 40


def test_a_store_whose_schema_was_altered_stops_the_run_with_one_line(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(3)])
    assert adhoc(server, log, store_path).exit_code == 0
    db = sqlite3.connect(store_path)
    db.execute("ALTER TABLE results RENAME COLUMN text TO answer_text")
    db.commit()
    result = adhoc(server, log, store_path)
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1].startswith(
        f"Error: {store_path}: cannot write to the store (table results has no column named text): dispatching stopped;"
    )
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr
    assert run_row(store_path)[1] == "failed"


def test_a_run_taken_over_by_another_process_stops_dispatching(make_server, tmp_path, store_path, monkeypatch):
    """This process was stopped (SIGSTOP, a suspended laptop) past its lease, and another took the run over."""
    from replay.store import Store

    class TakenOver(Store):
        beats = 0

        def heartbeat(self, run_id, owner):
            TakenOver.beats += 1
            if TakenOver.beats == 2:  # the first renews the lease as the run starts; then it is lost
                self.db.execute("UPDATE run_owners SET token = 'someone-else' WHERE run_id = ?", (run_id,))
            return super().heartbeat(run_id, owner)

    server = make_server(latency_ms=100)
    monkeypatch.setattr("replay.runner.HEARTBEAT_S", 0.3)
    monkeypatch.setattr("replay.cli.run.open_store", TakenOver)
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q{i}") for i in range(200)])
    result = adhoc(server, log, store_path, "--concurrency", 2)
    assert result.exit_code == 3
    run_id = run_row(store_path)[0]
    assert result.stderr.splitlines()[-1] == f"Error: run {run_id}: another process took it over; stopped dispatching"
    assert 0 < server.stats.requests < 200 and TakenOver.beats == 2
    owners = sqlite3.connect(store_path).execute("SELECT token FROM run_owners").fetchall()
    assert owners == [("someone-else",)]  # its lease is not released by the process that lost it
    assert run_row(store_path)[1] == "running"  # nor its status written


def _interrupted_run(server, tmp_path, store_path):
    """A completed run of r0..r9 whose last two outcomes are lost: (its records, the log, the run id)."""
    records = [record(f"r{i}", f"q{i}") for i in range(10)]
    log = write_log(tmp_path / "log.jsonl", records)
    assert adhoc(server, log, store_path).exit_code == 0
    db = sqlite3.connect(store_path)
    db.execute("DELETE FROM results WHERE arm = 'candidate' AND request_id IN ('r8', 'r9')")
    db.execute("UPDATE runs SET status = 'interrupted'")
    db.commit()
    return records, log, db.execute("SELECT id FROM runs").fetchone()[0]


def _interrupted_run_with_an_edited_log(server, tmp_path, store_path):
    """:func:`_interrupted_run`, then a log with r2 changed and r5 gone."""
    records, log, run_id = _interrupted_run(server, tmp_path, store_path)
    records[2]["request"]["messages"][0]["content"] = "q2, edited"
    write_log(tmp_path / "log.jsonl", records[:5] + records[6:])
    return log, run_id


def test_resume_refuses_a_log_changed_since_the_run_started(server, tmp_path, store_path):
    log, run_id = _interrupted_run_with_an_edited_log(server, tmp_path, store_path)
    before = server.stats.requests
    result = invoke("run", "--resume", "latest", "--store", store_path, "--quiet")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {log}: the log changed since run {run_id} started: 1 sampled record(s) changed, 1 no longer in the"
        " sample (e.g. r2, r5); resuming would mix old answers with new requests: start a new run, or resume with"
        " --resend-changed to re-send the changed records and drop the missing ones\n"
    )
    assert server.stats.requests == before and len(results(store_path)) == 8
    assert run_row(store_path)[1] == "interrupted"


def test_resume_refuses_records_appended_to_the_log(server, tmp_path, store_path):
    """Records added after the run started would silently join it (160 planned became 165)."""
    records, _, _ = _interrupted_run(server, tmp_path, store_path)
    write_log(tmp_path / "log.jsonl", records + [record(f"n{i}", f"new {i}") for i in range(3)])
    result = invoke("run", "--resume", "latest", "--store", store_path, "--quiet")
    assert result.exit_code == 2
    assert "0 sampled record(s) changed, 0 no longer in the sample, 3 new in it" in result.stderr
    resent = invoke("run", "--resume", "latest", "--resend-changed", "--store", store_path, "--quiet")
    assert resent.exit_code == 0, resent.output
    assert len(results(store_path)) == 13


def test_resume_with_resend_changed_re_sends_what_changed_and_drops_what_is_gone(server, tmp_path, store_path):
    log, run_id = _interrupted_run_with_an_edited_log(server, tmp_path, store_path)
    before = server.stats.requests
    result = invoke("run", "--resume", "latest", "--resend-changed", "--store", store_path, "--quiet")
    assert result.exit_code == 0, result.output
    sent = sorted(b["messages"][0]["content"] for b in server.stats.bodies[before:])
    assert sent == ["q2, edited", "q8", "q9"]
    assert set(results(store_path)) == {f"r{i}" for i in range(10)} - {"r5"}
    assert set(results(store_path, "logged")) == set(results(store_path))  # the logged answers follow the log
    assert run_row(store_path)[1:] == ("completed", None, 9)


def test_resume_takes_a_log_rewritten_with_other_key_order_and_spacing_as_unchanged(server, tmp_path, store_path):
    records = [record(f"r{i}", f"q{i}") for i in range(4)]
    log = write_log(tmp_path / "log.jsonl", records)
    assert adhoc(server, log, store_path).exit_code == 0
    db = sqlite3.connect(store_path)
    db.execute("DELETE FROM results WHERE arm = 'candidate' AND request_id = 'r3'")
    db.commit()
    rewritten = [{**r, "request": dict(reversed(list(r["request"].items())))} for r in records]
    write_log(tmp_path / "log.jsonl", [json.dumps(r, indent=None, separators=(" , ", " : ")) for r in rewritten])
    result = invoke("run", "--resume", "latest", "--store", store_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert len(results(store_path)) == 4


def test_resend_changed_needs_resume(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("a")])
    result = CliRunner().invoke(cli, ["run", "--logs", log, "--resend-changed", "--store", store_path])
    assert result.exit_code == 2 and "--resend-changed goes with --resume" in result.stderr


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
