import json

import pytest

from replay.providers.stream import StreamAssembler, StreamError


def feed(assembler, events, start=0.0, step=0.1):
    for i, event in enumerate(events):
        payload = event if isinstance(event, str) else json.dumps(event)
        assembler.feed_line(f"data: {payload}".encode(), start + step * (i + 1))


def chunk(delta=None, finish=None, **extra):
    return {"id": "c1", "model": "m-2026", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def test_text_usage_and_ttft_from_first_content_chunk():
    a = StreamAssembler(started_at=0.0)
    feed(a, [
        chunk({"role": "assistant", "content": ""}, system_fingerprint="fp_1"),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
        "[DONE]",
    ])  # fmt: skip
    result = a.result(ended_at=1.0)
    assert result.text == "Hello"
    assert result.finish_reason == "stop"
    assert result.ttft_ms == pytest.approx(200)  # the second event, not the role-only first
    assert result.latency_ms == pytest.approx(1000)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.estimated) == (7, 2, False)
    assert result.system_fingerprint == "fp_1" and result.model == "m-2026"
    assert a.done


def test_tool_call_fragments_join_by_index():
    a = StreamAssembler(0.0)
    feed(a, [
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "put", "arguments": "{\"x\""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": ": 1}"}}]}),
        chunk({}, "tool_calls"),
    ])  # fmt: skip
    result = a.result(1.0)
    assert result.text is None
    assert [(c.id, c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("call_a", "get", {"city": "Oslo"}),
        ("call_b", "put", {"x": 1}),
    ]
    assert result.ttft_ms == pytest.approx(100)


def test_refusal_counts_as_first_token():
    a = StreamAssembler(0.0)
    feed(a, [chunk({"role": "assistant"}), chunk({"refusal": "I can't"}), chunk({}, "stop")])
    result = a.result(1.0)
    assert result.refusal == "I can't" and result.ttft_ms == pytest.approx(200)


def test_usage_chunk_with_null_choices():
    a = StreamAssembler(0.0)
    feed(a, [chunk({"content": "x"}, "stop"), {"choices": None, "usage": {"input_tokens": 3, "output_tokens": 1}}])
    assert a.result(1.0).usage.prompt_tokens == 3


def test_error_event_raises():
    a = StreamAssembler(0.0)
    with pytest.raises(StreamError, match="overloaded"):
        feed(a, [chunk({"content": "x"}), {"error": {"message": "overloaded", "code": "server_error"}}])


def test_incomplete_until_finish_or_done():
    a = StreamAssembler(0.0)
    feed(a, [chunk({"content": "x"})])
    assert not a.complete
    feed(a, [chunk({}, "length")])
    assert a.complete and a.result(1).finish_reason == "length"


def test_comments_and_blank_lines_are_ignored():
    a = StreamAssembler(0.0)
    a.feed_line(b": keep-alive", 0.1)
    a.feed_line(b"", 0.1)
    assert a.chunks == 0
