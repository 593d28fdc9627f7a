"""The embeddings stage's sending half: full batches, the store as a cache, retries, a dead endpoint."""

import asyncio
import math
import socket

import pytest

from replay.config import Arm, Embeddings, Limits
from replay.embeddings import text_digest
from replay.errors import EmbeddingsFailed
from replay.stages.embeddings import Embedder
from replay.store import Store


def endpoint(url, batch_size=64, **limits):
    limits.setdefault("max_attempts", 3)
    return Embeddings(Arm(base_url=url, model="mock-embed", stream=False, limits=Limits(**limits)), batch_size)


async def no_wait(seconds):
    return None


def embed_all(store, config, texts):
    """Offer ``texts`` one by one, as pairs come, then finish; the embedder says what it did."""

    async def go():
        embedder = Embedder(store, config, pause=no_wait)
        for text in texts:
            embedder.want(text_digest(text), text)
        await embedder.flush()
        await embedder.aclose()
        return embedder

    return asyncio.run(go())


def test_texts_go_out_in_full_batches_and_the_last_partial_one_at_the_end(server, store_path):
    store = Store(store_path)
    texts = [f"answer number {i}" for i in range(130)]
    embedder = embed_all(store, endpoint(server.base_url), texts + texts[:40])  # repeats are sent once
    assert server.stats.embedding_batches == [64, 64, 2]
    assert embedder.embedded == 130 and embedder.unembedded == 0 and embedder.stopped is None
    assert store.embedded("mock-embed", [text_digest(t) for t in texts]) == {text_digest(t) for t in texts}


def test_a_text_already_in_the_store_is_never_sent_again(server, store_path):
    store = Store(store_path)
    old = [f"old text {i}" for i in range(100)]
    embed_all(store, endpoint(server.base_url, batch_size=10), old)
    calls = server.stats.embedding_calls
    new = [f"new text {i}" for i in range(25)]
    mixed = [text for pair in zip(old, new) for text in pair] + old[25:]
    embed_all(Store(store_path), endpoint(server.base_url, batch_size=10), mixed)  # a second run, a second store connection
    assert server.stats.embedding_batches[calls:] == [10, 10, 5]
    assert math.ceil(25 / 10) == server.stats.embedding_calls - calls
    other_model = Embeddings(Arm(base_url=server.base_url, model="other-model", stream=False), 64)
    embed_all(store, other_model, old[:3])  # the cache is per model
    assert server.stats.embedding_batches[-1] == 3


def test_a_429_and_a_500_are_retried_and_every_text_is_embedded(server, store_path):
    store = Store(store_path)
    texts = ["first [mock:429*1]", "second", "third [mock:500*2]", "fourth"]
    embedder = embed_all(store, endpoint(server.base_url, batch_size=2), texts)
    assert server.stats.embedding_calls == 2 + 1 + 2  # two batches, one retry of the first, two of the second
    assert server.stats.embedding_batches == [2, 2]
    assert embedder.embedded == 4 and embedder.unembedded == 0


def test_a_batch_that_keeps_failing_is_counted_and_the_others_are_kept(server, store_path):
    store = Store(store_path)
    embedder = embed_all(store, endpoint(server.base_url, batch_size=2, max_attempts=2), ["a [mock:500*9]", "b", "c", "d"])
    assert (embedder.embedded, embedder.unembedded, embedder.stopped) == (2, 2, None)
    assert embedder.last_error == "scripted 500"


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_endpoint_stops_embedding_in_one_clear_line(store_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    embedder = embed_all(Store(store_path), endpoint(url, batch_size=1, max_attempts=2), [f"t{i}" for i in range(10)])
    assert isinstance(embedder.stopped, EmbeddingsFailed) and embedder.stopped.exit_code == 3
    message = str(embedder.stopped)
    assert message.startswith(f"embeddings endpoint {url} is unreachable: ") and "\n" not in message
    assert embedder.embedded == 0 and embedder.unembedded == 10


def test_a_refused_key_stops_embedding_without_retrying(server, store_path):
    embedder = embed_all(Store(store_path), endpoint(server.base_url, batch_size=1), ["x [mock:401]", "y [mock:401]"])
    assert isinstance(embedder.stopped, EmbeddingsFailed)
    assert str(embedder.stopped) == "embeddings endpoint answered 401: scripted 401 — not retrying"
    assert server.stats.embedding_calls <= 2


def test_fewer_batches_than_the_give_up_count_all_failing_to_connect_still_stop_in_one_line(store_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    embedder = embed_all(Store(store_path), endpoint(url, batch_size=5, max_attempts=1), [f"t{i}" for i in range(10)])
    assert isinstance(embedder.stopped, EmbeddingsFailed) and embedder.unembedded == 10
    assert str(embedder.stopped).startswith(f"embeddings endpoint {url} is unreachable: ")


def test_batches_are_paced_by_the_endpoints_rpm_and_priced_against_the_budget(server, store_path):
    waits, spent = [], []

    async def record_wait(seconds):
        waits.append(seconds)
        await asyncio.sleep(seconds)

    async def go():
        embedder = Embedder(Store(store_path), endpoint(server.base_url, batch_size=2, rpm=600, concurrency=1),
                            pause=record_wait, spend=spent.append, prices={"mock-embed": {"input": 1.0, "output": 0.0}})  # fmt: skip
        for text in ("one two", "three", "four five six", "seven"):
            embedder.want(text_digest(text), text)
        await embedder.flush()
        await embedder.aclose()

    asyncio.run(go())
    assert server.stats.embedding_batches == [2, 2]
    assert waits and 0.05 < waits[0] <= 60 / 600 * 1.03  # the second batch waited its turn (rpm, 3% margin)
    assert spent == pytest.approx([3 / 1e6, 4 / 1e6])  # the tokens the server counted, at $1 per million
