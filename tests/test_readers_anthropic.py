"""Shadow-log records whose request is an Anthropic Messages body and whose answer is a Messages answer."""

from __future__ import annotations

import json

import pytest

from conftest import record, write_log
from replay.errors import LogFormatError
from replay.readers import iter_records

MESSAGES = {
    "id": "c1",
    "request": {"model": "claude-sonnet-4-5", "max_tokens": 64, "system": "Be terse.", "stop_sequences": ["END"],
                "messages": [{"role": "user", "content": "Weather?"},
                             {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
                             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "4°C"}]}]},
    "response": {"type": "message", "model": "claude-sonnet-4-5-20250929", "stop_reason": "tool_use",
                 "content": [{"type": "text", "text": "Checking again."},
                             {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Bergen"}}],
                 "usage": {"input_tokens": 30, "output_tokens": 9, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100}},
    "latency_ms": 700, "ttft_ms": 200,
}  # fmt: skip


def test_a_messages_answer_is_read_as_a_neutral_completion(tmp_path):
    [rec] = list(iter_records([write_log(tmp_path / "log.jsonl", [MESSAGES])]))
    answer = rec.answer
    assert answer.text == "Checking again." and answer.finish_reason == "tool_calls" and answer.model == "claude-sonnet-4-5-20250929"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in answer.tool_calls] == [("toolu_2", "get_weather", {"city": "Bergen"})]
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (135, 9)
    assert (answer.usage.cache_write_tokens, answer.usage.cache_read_tokens) == (5, 100)
    assert (answer.latency_ms, answer.ttft_ms) == (700, 200)


@pytest.mark.parametrize(
    "change, reason",
    [({"request": {**MESSAGES["request"], "system": 7}}, "'request.system' must be a string or a list of text blocks, got 7"),
     ({"request": {**MESSAGES["request"], "stop_sequences": "END"}}, "'request.stop_sequences' must be a list of strings"),
     ({"response": {**MESSAGES["response"], "content": ["hi"]}}, "'response.content[0]' must be a content block"),
     ({"response": {**MESSAGES["response"], "content": [{"type": "text", "text": 3}]}}, "'response.content[0].text' must be a string, got a number"),
     ({"response": {**MESSAGES["response"], "content": [{"type": "tool_use", "name": 3}]}}, "'response.content[0].name' must be a string")],
)  # fmt: skip
def test_a_malformed_messages_record_names_the_line_and_field(tmp_path, change, reason):
    path = write_log(tmp_path / "log.jsonl", [record("ok"), {**MESSAGES, **change}])
    with pytest.raises(LogFormatError) as info:
        list(iter_records([path]))
    assert str(info.value).startswith(f"{path}:2: ") and reason in str(info.value)
