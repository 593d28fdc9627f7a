"""The local Anthropic Messages test server speaks Anthropic's protocol, not a private dialect:
the official ``anthropic`` SDK, as a client, reads every answer and every event it sends."""

from __future__ import annotations

import anthropic
import pytest

from anthropic_server import ANSWER, KEY, AnthropicServer


@pytest.fixture(scope="module")
def server():
    with AnthropicServer() as srv:
        yield srv


@pytest.fixture
def client(server):
    with anthropic.Anthropic(api_key=KEY, base_url=f"http://127.0.0.1:{server.port}", max_retries=0) as sdk:
        yield sdk


def ask(text, **extra):
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": text}], **extra}


TOOLS = [{"name": "where", "description": "Find a parcel", "input_schema": {"type": "object", "properties": {"parcel": {"type": "string"}}}}]


def test_the_sdk_reads_a_whole_message(client):
    message = client.messages.create(**ask("Where is parcel 7?"))
    assert [block.text for block in message.content] == [ANSWER]
    assert message.stop_reason == "end_turn" and message.usage.input_tokens == 21 and message.usage.output_tokens == 6


def test_the_sdk_stream_parser_accepts_every_event(client):
    with client.messages.stream(**ask("Where is parcel 7? [a:cache]")) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "content_block_delta" in kinds
    assert message.content[0].text == ANSWER and message.stop_reason == "end_turn"
    assert (message.usage.cache_creation_input_tokens, message.usage.cache_read_input_tokens) == (1000, 4000)


def test_the_sdk_joins_streamed_tool_input(client):
    with client.messages.stream(**ask("Where is parcel 7?", tools=TOOLS)) as stream:
        message = stream.get_final_message()
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "where" and block.input == {"parcel": "7", "city": "Oslo"}
    assert message.stop_reason == "tool_use"


def test_the_sdk_raises_on_an_error_event_after_the_200(client):
    with pytest.raises(anthropic.APIStatusError) as raised:
        with client.messages.stream(**ask("Where? [a:error*1]")) as stream:
            for _ in stream:
                pass
    assert "Overloaded" in str(raised.value)


@pytest.mark.parametrize(
    "directive, error, status",
    [("[a:529*1]", anthropic.InternalServerError, 529), ("[a:429*1]", anthropic.RateLimitError, 429),
     ("[a:401]", anthropic.AuthenticationError, 401), ("[a:credit]", anthropic.BadRequestError, 400)],
)  # fmt: skip
def test_the_sdk_reads_error_answers(client, directive, error, status):
    with pytest.raises(error) as raised:
        client.messages.create(**ask(f"Where? {directive}"))
    assert raised.value.status_code == status and raised.value.body["type"] == "error"
