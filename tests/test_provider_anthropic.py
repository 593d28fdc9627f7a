"""The Anthropic provider against the local Messages server, on every transport, and its policy."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest

from anthropic_server import ANSWER, KEY, AnthropicServer
from replay.providers.anthropic import AnthropicProvider
from replay.providers.anthropic_policy import plan_retry, ratelimit_reset
from replay.providers.base import ProviderError
from replay.secrets import REDACTED

TRANSPORTS = ["native", "aiohttp", "httpx"]
CHAT = {"model": "gpt-4o", "seed": 7, "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Where is parcel 7?"}]}


@pytest.fixture(scope="module")
def server():
    with AnthropicServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


def send(server, request, transport="native", stream=True):
    async def go():
        provider = AnthropicProvider(base_url=server.base_url, model="claude-sonnet-4-5", params={}, stream=stream, transport=transport)
        try:
            return await asyncio.wait_for(provider.send(provider.build_body(request), 5), 10)
        except ProviderError as exc:
            return exc
        finally:
            await provider.aclose()

    return asyncio.run(go())


def asking(text, **extra):
    return {**CHAT, "messages": [{"role": "user", "content": text}], **extra}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_an_answer_is_read_with_headers_and_adapted_body(server, transport, stream):
    completion = send(server, CHAT, transport, stream)
    assert completion.text == ANSWER and completion.finish_reason == "stop" and completion.model == "claude-sonnet-4-5"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (21, 6)
    headers, body = server.seen.headers[-1], server.seen.bodies[-1]
    assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01" and "authorization" not in headers
    assert body["system"] == "Be terse." and body["messages"] == [{"role": "user", "content": "Where is parcel 7?"}]
    assert body["max_tokens"] == 4096 and "seed" not in body and body.get("stream", False) is stream
    if stream:
        assert 0 < completion.ttft_ms <= completion.latency_ms


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_streamed_tool_input_is_joined(server, transport):
    tools = [{"type": "function", "function": {"name": "where", "parameters": {"type": "object"}}}]
    completion = send(server, asking("Where is parcel 7?", tools=tools), transport)
    assert completion.finish_reason == "tool_calls" and completion.text is None
    assert [(call.id, call.name, call.arguments) for call in completion.tool_calls] == [("toolu_01", "where", '{"parcel": "7", "city": "Oslo"}')]


def test_a_json_schema_answer_comes_back_as_text(server):
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    completion = send(server, asking("Where?", response_format=schema))
    assert server.seen.bodies[-1]["tool_choice"] == {"type": "tool", "name": "answer"}
    assert completion.text == '{"text": "Parcel 7 is in Oslo."}' and completion.tool_calls == () and completion.finish_reason == "stop"


def test_an_error_event_after_the_200_is_a_retried_error(server):
    failure = send(server, asking("Where? [a:error*9]"))
    assert isinstance(failure, ProviderError) and failure.error_class == "stream_error"
    assert (failure.status, failure.code) == (529, "overloaded_error")
    assert plan_retry(attempt=1, max_attempts=3, status=failure.status, error_type=failure.code).retry


def test_cache_tokens_are_kept(server):
    usage = send(server, asking("Where? [a:cache]")).usage
    assert (usage.prompt_tokens, usage.cache_write_tokens, usage.cache_read_tokens) == (5021, 1000, 4000)


def test_a_refusal_is_a_content_filter_finish(server):
    assert send(server, asking("Where? [a:refusal]")).finish_reason == "content_filter"


def test_an_exhausted_limit_on_a_200_asks_the_arm_to_wait(server):
    wait = send(server, asking("Where? [a:limit]")).ratelimit_wait_s
    assert wait is not None and 0 < wait <= 0.2


@pytest.mark.parametrize("directive", ["[a:echo]", "[a:echo500]"])
def test_an_echoed_key_is_scrubbed(server, directive):
    outcome = send(server, asking(f"Where? {directive}"))
    text = outcome.message if isinstance(outcome, ProviderError) else outcome.text
    assert KEY not in text and REDACTED in text


def test_a_missing_key_names_the_variable(monkeypatch):
    from replay.config import Arm
    from replay.errors import InputError

    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(InputError) as raised:
        AnthropicProvider.check_arm("candidate", Arm(base_url="http://127.0.0.1:9", model="claude", provider="anthropic"))
    assert str(raised.value) == ("candidate.api_key_env: the environment variable ANTHROPIC_API_KEY is not set"
                                 " (provider anthropic reads it unless api_key_env says otherwise)")  # fmt: skip


# --- the policy -----------------------------------------------------------------------------


def plan(status, error_type=None, message="", headers=None, attempt=1):
    return plan_retry(attempt=attempt, max_attempts=3, status=status, error_type=error_type, message=message,
                      headers=headers, rng=random.Random(1))  # fmt: skip


@pytest.mark.parametrize(
    "status, error_type, message",
    [(401, "authentication_error", ""), (403, "permission_error", ""), (402, "billing_error", ""),
     (400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API.")],
)  # fmt: skip
def test_fatal_answers_stop_the_arm(status, error_type, message):
    assert plan(status, error_type, message).fatal


@pytest.mark.parametrize("status", [408, 409, 429, 500, 529])
def test_retried_answers_back_off_like_the_sdk(status):
    first, second = plan(status, attempt=1), plan(status, attempt=2)
    assert first.retry and not first.hinted and 0.375 <= first.delay_s <= 0.5 and 0.75 <= second.delay_s <= 1.0


def test_retry_after_is_a_hint_that_slows_the_arm():
    hinted = plan(429, "rate_limit_error", headers={"retry-after": "3"})
    assert hinted.retry and hinted.hinted and hinted.delay_s == 3.0


def test_an_exhausted_ratelimit_header_is_a_hint():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    reset = (now + timedelta(seconds=12)).isoformat().replace("+00:00", "Z")
    headers = {"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": reset,
               "anthropic-ratelimit-requests-remaining": "4", "anthropic-ratelimit-requests-reset": reset}  # fmt: skip
    assert ratelimit_reset(headers, now=now.timestamp()) == pytest.approx(12.0)


def test_not_retried_answers_and_the_last_attempt():
    assert not plan(400, "invalid_request_error").retry and not plan(404, "not_found_error").retry
    assert not plan(529, attempt=3).retry
    assert not plan(529, headers={"x-should-retry": "false"}).retry and plan(400, headers={"x-should-retry": "true"}).retry


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stream_cut_short_is_a_truncated_stream(server, transport):
    failure = send(server, asking(f"Where? [a:cut] {transport}"), transport)
    assert isinstance(failure, ProviderError) and failure.error_class == "truncated_stream" and failure.status is None
    assert failure.message == "stream ended after 4 events without message_stop"
    assert plan_retry(attempt=1, max_attempts=3, status=None, transport_error=failure.transport).retry


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_an_answer_over_the_cap_is_refused(server, stream):
    async def go():
        provider = AnthropicProvider(base_url=server.base_url, model="claude", params={}, stream=stream, max_response_mb=0.1)
        try:
            await provider.send(provider.build_body(asking("Where? [a:long]")), 5)
        except ProviderError as exc:
            return exc
        finally:
            await provider.aclose()

    failure = asyncio.run(go())
    assert (failure.error_class, failure.status) == ("response_too_large", 200)


def test_a_429_without_retry_after_waits_for_the_exhausted_limit():
    reset = (datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    hinted = plan(429, "rate_limit_error", headers={"anthropic-ratelimit-input-tokens-remaining": "0",
                                                    "anthropic-ratelimit-input-tokens-reset": reset})  # fmt: skip
    assert hinted.retry and hinted.hinted and 25 < hinted.delay_s <= 30
