"""``replay run`` against local servers in the dialects of a LiteLLM proxy, OpenRouter, Gemini's
OpenAI-compatible endpoint and a local server (vLLM, llama.cpp, Ollama): what each sends and
answers, what replay records (the gateway's cost, the model it routed to, estimated tokens), which
errors are retried and which stop the arm, and that no key reaches the store or the terminal."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, record, write_log
from gateway_servers import GeminiEndpoint, LiteLLMProxy, LocalServer, OpenRouter
from replay.cli import cli


@pytest.fixture
def serve():
    servers = []

    def start(kind, **config):
        servers.append(kind(**config).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def run(tmp_path, store_path, arm, texts=("Where is parcel 7?",), extra="", args=()):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", text) for i, text in enumerate(texts)])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: t\nlogs: {log}\ncandidate: {arm}\n{extra}")
    return CliRunner().invoke(cli, ["run", str(scenario), "--store", store_path, "--gates", NO_GATES, *args])


def rows(store_path, arm="candidate"):
    db = sqlite3.connect(store_path)
    db.row_factory = sqlite3.Row
    return [dict(row) for row in db.execute("SELECT * FROM results WHERE arm = ? ORDER BY request_id", (arm,))]


def secret_free(store_path, result, secret):
    with open(store_path, "rb") as handle:
        stored = handle.read().decode("latin-1")
    return secret not in stored and secret not in result.output and secret not in result.stderr


# --- LiteLLM proxy ----------------------------------------------------------------------------


def litellm_arm(proxy, stream=True):
    return (f"{{base_url: '{proxy.base_url}', model: support-model, api_key_env: LITELLM_KEY,"
            f" stream: {'true' if stream else 'false'}}}")  # fmt: skip


def test_litellm_whole_answers_cost_what_the_proxy_says_and_streams_are_priced_at_the_model_it_routed_to(
        serve, tmp_path, store_path, monkeypatch):  # fmt: skip
    proxy = serve(LiteLLMProxy)
    monkeypatch.setenv("LITELLM_KEY", LiteLLMProxy.key)
    whole = run(tmp_path, store_path, litellm_arm(proxy, stream=False))
    assert whole.exit_code == 0, whole.output
    [row] = rows(store_path)
    assert (row["status"], row["model"], row["cost_usd"]) == ("ok", LiteLLMProxy.ROUTED, float(LiteLLMProxy.COST))
    assert "no price" not in whole.stderr  # the proxy priced it: no warning about 'support-model'
    assert proxy.requests[-1]["path"] == "/chat/completions"  # the proxy's root, as LiteLLM documents it
    assert proxy.requests[-1]["headers"]["authorization"] == f"Bearer {LiteLLMProxy.key}"

    streamed = run(tmp_path, str(tmp_path / "streamed.db"), litellm_arm(proxy))
    assert streamed.exit_code == 0, streamed.output
    [row] = rows(str(tmp_path / "streamed.db"))
    mini = 0.15 * row["prompt_tokens"] / 1e6 + 0.60 * row["completion_tokens"] / 1e6  # gpt-4o-mini's list price
    assert row["tokens_estimated"] == 0 and row["cost_usd"] == pytest.approx(mini)
    assert "no price" not in streamed.stderr


def test_litellms_v1_path_is_served_as_its_root_is(serve, tmp_path, store_path, monkeypatch):
    proxy = serve(LiteLLMProxy)
    monkeypatch.setenv("LITELLM_KEY", LiteLLMProxy.key)
    result = run(tmp_path, store_path, litellm_arm(proxy).replace(proxy.base_url, proxy.base_url + "/v1"))
    assert result.exit_code == 0, result.output
    assert proxy.requests[-1]["path"] == "/v1/chat/completions" and rows(store_path)[0]["status"] == "ok"


def test_litellms_429_is_retried_and_its_spent_budget_stops_the_arm(serve, tmp_path, store_path, monkeypatch):
    proxy = serve(LiteLLMProxy)
    monkeypatch.setenv("LITELLM_KEY", LiteLLMProxy.key)
    limited = run(tmp_path, store_path, litellm_arm(proxy), texts=("Where is parcel 8? [litellm:429*1]",))
    assert limited.exit_code == 0, limited.output
    [row] = rows(store_path)
    assert (row["status"], row["attempts"]) == ("ok", 2)
    assert json.loads(row["attempts_json"])[0]["retry_after_s"] == 0.05  # the proxy's retry-after

    spent = run(tmp_path, str(tmp_path / "budget.db"), litellm_arm(proxy), texts=("Where is parcel 9? [litellm:budget*9]",))
    assert spent.exit_code == 3
    assert ("candidate endpoint answered 400: Budget has been exceeded! Current cost: 5.0021, Max budget: 5.0 — not retrying"
            in spent.stderr)  # fmt: skip
    assert sum(1 for request in proxy.requests if "budget" in json.dumps(request["body"])) == 1  # stopped at once


def test_a_gateway_echoing_the_key_in_its_error_leaves_it_in_neither_the_store_nor_the_terminal(
        serve, tmp_path, store_path, monkeypatch):  # fmt: skip
    proxy = serve(LiteLLMProxy)
    wrong = "lk-live-" + "ThisIsTheWrongKey0123456789"  # no sk- shape: only the configured value tells it is a key
    monkeypatch.setenv("LITELLM_KEY", wrong)
    result = run(tmp_path, store_path, litellm_arm(proxy))
    assert result.exit_code == 3
    assert proxy.requests[-1]["headers"]["authorization"] == f"Bearer {wrong}"  # sent, and quoted back
    assert "Received API Key = [REDACTED], Key Hash (Token) =None" in result.stderr
    assert secret_free(store_path, result, wrong)


# --- OpenRouter -----------------------------------------------------------------------------


def openrouter_arm(router, model="anthropic/claude-3.5-haiku"):
    return (f"{{base_url: '{router.base_url}', model: '{model}', api_key_env: OPENROUTER_API_KEY,"
            " headers: {HTTP-Referer: 'https://support.example.com', X-Title: support-bot-shadow}}")


def test_openrouter_streams_with_comments_are_read_its_headers_are_sent_and_its_cost_is_recorded(
        serve, tmp_path, store_path, monkeypatch):  # fmt: skip
    router = serve(OpenRouter)
    monkeypatch.setenv("OPENROUTER_API_KEY", OpenRouter.key)
    result = run(tmp_path, store_path, openrouter_arm(router), texts=("Where is parcel 7?", "Where is parcel 8?"))
    assert result.exit_code == 0, result.output
    assert [(row["status"], row["finish_reason"], row["cost_usd"], row["tokens_estimated"]) for row in rows(store_path)] == [
        ("ok", "stop", OpenRouter.COST, 0)] * 2  # fmt: skip
    assert all(row["text"].startswith("Thanks for asking.") for row in rows(store_path))  # no comment text in the answer
    headers = router.requests[-1]["headers"]
    assert (headers["http-referer"], headers["x-title"]) == ("https://support.example.com", "support-bot-shadow")
    assert router.requests[-1]["path"] == "/api/v1/chat/completions"
    assert f"spent: ${2 * OpenRouter.COST:.4f}" in result.output
    assert secret_free(store_path, result, OpenRouter.key)


def test_an_unpriced_model_behind_a_gateway_that_reports_its_cost_is_not_an_unknown_amount(serve, tmp_path, store_path, monkeypatch):
    router = serve(OpenRouter)
    monkeypatch.setenv("OPENROUTER_API_KEY", OpenRouter.key)
    result = run(tmp_path, store_path, openrouter_arm(router, model="meta-llama/llama-3.1-8b-instruct"))
    assert result.exit_code == 0, result.output
    assert "no price" not in result.stderr and "unknown amount" not in result.output
    assert rows(store_path)[0]["cost_usd"] == OpenRouter.COST


def test_openrouters_402_stops_the_arm_and_a_flagged_input_is_that_requests_error(serve, tmp_path, store_path, monkeypatch):
    router = serve(OpenRouter)
    monkeypatch.setenv("OPENROUTER_API_KEY", OpenRouter.key)
    flagged = run(tmp_path, store_path, openrouter_arm(router), texts=("Where is parcel 7?", "You are useless [openrouter:flagged*9]"))
    assert flagged.exit_code == 0, flagged.output
    assert [(row["status"], row["http_status"]) for row in rows(store_path)] == [("ok", 200), ("error", 403)]
    assert "candidate: 1 ok, 1 errors" in flagged.output

    broke = run(tmp_path, str(tmp_path / "broke.db"), openrouter_arm(router), texts=("Where is parcel 9? [openrouter:402*9]",))
    assert broke.exit_code == 3
    assert "candidate endpoint answered 402: This request requires more credits" in broke.stderr


@pytest.mark.parametrize("stream, said", [(True, "Provider disconnected unexpectedly"), (False, "Provider returned error")])
def test_an_error_openrouter_sends_after_its_200_is_a_failed_attempt_retried(serve, tmp_path, store_path, monkeypatch, stream, said):
    router = serve(OpenRouter)
    monkeypatch.setenv("OPENROUTER_API_KEY", OpenRouter.key)
    arm = openrouter_arm(router)[:-1] + f", stream: {str(stream).lower()}}}"
    result = run(tmp_path, store_path, arm, texts=("Where is parcel 7? [openrouter:midstream*1]",))
    assert result.exit_code == 0, result.output
    [row] = rows(store_path)
    assert (row["status"], row["attempts"], row["finish_reason"]) == ("ok", 2, "stop")
    first = json.loads(row["attempts_json"])[0]
    assert (first["error_class"], first["error_message"]) == ("stream_error", said)
    assert not row["text"].startswith("Parcel ")  # the cut-short answer is not kept


# --- Gemini's OpenAI-compatible endpoint --------------------------------------------------------


def gemini_arm(endpoint, extra=""):
    return f"{{provider: gemini, base_url: '{endpoint.base_url}', model: gemini-2.5-flash{extra}}}"


def gemini_record(record_id, text, **request):
    logged = record(record_id, text)
    logged["request"].update(request)
    return logged


def test_gemini_gets_bearer_requests_without_the_parameters_it_refuses(serve, tmp_path, store_path, monkeypatch):
    endpoint = serve(GeminiEndpoint)
    monkeypatch.setenv("GEMINI_API_KEY", GeminiEndpoint.key)
    log = write_log(tmp_path / "log.jsonl", [gemini_record("r0", "Where is parcel 7?", seed=42, prompt_cache_key="support-v1")])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: g\nlogs: {log}\ncandidate: {gemini_arm(endpoint)}\n")
    result = CliRunner().invoke(cli, ["run", str(scenario), "--store", store_path, "--gates", NO_GATES])
    assert result.exit_code == 0, result.output
    sent = endpoint.requests[-1]
    assert sent["path"] == "/v1beta/openai/chat/completions" and sent["headers"]["authorization"] == f"Bearer {GeminiEndpoint.key}"
    assert "seed" not in sent["body"] and "prompt_cache_key" not in sent["body"] and sent["body"]["temperature"] == 0
    [row] = rows(store_path)
    assert row["status"] == "ok"
    assert json.loads(row["params_json"])["lossy"] == ["seed dropped: Gemini's OpenAI-compatible endpoint refuses it",
                                                       "prompt_cache_key dropped: Gemini's OpenAI-compatible endpoint refuses it"]  # fmt: skip
    report = CliRunner().invoke(cli, ["report", "--store", store_path, "--gates", NO_GATES, "--format", "json"])
    assert json.loads(report.output)["lossy"] == {"candidate": {
        "seed dropped: Gemini's OpenAI-compatible endpoint refuses it": 1,
        "prompt_cache_key dropped: Gemini's OpenAI-compatible endpoint refuses it": 1}}
    assert secret_free(store_path, result, GeminiEndpoint.key)


def test_the_parameters_gemini_refuses_get_one_hint_and_its_patch_fixes_the_run(serve, tmp_path, store_path, monkeypatch):
    endpoint = serve(GeminiEndpoint)
    monkeypatch.setenv("GEMINI_API_KEY", GeminiEndpoint.key)
    params = ", params: {temperature: 0, frequency_penalty: 0.5, top_k: 40}"
    refused = run(tmp_path, store_path, gemini_arm(endpoint, params), texts=("Where is parcel 7?", "Where is parcel 8?"))
    hints = [line for line in refused.stderr.splitlines() if "rejects" in line]
    assert hints == [
        "warning: candidate: the endpoint rejects the parameters 'frequency_penalty' and 'top_k' (400: Invalid JSON payload"
        ' received. Unknown name "frequency_penalty": Cannot find field. Invalid JSON payload received. Un...);'
        " stop sending them with candidate.transform.patch: [{op: remove, path: /frequency_penalty},"
        " {op: remove, path: /top_k}]"]  # fmt: skip
    patch = ", transform: {patch: [{op: remove, path: /frequency_penalty}, {op: remove, path: /top_k}]}"
    patched = run(tmp_path, str(tmp_path / "patched.db"), gemini_arm(endpoint, params + patch))
    assert patched.exit_code == 0 and "candidate: 1 ok, 0 errors" in patched.output


def test_geminis_429_waits_its_retry_delay_and_a_spent_daily_quota_or_a_wrong_key_stop_the_arm(
        serve, tmp_path, store_path, monkeypatch):  # fmt: skip
    endpoint = serve(GeminiEndpoint)
    monkeypatch.setenv("GEMINI_API_KEY", GeminiEndpoint.key)
    limited = run(tmp_path, store_path, gemini_arm(endpoint), texts=("Where is parcel 7? [gemini:429*1]",))
    assert limited.exit_code == 0, limited.output
    [row] = rows(store_path)
    assert row["attempts"] == 2 and json.loads(row["attempts_json"])[0]["retry_after_s"] == 0.05

    daily = run(tmp_path, str(tmp_path / "daily.db"), gemini_arm(endpoint), texts=("Where is parcel 8? [gemini:daily*9]",))
    assert daily.exit_code == 3 and "candidate endpoint answered 429: You exceeded your current quota" in daily.stderr

    monkeypatch.setenv("GEMINI_API_KEY", "AIza" + "SyWrongKey0000000000000000000000000")
    wrong = run(tmp_path, str(tmp_path / "wrong.db"), gemini_arm(endpoint))
    assert wrong.exit_code == 3 and "candidate endpoint answered 400: API key not valid." in wrong.stderr


# --- vLLM, llama.cpp, Ollama ------------------------------------------------------------------


def test_a_local_server_needs_no_key_and_answers_without_usage_are_counted_locally_and_reported(
        serve, tmp_path, store_path):  # fmt: skip
    local = serve(LocalServer)
    result = run(tmp_path, store_path, f"{{base_url: '{local.base_url}', model: llama3.2}}", texts=("Where is parcel 7?", "Hi"),
                 extra="prices: {llama3.2: {input: 0, output: 0}}\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "authorization" not in local.requests[-1]["headers"]
    assert local.requests[-1]["body"]["stream_options"] == {"include_usage": True}  # asked; the server ignores it
    assert [(row["status"], row["tokens_estimated"]) for row in rows(store_path)] == [("ok", 1)] * 2
    assert all(row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 for row in rows(store_path))
    assert "candidate: 2 ok, 0 errors (tokens of 2 counted locally: the endpoint sent no usage)" in result.output
    report = CliRunner().invoke(cli, ["report", "--store", store_path, "--gates", NO_GATES])
    assert "\n  Tokens estimated for candidate: 2 of 2 answers had no usage (counted locally)\n" in report.output
    as_json = CliRunner().invoke(cli, ["report", "--store", store_path, "--gates", NO_GATES, "--format", "json"])
    assert json.loads(as_json.output)["tokens_estimated"] == {"candidate": 2}


def test_a_local_server_refusing_stream_options_gets_the_hint_and_the_patch_makes_it_run(serve, tmp_path, store_path):
    local = serve(LocalServer, strict=True)
    arm = f"{{base_url: '{local.base_url}', model: llama3.2"
    refused = run(tmp_path, store_path, arm + "}")
    assert "rejects the parameter 'stream_options'" in refused.stderr and "candidate: 0 ok, 1 errors" in refused.output
    patched = run(tmp_path, str(tmp_path / "p.db"), arm + ", transform: {patch: [{op: remove, path: /stream_options}]}}")
    assert patched.exit_code == 0, patched.output
    [row] = rows(str(tmp_path / "p.db"))
    assert (row["status"], row["tokens_estimated"]) == ("ok", 1)


def test_a_gemini_arm_without_its_key_stops_before_anything_is_sent(serve, tmp_path, store_path, monkeypatch):
    endpoint = serve(GeminiEndpoint)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    result = run(tmp_path, store_path, gemini_arm(endpoint))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == ("Error: candidate.api_key_env: the environment variable GEMINI_API_KEY is not set"
                                              " (provider gemini reads it unless api_key_env says otherwise)")  # fmt: skip
    assert endpoint.requests == []


def test_a_logged_answer_whose_usage_has_a_cost_costs_that(serve, tmp_path, store_path, monkeypatch):
    router = serve(OpenRouter)
    monkeypatch.setenv("OPENROUTER_API_KEY", OpenRouter.key)
    logged = record("r0", "Where is parcel 7?")
    logged["response"]["usage"]["cost"] = 0.0031  # an OpenRouter log keeps what each answer cost
    log = write_log(tmp_path / "log.jsonl", [logged])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: t\nlogs: {log}\ncandidate: {openrouter_arm(router)}\n")
    result = CliRunner().invoke(cli, ["run", str(scenario), "--store", store_path, "--gates", NO_GATES])
    assert result.exit_code == 0, result.output
    assert (rows(store_path, "logged")[0]["cost_usd"], rows(store_path)[0]["cost_usd"]) == (0.0031, OpenRouter.COST)
