"""``langfuse``: GENERATION observations, v1 and v2 field names, latency and TTFT."""

from __future__ import annotations

import json
import os

import pytest

from conftest import ROOT
from replay.errors import LogFormatError
from replay.readers import ReadStats, iter_records

FOLDER = os.path.join(ROOT, "fixtures", "logs", "langfuse")
V1 = os.path.join(FOLDER, "observations_v1.jsonl")
V2 = os.path.join(FOLDER, "observations_v2.jsonl")


def read(path, stats=None, **kwargs):
    return list(iter_records([path], fmt="langfuse", stats=stats or ReadStats(), **kwargs))


def test_v1_generations_are_read_and_spans_counted_as_skipped():
    stats = ReadStats()
    records = read(V1, stats)
    assert [r.id for r in records] == ["obs-1", "obs-2", "obs-3"]
    first = records[0]
    assert first.request == {"temperature": 0.2, "max_tokens": 200, "model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are Acme's support assistant. Be brief and polite."},
        {"role": "user", "content": "Can you ship to Norway?"}]}  # fmt: skip
    assert (first.latency_ms, first.ttft_ms) == (1200.0, 400.0)  # the view's seconds
    assert first.answer.text == "Yes, we ship to Norway within 5 business days."
    assert (first.answer.usage.prompt_tokens, first.answer.usage.completion_tokens) == (25, 15)
    assert first.metadata == {"trace": "trace-1", "name": "support-answer", "category": "support"}
    assert dict(stats.skipped[V1]) == {"SPAN observation (only GENERATION is a request)": 1}


def test_a_v2_page_is_read_with_its_field_names_and_timestamps():
    ok, failed = read(V2)
    assert ok.request["model"] == "gpt-4o-mini"  # providedModelName
    assert ok.request["messages"] == [{"role": "user", "content": "How do I reset my password?"}]  # input.messages
    assert (ok.latency_ms, ok.ttft_ms) == (900.0, 300.0)  # from startTime, endTime, completionStartTime
    assert (ok.answer.usage.prompt_tokens, ok.answer.usage.completion_tokens) == (12, 18)  # usageDetails
    assert ok.metadata["user"] == "u-5" and ok.metadata["session_id"] == "s-5"
    assert failed.error == "429 Too Many Requests" and failed.answer is None and failed.ttft_ms is None


def test_a_malformed_generation_names_the_input_field(tmp_path):
    obs = json.loads(open(V1).readline())
    obs["input"] = [{"role": "robot", "content": "hi"}]
    path = tmp_path / "obs.jsonl"
    path.write_text(json.dumps(obs) + "\n")
    with pytest.raises(LogFormatError) as info:
        read(str(path))
    assert str(info.value) == (f"{path}:1: 'input[0].role' is 'robot':"
                               " expected one of system, developer, user, assistant, tool, function")  # fmt: skip
