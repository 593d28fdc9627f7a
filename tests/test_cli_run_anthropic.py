"""``replay run`` end to end with ``provider: anthropic``, against the local Messages server on
127.0.0.1; and an Anthropic-logged record replayed against the OpenAI-compatible mock server."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from anthropic_server import ANSWER, KEY, AnthropicServer
from conftest import NO_GATES, record, write_log
from replay.cli import cli


@pytest.fixture(scope="module")
def claude():
    with AnthropicServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("CLAUDE_KEY", KEY)


def run(tmp_path, store_path, log, base_url, provider="anthropic", *extra):
    scenario = tmp_path / "claude.yaml"
    scenario.write_text(f"name: claude\nlogs: {log}\ncandidate: {{base_url: '{base_url}', model: claude-sonnet-4-5,"
                        f" provider: {provider}, api_key_env: CLAUDE_KEY, default_max_tokens: 300}}\n")  # fmt: skip
    args = ["run", str(scenario), "--store", store_path, "--quiet", "--gates", NO_GATES, *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def results(store_path, arm="candidate"):
    db = sqlite3.connect(store_path)
    db.row_factory = sqlite3.Row
    rows = db.execute("SELECT * FROM results WHERE arm = ? ORDER BY request_id", (arm,)).fetchall()
    return {row["request_id"]: dict(row) for row in rows}


def test_a_run_against_anthropic_stores_answers_and_what_was_lost(claude, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"Where is parcel {i}?", request={
        "model": "gpt-4o", "seed": 7, "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": f"Where is parcel {i}?"}]})
        for i in range(3)])  # fmt: skip
    result = run(tmp_path, store_path, log, claude.base_url)
    assert result.exit_code == 0, result.output
    assert "candidate: 3 ok, 0 errors" in result.output
    row = results(store_path)["r1"]
    assert row["text"] == ANSWER and row["finish_reason"] == "stop" and 0 < row["ttft_ms"] <= row["latency_ms"]
    assert (row["prompt_tokens"], row["completion_tokens"], row["tokens_estimated"]) == (21, 6, 0)
    assert json.loads(row["params_json"]) == {
        "model": "claude-sonnet-4-5", "max_tokens": 300, "temperature": 0, "stream": True,
        "lossy": ["max_tokens 300 supplied: the log has none and Anthropic requires it", "seed dropped: Anthropic has none"]}  # fmt: skip
    assert row["cost_usd"] == pytest.approx((21 * 3.00 + 6 * 15.00) / 1e6)


@pytest.mark.parametrize("directive, first_status, first_class", [
    ("[a:529*1]", 529, "http_error"), ("[a:429*1]", 429, "http_error"), ("[a:error*1]", 529, "stream_error")])  # fmt: skip
def test_overloads_and_rate_limits_are_retried(claude, tmp_path, store_path, directive, first_status, first_class):
    log = write_log(tmp_path / "log.jsonl", [record("flaky", f"Where is parcel 7? {directive} {tmp_path.name}")])
    result = run(tmp_path, store_path, log, claude.base_url)
    assert result.exit_code == 0, result.output
    row = results(store_path)["flaky"]
    history = json.loads(row["attempts_json"])
    assert row["status"] == "ok" and row["text"] == ANSWER and row["attempts"] == 2
    assert (history[0]["http_status"], history[0]["error_class"], history[1]["http_status"]) == (first_status, first_class, 200)
    if directive == "[a:429*1]":
        assert history[0]["retry_after_s"] == pytest.approx(0.05)  # the server's retry-after, not the backoff
    assert row["latency_ms"] == pytest.approx(history[-1]["latency_ms"])


@pytest.mark.parametrize("directive, needle", [("[a:401]", "answered 401"), ("[a:credit]", "credit balance is too low")])
def test_auth_and_billing_errors_stop_the_run(claude, tmp_path, store_path, directive, needle):
    log = write_log(tmp_path / "log.jsonl", [record("a", f"hi {directive}")] + [record(f"b{i}", "x") for i in range(3)])
    result = run(tmp_path, store_path, log, claude.base_url, "anthropic", "--concurrency", 1)
    assert result.exit_code == 3
    assert needle in result.stderr and "not retrying" in result.stderr
    assert "a" not in results(store_path)


def test_an_echoed_key_reaches_neither_the_store_nor_the_terminal(claude, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("echo", "hi [a:echo]"), record("boom", "hi [a:echo500]")])
    result = run(tmp_path, store_path, log, claude.base_url, "anthropic", "--max-attempts", 1)
    assert result.exit_code == 0, result.output
    rows = results(store_path)
    assert rows["echo"]["text"] == "echo [REDACTED]" and "[REDACTED]" in rows["boom"]["error_message"]
    with open(store_path, "rb") as handle:
        assert KEY.encode() not in handle.read()
    assert KEY not in result.output and KEY not in result.stderr


def test_cache_tokens_are_priced_at_cache_rates(claude, tmp_path, store_path):
    from replay.pricing import PriceTable
    from replay.types import Usage

    usage = Usage(prompt_tokens=5021, completion_tokens=6, cache_write_tokens=1000, cache_read_tokens=4000)
    cost = PriceTable().cost_of("claude-sonnet-4-5-20250929", usage)
    assert cost == pytest.approx((21 * 3.00 + 1000 * 3.75 + 4000 * 0.30 + 6 * 15.00) / 1e6)
    assert PriceTable({"m": {"input": 1, "output": 2, "cache_read": 0.1}}).cost_of("m", usage) == pytest.approx(
        (1021 * 1 + 4000 * 0.1 + 6 * 2) / 1e6)


def test_a_run_stores_cache_tokens_at_cache_rates(claude, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("cached", f"Where is parcel 7? [a:cache] {tmp_path.name}")])
    result = run(tmp_path, store_path, log, claude.base_url)
    assert result.exit_code == 0, result.output
    row = results(store_path)["cached"]
    assert row["prompt_tokens"] == 5021  # input 21, cache writes 1,000, cache reads 4,000
    assert row["cost_usd"] == pytest.approx((21 * 3.00 + 1000 * 3.75 + 4000 * 0.30 + 6 * 15.00) / 1e6)


MESSAGES_RECORD = {
    "id": "claude-1",
    "request": {"model": "claude-sonnet-4-5", "max_tokens": 64, "system": "Be terse.", "top_k": 5,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Where is parcel 7?"}]}]},
    "response": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                 "content": [{"type": "text", "text": "In Oslo."}], "stop_reason": "end_turn",
                 "usage": {"input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 100}},
    "latency_ms": 300,
}  # fmt: skip


def test_an_anthropic_logged_request_replays_against_an_openai_candidate(server, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [MESSAGES_RECORD])
    result = run(tmp_path, store_path, log, server.base_url, "openai")
    assert result.exit_code == 0, result.output
    sent = server.stats.bodies[0]
    assert sent["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Where is parcel 7?"}]
    assert "system" not in sent and "top_k" not in sent and sent["max_tokens"] == 64
    params = json.loads(results(store_path)["claude-1"]["params_json"])
    assert params["lossy"] == ["top_k dropped: OpenAI has none"] and "system" not in params
    logged = results(store_path, "logged")["claude-1"]
    assert (logged["text"], logged["finish_reason"], logged["prompt_tokens"], logged["completion_tokens"]) == ("In Oslo.", "stop", 112, 3)


def test_an_anthropic_logged_request_replays_against_anthropic_as_logged(claude, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [MESSAGES_RECORD])
    assert run(tmp_path, store_path, log, claude.base_url).exit_code == 0
    sent = claude.seen.bodies[-1]
    assert sent["system"] == "Be terse." and sent["top_k"] == 5 and sent["max_tokens"] == 64
    assert "lossy" not in json.loads(results(store_path)["claude-1"]["params_json"])


def test_the_report_summarises_what_adapting_lost(claude, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q {i}", request={"model": "gpt-4o", "seed": 7, "logit_bias": {"1": 2},
                                             "max_tokens": 20, "messages": [{"role": "user", "content": f"q {i}"}]}) for i in range(3)]
                    + [record("plain", "q plain")])  # fmt: skip
    assert run(tmp_path, store_path, log, claude.base_url).exit_code == 0
    report = CliRunner().invoke(cli, ["report", "--store", store_path, "--format", "json"], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["lossy"] == {"candidate": {"logit_bias dropped: Anthropic has none": 3, "seed dropped: Anthropic has none": 3}}
    text = CliRunner().invoke(cli, ["report", "--store", store_path], catch_exceptions=False).stdout
    assert "Adapted for candidate: seed dropped on 3 requests: Anthropic has none" in text
    assert "Adapted for candidate: logit_bias dropped on 3 requests: Anthropic has none" in text
    from replay.store import Store

    run_id = sqlite3.connect(store_path).execute("SELECT id FROM runs").fetchone()[0]
    expected = {"candidate": {"logit_bias dropped: Anthropic has none": 3, "seed dropped: Anthropic has none": 3}}
    assert Store(store_path).lossy_counts(run_id) == expected
    db = sqlite3.connect(store_path)
    db.execute("DROP INDEX results_lossy")  # a store of an older version, opened read-only, has none
    db.commit()
    assert Store(store_path).lossy_counts(run_id) == expected
