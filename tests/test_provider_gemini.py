"""``provider: gemini``: Gemini's OpenAI-compatible endpoint, its default URL and key, the parameters
it refuses dropped and recorded, its retry delay waited, a spent daily quota and a wrong key stopping
the arm (the runs against a local server in Gemini's shapes are in test_cli_run_gateways.py)."""

from __future__ import annotations

import json
import random

from replay.config import Arm
from replay.providers import PROVIDERS
from replay.providers.base import ProviderError
from replay.providers.gemini import DAILY_QUOTA, DEFAULT_BASE_URL, INVALID_KEY, GeminiProvider


def gemini(monkeypatch, **arm):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza" + "SyTest0123456789abcdefghijklmnopqr")
    return PROVIDERS["gemini"].from_arm("candidate", Arm(base_url=DEFAULT_BASE_URL, model="gemini-2.5-flash", provider="gemini",
                                                         params=dict(GeminiProvider.default_params), **arm))  # fmt: skip


def test_gemini_drops_the_parameters_its_endpoint_refuses_and_records_it(monkeypatch):
    provider = gemini(monkeypatch)
    assert provider.url == DEFAULT_BASE_URL + "/chat/completions"
    body = provider.build_body({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "seed": 7,
                                "prompt_cache_key": "k", "max_tokens": 20})  # fmt: skip
    assert "seed" not in body and "prompt_cache_key" not in body and body["temperature"] == 0 and body["max_tokens"] == 20
    assert provider.sent_params(body)["lossy"] == ["seed dropped: Gemini's OpenAI-compatible endpoint refuses it",
                                                   "prompt_cache_key dropped: Gemini's OpenAI-compatible endpoint refuses it"]  # fmt: skip
    chosen = gemini(monkeypatch, api_key_env="GEMINI_API_KEY")
    chosen.params = {"temperature": 0, "seed": 1}  # the arm's own choice is sent, and the hint names it if refused
    assert chosen.build_body({"messages": []})["seed"] == 1


def google_error(code, status, details):
    return json.dumps([{"error": {"code": code, "message": "m", "status": status, "details": details}}])


def test_gemini_waits_its_retry_delay_and_stops_on_a_daily_quota_or_a_wrong_key(monkeypatch):
    provider = gemini(monkeypatch)
    rng = random.Random(0)
    minute = google_error(429, "RESOURCE_EXHAUSTED", [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}])  # fmt: skip
    error = provider.http_error(429, {}, minute, 1.0)
    assert (error.code, error.headers) == ("RESOURCE_EXHAUSTED", {"retry-after": "37"})
    plan = provider.retry_plan(error, 1, 5, rng)
    assert (plan.retry, plan.delay_s, plan.hinted) == (True, 37.0, True)
    assert provider.http_error(429, {"retry-after": "2"}, minute, 1.0).headers == {"retry-after": "2"}  # the header wins
    daily = google_error(429, "RESOURCE_EXHAUSTED", [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}])
    assert provider.http_error(429, {}, daily, 1.0).code == DAILY_QUOTA
    assert provider.retry_plan(provider.http_error(429, {}, daily, 1.0), 1, 5, rng).fatal
    key = google_error(400, "INVALID_ARGUMENT", [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}])
    wrong = provider.http_error(400, {}, key, 1.0)
    assert wrong.code == INVALID_KEY and provider.retry_plan(wrong, 1, 5, rng).fatal
    refused = provider.http_error(400, {}, google_error(400, "INVALID_ARGUMENT", []), 1.0)
    assert not provider.retry_plan(refused, 1, 5, rng).fatal and not provider.retry_plan(refused, 1, 5, rng).retry
    assert not provider.retry_plan(ProviderError("boom", status=500), 1, 5, rng).fatal
