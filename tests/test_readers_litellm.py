"""``litellm``: StandardLoggingPayload records and spend-log exports."""

from __future__ import annotations

import json
import os

import pytest

from conftest import ROOT
from replay.errors import LogFormatError
from replay.readers import ReadStats, iter_records

FOLDER = os.path.join(ROOT, "fixtures", "logs", "litellm")
PAYLOAD = os.path.join(FOLDER, "standard_logging.jsonl")


def read(path, **kwargs):
    return list(iter_records([path], fmt="litellm", stats=ReadStats(), **kwargs))


def test_a_payload_maps_request_answer_timing_and_metadata():
    records = read(PAYLOAD)
    assert [r.id for r in records] == ["chatcmpl-00000001-llm", "chatcmpl-00000002-llm", "chatcmpl-00000003-llm",
                                       "chatcmpl-failed-llm"]  # fmt: skip
    first = records[0]
    assert first.request == {"temperature": 0.2, "max_tokens": 200, "model": "support-model", "messages": [
        {"role": "system", "content": "You are Acme's support assistant. Be brief and polite."},
        {"role": "user", "content": "Can you ship to Norway?"}]}  # extra_body, not a chat parameter, is dropped
    assert first.latency_ms == 900.0 and first.ttft_ms is None  # not streamed: completionStartTime is the end
    assert first.timestamp == "2025-12-01T12:01:00Z" and first.status == 200
    assert first.answer.text == "Yes, we ship to Norway within 5 business days."
    assert first.metadata == {"model": "gpt-4o-mini", "provider": "openai", "user": "customer-1", "session_id": "trace-1",
                              "tags": ["support", "eu"], "team": "team-support", "cost_usd": 0.000123,
                              "cache_hit": False}  # fmt: skip
    assert records[1].ttft_ms == 250.0  # streamed: the first chunk
    failed = records[3]
    assert failed.status == 429 and failed.answer is None
    assert failed.error == "litellm.RateLimitError: OpenAIException - Rate limit reached"


def test_a_callback_kwargs_wrapper_is_unwrapped(tmp_path):
    payload = json.loads(open(PAYLOAD).readline())
    path = tmp_path / "callback.jsonl"
    path.write_text(json.dumps({"standard_logging_object": payload}) + "\n")
    assert [r.id for r in read(str(path))] == ["chatcmpl-00000001-llm"]


def test_a_spend_log_row_is_read_with_its_iso_times():
    (record,) = read(os.path.join(FOLDER, "spend_logs.jsonl"))
    assert (record.id, record.latency_ms, record.timestamp) == ("chatcmpl-sp1", 900.0, "2026-12-01T09:00:00.120Z")
    assert record.metadata["session_id"] == "sess-9" and record.metadata["user"] == "u-17"
    assert record.answer.usage.completion_tokens == 15


def test_a_spend_log_without_prompts_says_they_were_not_stored():
    path = os.path.join(FOLDER, "spend_logs_no_prompts.jsonl")
    with pytest.raises(LogFormatError) as info:
        read(path)
    assert str(info.value) == (f"{path}:1: the prompt was not stored ('messages' is empty: LiteLLM's spend logs keep"
                               " no prompt unless general_settings.store_prompts_in_spend_logs: true,"
                               " and turn_off_message_logging drops it)")  # fmt: skip


def test_a_malformed_payload_names_line_and_field(tmp_path):
    lines = open(PAYLOAD).read().splitlines()
    bad = json.loads(lines[2])
    bad["messages"][1]["content"] = 7
    lines[2] = json.dumps(bad)
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LogFormatError) as info:
        read(str(path))
    assert str(info.value) == f"{path}:3: 'messages[1].content' must be a string or a list of content parts, got a number"
    stats = ReadStats()
    assert len(list(iter_records([str(path)], fmt="litellm", stats=stats, skip_invalid=True))) == 3
    assert stats.invalid == 1
