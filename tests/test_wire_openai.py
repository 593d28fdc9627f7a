"""The one parser of the OpenAI chat-completions wire format, shared by the shadow reader
(logged answers) and the OpenAI-compatible provider (live answers)."""

import asyncio
import json
from dataclasses import replace

import pytest

from fault_server import COMPLETION, FaultServer
from replay.providers.openai_compat import OpenAICompatProvider
from replay.readers.shadow import parse_record
from replay.types import Completion, Location, ToolCall, Usage
from replay.wire.openai import completion_from_body, usage_from

TOOL_BODY = {"id": "x", "model": "m", "system_fingerprint": "fp",
             "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"content": None, "tool_calls": [
                 {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
             "usage": {"prompt_tokens": 4, "completion_tokens": 6}}  # fmt: skip


def test_non_streaming_body():
    result = completion_from_body(TOOL_BODY, latency_ms=250.0, ttft_ms=250.0)
    assert result.tool_calls[0].name == "f" and result.finish_reason == "tool_calls"
    assert result.latency_ms == pytest.approx(250) and result.ttft_ms == pytest.approx(250)
    assert result.usage.completion_tokens == 6


def test_a_body_reads_into_a_provider_neutral_completion():
    assert completion_from_body(TOOL_BODY, latency_ms=812.0, ttft_ms=240.0) == Completion(
        text=None, tool_calls=(ToolCall(id="c", name="f", arguments="{}"),), finish_reason="tool_calls",
        usage=Usage(prompt_tokens=4, completion_tokens=6), model="m", system_fingerprint="fp",
        ttft_ms=240.0, latency_ms=812.0, response_id="x",
    )  # fmt: skip


def test_usage_dialects_read_the_same():
    assert usage_from({"input_tokens": 3, "output_tokens": 2}) == usage_from({"prompt_tokens": 3, "completion_tokens": 2})
    assert usage_from(None) == Usage()


def test_the_reader_hands_over_the_logged_answer_as_a_completion():
    line = json.dumps({"id": "r1", "request": {"messages": [{"role": "user", "content": "hi"}]},
                       "response": TOOL_BODY, "latency_ms": 812, "ttft_ms": 240})  # fmt: skip
    record = parse_record(line, Location("log.jsonl", 3))
    assert record.answer == completion_from_body(TOOL_BODY, latency_ms=812.0, ttft_ms=240.0)
    assert str(record.location) == "log.jsonl:3"


def test_a_record_without_a_response_has_no_answer():
    record = parse_record(json.dumps({"id": "r1", "request": {"messages": [{"role": "user", "content": "hi"}]}}))
    assert record.answer is None


@pytest.mark.parametrize("transport", ["native", "aiohttp", "httpx"])
def test_reader_and_provider_read_the_same_body_into_the_same_completion(transport):
    async def live() -> Completion:
        provider = OpenAICompatProvider(base_url=server.url("ok"), model="cand", params={}, api_key="sk-test",
                                        stream=False, transport=transport)  # fmt: skip
        try:
            return await provider.send(provider.build_body({"messages": [{"role": "user", "content": "hi"}]}), 5)
        finally:
            await provider.aclose()

    with FaultServer() as server:
        sent = asyncio.run(live())
    line = json.dumps({"id": "r1", "request": {"messages": [{"role": "user", "content": "hi"}]}, "response": COMPLETION})
    logged = parse_record(line).answer
    assert logged is not None and sent.text == COMPLETION["choices"][0]["message"]["content"]
    untimed = {"latency_ms": None, "ttft_ms": None, "ratelimit_wait_s": None}
    assert replace(sent, **untimed) == replace(logged, **untimed)


@pytest.mark.parametrize(("location", "text"), [
    (Location("logs/a.jsonl", line=12), "logs/a.jsonl:12"),
    (Location("batch.json", index=4), "batch.json[4]"),
    (Location("logs/a.jsonl", line=1, index=0), "logs/a.jsonl:1"),
    (Location("langfuse"), "langfuse"),
])  # fmt: skip
def test_a_location_prints_as_messages_name_it(location, text):
    assert str(location) == text
