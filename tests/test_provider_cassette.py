"""Provider protocol against recorded exchanges (vcrpy), with the Authorization header filtered.

The cassettes were recorded from the local mock server (``REPLAY_RECORD=1 pytest
tests/test_provider_cassette.py``); replayed, no server runs and nothing leaves the
process. vcrpy hands back a stream as one block, so these test parsing, not timing.
"""

import asyncio
import os

import pytest
import vcr

from replay.providers.openai_compat import OpenAICompatProvider

CASSETTES = os.path.join(os.path.dirname(__file__), "cassettes")
SECRET = "sk-test-cassette-" + "x" * 24
RECORD = bool(os.environ.get("REPLAY_RECORD"))

recorder = vcr.VCR(
    cassette_library_dir=CASSETTES,
    record_mode="once" if RECORD else "none",
    match_on=["method", "path", "body"],
    filter_headers=[("authorization", "REDACTED")],
    decode_compressed_response=True,
)

REQUEST = {"model": "logged-model", "max_tokens": 20, "messages": [{"role": "user", "content": "Where is parcel 7? [mock:tool]"}]}


def send(base_url, stream, transport):
    async def go():
        provider = OpenAICompatProvider(base_url=base_url, model="cand", params={"temperature": 0, "seed": 1},
                                        api_key=SECRET, stream=stream, transport=transport)  # fmt: skip
        try:
            return await provider.send(provider.build_body(REQUEST), 10)
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.fixture
def base_url():
    if not RECORD:
        yield "http://127.0.0.1:9/v1"  # never dialled: the cassette answers
        return
    from replay.mockserver import MockServer, ServerConfig

    with MockServer(ServerConfig(latency_ms=5)) as server:
        yield server.base_url


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_tool_call_exchange(base_url, transport, stream):
    name = f"tool_call_{'stream' if stream else 'whole'}_{transport}.yaml"
    with recorder.use_cassette(name) as cassette:
        completion = send(base_url, stream, transport)
    assert cassette.play_count == 1 or RECORD
    assert completion.finish_reason == "tool_calls"
    assert [call.name for call in completion.tool_calls] == ["lookup"]
    assert completion.tool_calls[0].arguments == '{"q": "Where is parcel 7? ["}'
    assert completion.usage.prompt_tokens and completion.usage.completion_tokens
    assert completion.system_fingerprint == "fp_mock" and completion.model == "cand"
    text = open(os.path.join(CASSETTES, name), encoding="utf-8").read()
    assert SECRET not in text and "REDACTED" in text
