"""The adapters between OpenAI chat and Anthropic Messages requests, on realistic conversations."""

from __future__ import annotations

from replay.wire.adapt import ANTHROPIC, OPENAI, chat_to_messages, messages_to_chat, request_format

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
AGENT = {
    "model": "gpt-4o", "temperature": 0.3, "seed": 7, "max_completion_tokens": 256, "stop": ["\n\nEND"],
    "tools": [WEATHER], "tool_choice": "auto", "parallel_tool_calls": False, "user": "u-42",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo and Bergen? Photo:"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/oslo.jpg"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Bergen"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "4°C, rain"},
        {"role": "tool", "tool_call_id": "call_2", "content": "6°C, wind"},
    ],
}  # fmt: skip


def test_an_agent_conversation_becomes_a_messages_request():
    body = chat_to_messages(AGENT, 4096)
    assert body["system"] == "You are terse." and body["max_tokens"] == 256 and body["stop_sequences"] == ["\n\nEND"]
    assert body["metadata"] == {"user_id": "u-42"} and body["temperature"] == 0.3
    assert body["tools"] == [{"name": "get_weather", "description": "Weather now", "input_schema": WEATHER["function"]["parameters"]}]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    user, assistant, results = body["messages"]
    assert user == {"role": "user", "content": [
        {"type": "text", "text": "Weather in Oslo and Bergen? Photo:"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/oslo.jpg"}}]}  # fmt: skip
    assert assistant == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Bergen"}}]}  # fmt: skip
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "4°C, rain"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "6°C, wind"}]}  # fmt: skip
    assert body.lossy == ("seed dropped: Anthropic has none",)  # the tool results share a turn without loss
    assert request_format(body) == ANTHROPIC and request_format(AGENT) == OPENAI


def test_the_round_trip_gives_back_the_conversation():
    back = messages_to_chat(chat_to_messages(AGENT, 4096))
    expected = [message for message in AGENT["messages"]]
    assert back["messages"][0] == expected[0] and back["messages"][2:] == expected[2:]
    assert back["messages"][1]["content"] == expected[1]["content"]
    assert back["tools"] == AGENT["tools"] and back["tool_choice"] == "auto" and back["parallel_tool_calls"] is False
    assert (back["max_tokens"], back["stop"], back["user"], back["temperature"]) == (256, ["\n\nEND"], "u-42", 0.3)
    assert back.lossy == ()


def test_lossy_steps_are_named():
    request = {"model": "gpt-4o", "temperature": 1.6, "n": 3, "logit_bias": {"50256": -100}, "frequency_penalty": 0.5,
               "presence_penalty": 0.1, "stop": " ", "messages": [
                   {"role": "user", "content": "one"}, {"role": "user", "content": "two"},
                   {"role": "assistant", "content": "ok"}, {"role": "developer", "content": "Be kind."},
                   {"role": "user", "content": "three"}]}  # fmt: skip
    body = chat_to_messages(request, 1024)
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
                                {"role": "assistant", "content": "ok"}, {"role": "user", "content": "three"}]  # fmt: skip
    assert body["system"] == "Be kind." and body["temperature"] == 1 and body["max_tokens"] == 1024 and "stop_sequences" not in body
    assert set(body.lossy) == {
        "max_tokens 1024 supplied: the log has none and Anthropic requires it",
        "consecutive messages of one role merged: Anthropic alternates user and assistant",
        "mid-conversation system message moved to the top: Anthropic has one system prompt",
        "logit_bias dropped: Anthropic has none", "frequency_penalty dropped: Anthropic has none",
        "presence_penalty dropped: Anthropic has none", "temperature capped at 1: Anthropic allows 0 to 1",
        "n > 1 dropped: Anthropic answers once", "whitespace-only stop dropped: Anthropic refuses it",
    }  # fmt: skip


def test_json_mode_is_a_forced_tool():
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    request = {"model": "gpt-4o", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True}}}  # fmt: skip
    body = chat_to_messages(request, 4096)
    assert body["tools"][0]["name"] == "reply" and body["tools"][0]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": "reply"} and body.answer_tool == "reply"
    assert body.lossy == ("response_format json_schema as a forced tool: Anthropic has no response_format",)


def test_an_anthropic_request_becomes_a_chat_request():
    logged = {"model": "claude-sonnet-4-5", "max_tokens": 512, "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
              "temperature": 0, "top_k": 5, "stop_sequences": ["END"], "tool_choice": {"type": "any"},
              "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
              "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
              "messages": [{"role": "user", "content": "Weather in Oslo?"},
                           {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                                                             {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
                           {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "4°C, rain"},
                                                        {"type": "text", "text": "And tomorrow?"}]}]}  # fmt: skip
    assert request_format(logged) == ANTHROPIC
    body = messages_to_chat(logged)
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "toolu_1", "type": "function",
                                                                     "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "4°C, rain"}, {"role": "user", "content": "And tomorrow?"}]  # fmt: skip
    assert body["tool_choice"] == "required" and body["stop"] == ["END"] and body["max_tokens"] == 512
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    assert set(body.lossy) == {"top_k dropped: OpenAI has none", "cache_control dropped: OpenAI caches prompts by itself"}


def test_a_chat_request_with_vllm_top_k_stays_a_chat_request():
    request = {"model": "m", "top_k": 5, "messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}  # fmt: skip
    assert request_format(request) == OPENAI


def test_tool_choice_forms():
    base = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
    named = chat_to_messages({**base, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, 10)
    assert named["tool_choice"] == {"type": "tool", "name": "get_weather"} and named.lossy == ()
    assert chat_to_messages({**base, "tool_choice": "required"}, 10)["tool_choice"] == {"type": "any"}
    assert chat_to_messages({**base, "tool_choice": "none"}, 10)["tool_choice"] == {"type": "none"}
    allowed = chat_to_messages({**base, "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}}, 10)
    assert allowed["tool_choice"] == {"type": "auto"} and allowed.lossy == ("tool_choice sent as auto: Anthropic has no allowed-tools choice",)
