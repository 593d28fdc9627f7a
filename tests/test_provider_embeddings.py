"""OpenAI-compatible ``/v1/embeddings``: one attempt, its answer read strictly, its errors scrubbed."""

import asyncio
import base64
import json
import struct

import httpx
import pytest

from replay.mockserver import embedding
from replay.providers import ProviderError
from replay.providers.openai_compat import OpenAIEmbeddingsProvider

KEY = "sk-" + "test-embeddings-0123456789abcdef"  # built, so no tracked file holds a key-shaped string


def floats(blob):
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def provider_for(handler, api_key=None):
    return OpenAIEmbeddingsProvider(base_url="http://embed.test/v1", model="e", api_key=api_key,
                                    httpx_transport=httpx.MockTransport(handler))  # fmt: skip


def embed(provider, texts):
    async def go():
        try:
            return await provider.embed(provider.embeddings_body(texts), 5)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_a_batch_comes_back_as_one_float32_vector_per_input_in_order(server):
    provider = OpenAIEmbeddingsProvider(base_url=server.base_url, model="e")
    answer = embed(provider, ["the parcel is late", "refund issued", "the parcel is late today"])
    assert answer.dims == 64 and len(answer.vectors) == 3
    assert floats(answer.vectors[1]) == embedding("refund issued")
    assert answer.prompt_tokens == 4 + 2 + 5 and answer.latency_ms > 0
    assert server.stats.embedding_batches == [3]


def answering(payload, status=200, headers=None):
    def handler(request):
        return httpx.Response(status, json=payload, headers=headers or {})

    return handler


def test_vectors_are_put_in_index_order_and_base64_is_read():
    packed = base64.b64encode(struct.pack("<2f", 0.5, -1.0)).decode()
    answer = embed(provider_for(answering({"data": [{"index": 1, "embedding": packed},
                                                    {"index": 0, "embedding": [1, 2]}]})), ["a", "b"])  # fmt: skip
    assert [floats(v) for v in answer.vectors] == [[1.0, 2.0], [0.5, -1.0]]


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"data": [{"index": 0, "embedding": [1.0]}]}, "not an embeddings answer: 1 vectors for 2 inputs"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]},
         "not an embeddings answer: item 1 has no usable index"),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [2.0, 3.0]}]},
         "not an embeddings answer: the vectors are empty or differ in length"),
        ({"data": [{"index": 0, "embedding": [1e300]}, {"index": 1, "embedding": [1.0]}]},
         "not an embeddings answer: an embedding holds a number beyond float32"),
        ({"data": [{"index": 0, "embedding": ["x"]}, {"index": 1, "embedding": [1.0]}]},
         "not an embeddings answer: an embedding is neither a list of numbers nor base64"),
        ({"error": {"message": "model not loaded", "code": "x"}}, "not an embeddings answer: model not loaded"),
    ],
)
def test_an_answer_that_is_not_the_vectors_asked_for_is_a_bad_response(payload, message):
    with pytest.raises(ProviderError) as error:
        embed(provider_for(answering(payload)), ["a", "b"])
    assert (error.value.message, error.value.error_class, error.value.status) == (message, "bad_response", 200)


def test_a_nan_in_the_answer_is_refused():
    def handler(request):
        return httpx.Response(200, content=b'{"data": [{"index": 0, "embedding": [NaN]}]}')

    with pytest.raises(ProviderError, match="beyond float32"):
        embed(provider_for(handler), ["a"])


def test_an_error_echoing_the_key_is_scrubbed_and_a_401_is_fatal():
    def handler(request):
        return httpx.Response(401, json={"error": {"message": f"bad key {request.headers['authorization']}"}})

    provider = provider_for(handler, api_key=KEY)
    with pytest.raises(ProviderError) as error:
        embed(provider, ["a"])
    assert KEY not in error.value.message and "[REDACTED]" in error.value.message
    import random

    assert provider.retry_plan(error.value, 1, 5, random.Random(1)).fatal


def test_the_request_is_the_model_and_the_inputs_with_the_key():
    seen = []

    def handler(request):
        seen.append((request.url.path, request.headers.get("authorization"), json.loads(request.content)))
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0]}]})

    embed(provider_for(handler, api_key=KEY), ["hello"])
    assert seen == [("/v1/embeddings", f"Bearer {KEY}", {"model": "e", "input": ["hello"]})]


def test_a_429_keeps_the_servers_hint_for_the_retry():
    provider = provider_for(answering({"error": {"message": "slow down"}}, 429, {"retry-after-ms": "40"}))
    with pytest.raises(ProviderError) as error:
        embed(provider, ["a"])
    import random

    plan = provider.retry_plan(error.value, 1, 5, random.Random(1))
    assert plan.retry and plan.hinted and plan.delay_s == pytest.approx(0.04)


@pytest.mark.parametrize("transport", ["native", "aiohttp", "httpx"])
def test_every_transport_carries_a_batch(server, transport):
    async def go():  # made on the loop, as a run makes it (aiohttp binds to the running loop)
        provider = OpenAIEmbeddingsProvider(base_url=server.base_url, model="e", transport=transport)
        try:
            return await provider.embed(provider.embeddings_body(["one text", "another text"]), 5)
        finally:
            await provider.aclose()

    answer = asyncio.run(go())
    assert [floats(v) for v in answer.vectors] == [embedding("one text"), embedding("another text")]
