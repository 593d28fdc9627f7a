"""The OpenAI-compatible mock server speaks OpenAI's protocol: the official ``openai`` SDK, as a
client, reads its whole answers, its streams (with the usage chunk and tool-call fragments) and
its error answers."""

from __future__ import annotations

import openai
import pytest

from replay.mockserver import MockServer, ServerConfig


@pytest.fixture(scope="module")
def mock():
    with MockServer(ServerConfig(latency_ms=5)) as srv:
        yield srv


@pytest.fixture
def client(mock):
    with openai.OpenAI(api_key="sk-test-" + "1" * 20, base_url=mock.base_url, max_retries=0) as sdk:
        yield sdk


def ask(text):
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "max_tokens": 50}


def test_the_sdk_reads_a_whole_answer(client):
    completion = client.chat.completions.create(**ask("Where is parcel 7?"))
    assert completion.choices[0].message.content.startswith("Thanks for asking")
    assert completion.choices[0].finish_reason == "stop" and completion.usage.prompt_tokens > 0


def test_the_sdk_stream_parser_accepts_every_chunk(client):
    chunks = list(client.chat.completions.create(**ask("Where is parcel 7?"), stream=True, stream_options={"include_usage": True}))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.startswith("Thanks for asking") and chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"


def test_the_sdk_joins_streamed_tool_calls(client):
    chunks = list(client.chat.completions.create(**ask("weather please [mock:tool]"), stream=True))
    fragments = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or ()]
    assert fragments and fragments[0].function.name == "lookup"
    assert "".join(call.function.arguments or "" for call in fragments).startswith('{"q"')


@pytest.mark.parametrize("directive, error", [("[mock:401]", openai.AuthenticationError), ("[mock:quota]", openai.RateLimitError),
                                              ("[mock:500*1]", openai.InternalServerError)])  # fmt: skip
def test_the_sdk_reads_error_answers(client, directive, error):
    with pytest.raises(error) as raised:
        client.chat.completions.create(**ask(f"hi {directive} {error.__name__}"))
    assert raised.value.body is not None
