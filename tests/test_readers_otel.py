"""``otel-genai``: OTLP JSON spans in the three generations of the GenAI conventions."""

from __future__ import annotations

import json
import os

import pytest

from conftest import ROOT
from replay.errors import LogFormatError
from replay.readers import ReadStats, iter_records

TRACES = os.path.join(ROOT, "fixtures", "logs", "otel-genai", "traces.jsonl")
SYSTEM = {"role": "system", "content": "You are Acme's support assistant. Be brief and polite."}


def read(path, stats=None, **kwargs):
    return {r.id: r for r in iter_records([path], fmt="otel-genai", stats=stats or ReadStats(), **kwargs)}


def test_the_current_message_attributes_are_read():
    stats = ReadStats()
    current = read(TRACES, stats)["a1b2c3d4e5f60001"]
    assert current.request == {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 200,
                               "messages": [SYSTEM, {"role": "user", "content": "Can you ship to Norway?"}]}  # fmt: skip
    assert (current.latency_ms, current.ttft_ms) == (900.0, 310.0)
    assert current.answer.text == "Yes, we ship to Norway within 5 business days."
    assert (current.answer.finish_reason, current.answer.model, current.answer.usage.prompt_tokens) == (
        "stop", "gpt-4o-mini-2024-07-18", 25)
    assert current.metadata["session_id"] == "conv-1" and current.metadata["service"] == "support-bot"
    assert dict(stats.skipped[TRACES]) == {"not a GenAI inference span": 1}


def test_the_deprecated_events_and_flat_attributes_are_read():
    records = read(TRACES)
    events, flat = records["a1b2c3d4e5f60002"], records["a1b2c3d4e5f60003"]
    assert events.request["messages"] == [SYSTEM, {"role": "user", "content": "Where is my parcel 3471?"}]
    assert events.answer.text.startswith("Parcel 3471") and events.metadata["provider"] == "openai"
    assert flat.request["messages"] == [SYSTEM, {"role": "user", "content": "How do I reset my password?"}]
    assert flat.answer.usage.completion_tokens == 18  # gen_ai.usage.completion_tokens


def test_a_failed_span_keeps_its_error_and_no_answer():
    failed = read(TRACES)["a1b2c3d4e5f60004"]
    assert failed.error == "RateLimitError" and failed.answer is None


def test_a_span_without_captured_content_says_capture_is_opt_in(tmp_path):
    export = json.loads(open(TRACES).readline())
    span = export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [a for a in span["attributes"] if not a["key"].endswith("messages")
                          and a["key"] != "gen_ai.system_instructions"]  # fmt: skip
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(export) + "\n")
    with pytest.raises(LogFormatError) as info:
        read(str(path))
    assert str(info.value) == (f"{path}:1: span a1b2c3d4e5f60001: the span has no prompt (capturing message content"
                               " is opt-in: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)")  # fmt: skip
    stats = ReadStats()
    assert len(read(str(path), stats, skip_invalid=True)) == 3 and stats.invalid == 1


def test_a_span_of_an_unforeseen_shape_is_a_located_error_not_a_crash(tmp_path):
    from replay.errors import LogFormatError
    from replay.readers import ReadStats, iter_records

    span = {"spanId": "ab", "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                           {"key": "gen_ai.input.messages", "value": {"stringValue": '["hello"]'}}]}  # fmt: skip
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n")
    with pytest.raises(LogFormatError) as raised:
        list(iter_records([str(path)], fmt="otel-genai", stats=ReadStats()))
    assert str(raised.value) == (f"{path}:1: a field has an unexpected shape (AttributeError: 'str' object has no"
                                 " attribute 'get'): not a record of this format")  # fmt: skip
