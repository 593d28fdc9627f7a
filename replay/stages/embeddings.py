"""The embeddings stage: both answers of each pair embedded in batches, the vectors cached in
the store, and each pair's cosine stored for ``semantic_similarity``.

Texts are collected as pairs come; a batch is sent as soon as ``batch_size`` texts that the
store does not hold yet are waiting, and the last, partial one at the end: N new texts
cost ceil(N / batch_size) calls, whatever order the pairs come in. A text already embedded
under the model (earlier in the run, by an earlier run, by another process) is never sent
again. The cosines are stored at the end, from the stored vectors.

The read-only commands never call an endpoint: they read the stored cosines, compute those
of pairs whose vectors are stored (a run stopped between the two), and count the pairs that
have no vector in a note; :func:`embed_stored` embeds those later.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, ClassVar, Iterable, NoReturn, Sequence

from replay.arm import AttemptLoop, NotSent
from replay.config import Embeddings
from replay.embeddings import EMPTY_DIGEST, answer_text, cosines, pair_cosine, stored_answer_text, text_digest
from replay.errors import ArmStopped, EmbeddingsFailed, InputError, RunIncomplete, StoreWriteError
from replay.pipeline import AnsweredPair, PairStage, StageServices
from replay.pricing import PriceTable
from replay.providers import EMBEDDING_PROVIDERS, ProviderError
from replay.providers.openai_compat import OpenAIEmbeddingsProvider
from replay.retry import RetryPlan
from replay.stages.compare import group_by_request
from replay.store import Store
from replay.types import COMPARED_ARM, PAIR_CANDIDATE, PAIR_KINDS, Embedded, Outcome

UNREACHABLE_AFTER = 3
"""Batches that failed on connection errors, with no answer yet, before the endpoint is given up."""
COSINE_CHUNK = 2_000
"""Pairs whose vectors are read and compared at a time: a few tens of MB of vectors at most."""
ANSWER_FIELDS = ("request_id", "arm", "status", "text", "tool_calls_json", "refusal")


@dataclass(frozen=True)
class PairTexts:
    """One pair by the digests of its two texts; both None when an arm did not answer."""

    request_id: str
    baseline: str | None
    candidate: str | None


def outcome_text(outcome: Outcome) -> str | None:
    """The text embedded for an answer, None for an error (nothing to embed)."""
    completion = outcome.completion
    if outcome.status != "ok" or completion is None:
        return None
    return answer_text(completion.text, [call.as_dict() for call in completion.tool_calls], completion.refusal)


class _Batches:
    """The embeddings provider as the attempt loop sends through it."""

    def __init__(self, provider: OpenAIEmbeddingsProvider) -> None:
        self.provider = provider

    async def send(self, body: dict[str, Any], timeout_s: float) -> Embedded:
        return await self.provider.embed(body, timeout_s)

    def retry_plan(self, error: ProviderError, attempt: int, max_attempts: int, rng: random.Random) -> RetryPlan:
        return self.provider.retry_plan(error, attempt, max_attempts, rng)

    async def aclose(self) -> None:
        await self.provider.aclose()


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class Embedder:
    """Sends texts to an embeddings endpoint in full batches and stores their vectors.

    :meth:`want` is called on the event loop and never waits: a full batch goes out as its
    own task, through the endpoint's limiter, retries and scrubbing (as an arm's requests)."""

    def __init__(
        self, store: Store, embeddings: Embeddings, *, provider: OpenAIEmbeddingsProvider | None = None,
        pause: Callable[[float], Awaitable[None]] = _sleep, stopping: Callable[[], bool] = lambda: False,
        rng: random.Random | None = None, spend: Callable[[float], None] = lambda usd: None,
        prices: dict[str, dict[str, float]] | None = None,
    ) -> None:  # fmt: skip
        endpoint = embeddings.endpoint
        self.store, self.model, self.batch_size = store, endpoint.model, embeddings.batch_size
        self.provider = provider or EMBEDDING_PROVIDERS[endpoint.provider].for_endpoint("embeddings", endpoint)
        self._outer_pause, self._outer_stopping = pause, stopping
        self.loop = AttemptLoop("embeddings", endpoint, _Batches(self.provider), pause=self._pause,
                                stopping=self._stopping, rng=rng)  # fmt: skip
        self._spend, self._prices = spend, PriceTable(prices or {})
        self._unchecked: dict[str, str] = {}
        """digest -> text, not yet looked up in the store."""
        self._waiting: dict[str, str] = {}
        """digest -> text the store does not hold: the next batches."""
        self._seen: set[str] = {EMPTY_DIGEST}
        self._tasks: set[asyncio.Future[None]] = set()
        self.calls = 0
        self.embedded = 0
        self.unembedded = 0
        """Texts whose batch failed or was not sent."""
        self.last_error: str | None = None
        self.stopped: RunIncomplete | None = None
        self._reached = False
        self._unreachable = 0

    def want(self, digest: str, text: str) -> None:
        """Have ``text`` (whose digest is given) embedded, unless it is or will be already."""
        if digest in self._seen:
            return
        self._seen.add(digest)
        self._unchecked[digest] = text
        if len(self._unchecked) + len(self._waiting) >= self.batch_size:
            self._look_up()
            while len(self._waiting) >= self.batch_size:
                self._send(self._take())

    async def flush(self) -> None:
        """Send what waits (the last batch may be partial) and wait for every batch."""
        self._look_up()
        while self._waiting:
            self._send(self._take())
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
        if self._unreachable and not self._reached:  # fewer batches than UNREACHABLE_AFTER, all failed to connect
            self._stop(f"embeddings endpoint {self.loop.arm.base_url} is unreachable: {self.last_error}")

    async def aclose(self) -> None:
        await self.loop.aclose()

    def _look_up(self) -> None:
        """Move the texts the store lacks to the waiting ones; one query for all."""
        if not self._unchecked:
            return
        known = self.store.embedded(self.model, list(self._unchecked))
        for digest, text in self._unchecked.items():
            if digest not in known:
                self._waiting[digest] = text
        self._unchecked = {}

    def _take(self) -> list[tuple[str, str]]:
        batch = list(itertools.islice(self._waiting.items(), self.batch_size))
        for digest, _ in batch:
            del self._waiting[digest]
        return batch

    def _send(self, batch: list[tuple[str, str]]) -> None:
        if self._stopping():
            self.unembedded += len(batch)
            return
        task = asyncio.ensure_future(self._embed(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _embed(self, batch: list[tuple[str, str]]) -> None:
        texts = [text for _, text in batch]
        tokens = sum(len(text) for text in texts) // 4 if self.loop.arm.limits.tpm else 0
        try:
            exchange = await self.loop.call(self.provider.embeddings_body(texts), tokens)
        except ArmStopped as exc:
            self._stop(str(exc))
        except NotSent:
            pass
        else:
            self.calls += len(exchange.attempts)
            if exchange.completion is not None:
                return self._keep(batch, exchange.completion)
            error = exchange.error
            assert error is not None
            self.last_error = error.message
            if error.error_class == "connection_error" and not self._reached:
                self._unreachable += 1
                if self._unreachable >= UNREACHABLE_AFTER:
                    self._stop(f"embeddings endpoint {self.loop.arm.base_url} is unreachable: {error.message}")
            else:
                self._reached = True
        self.unembedded += len(batch)

    def _keep(self, batch: list[tuple[str, str]], answer: Embedded) -> None:
        self._reached = True
        try:
            self.store.add_vectors(self.model, [(digest, answer.dims, vector) for (digest, _), vector in zip(batch, answer.vectors)])
        except StoreWriteError as exc:
            self._stop(f"{exc}: embedding stopped")
            self.unembedded += len(batch)
            return
        self.embedded += len(batch)
        cost = self._prices.cost(self.model, answer.prompt_tokens, 0) if answer.prompt_tokens is not None else None
        if cost:
            self._spend(cost)

    def _stop(self, message: str) -> None:
        self.stopped = self.stopped or EmbeddingsFailed(message)

    def _stopping(self) -> bool:
        return self.stopped is not None or self._outer_stopping()

    async def _pause(self, seconds: float) -> None:
        if self.stopped is None:
            await self._outer_pause(seconds)
        if self.stopped is not None:
            raise NotSent


# --- cosines ------------------------------------------------------------------------------


def cosine_rows(pairs: Sequence[PairTexts], vectors: dict[str, bytes]
                ) -> tuple[list[tuple[str, str | None, str | None, float | None]], list[str]]:  # fmt: skip
    """The rows to store for these pairs (a cosine, or None where an arm did not answer), and the
    ids of the pairs still lacking a vector."""
    rows: list[tuple[str, str | None, str | None, float | None]] = []
    missing: list[str] = []
    left, right, computed = [], [], []
    for pair in pairs:
        if pair.baseline is None or pair.candidate is None:
            rows.append((pair.request_id, pair.baseline, pair.candidate, None))
            continue
        if pair.baseline == pair.candidate or EMPTY_DIGEST in (pair.baseline, pair.candidate):
            rows.append((pair.request_id, pair.baseline, pair.candidate, pair_cosine(pair.baseline, pair.candidate, {})))
        elif pair.baseline in vectors and pair.candidate in vectors:
            left.append(vectors[pair.baseline])
            right.append(vectors[pair.candidate])
            computed.append(pair)
        else:
            missing.append(pair.request_id)
    for pair, value in zip(computed, cosines(left, right).tolist() if computed else ()):
        rows.append((pair.request_id, pair.baseline, pair.candidate, float(value)))
    return rows, missing


def store_cosines(store: Store, run_id: str, model: str, pairs: Sequence[PairTexts], kind: str = PAIR_CANDIDATE) -> Cosines:
    """Compute the cosines of ``pairs`` from the stored vectors and store them (unless the store
    is read-only: cosines are a cache of the vectors, and a report computes them again)."""
    found: dict[str, float | None] = {}
    missing: list[str] = []
    unwritten: StoreWriteError | None = None
    for start in range(0, len(pairs), COSINE_CHUNK):
        chunk = pairs[start : start + COSINE_CHUNK]
        digests = {digest for pair in chunk for digest in (pair.baseline, pair.candidate) if digest and digest != EMPTY_DIGEST}
        try:
            rows, lacking = cosine_rows(chunk, store.vectors(model, sorted(digests)))
        except ValueError:  # vectors of two lengths under one model name
            raise InputError(f"embeddings: the store holds vectors of different lengths under the model name {model!r}"
                             " (two models served under one name?): give the endpoint's model another name") from None
        missing += lacking
        found.update((row[0], row[3]) for row in rows)
        if rows and not store.read_only and unwritten is None:
            try:
                store.add_pair_similarities(run_id, model, rows, kind)
            except StoreWriteError as exc:
                unwritten = exc
    return Cosines(found, missing, unwritten)


@dataclass(frozen=True)
class Cosines:
    found: dict[str, float | None]
    """request id -> cosine (None where an arm did not answer)."""
    missing: list[str]
    """Pairs lacking a vector."""
    unwritten: StoreWriteError | None = None
    """Why the cosines could not all be stored, if they could not."""


def stored_pairs(store: Store, run_id: str, base_arm: str, request_ids: list[str],
                 kind: str = PAIR_CANDIDATE) -> tuple[list[PairTexts], dict[str, str]]:  # fmt: skip
    """The listed pairs of ``kind`` as stored, by their texts' digests, and digest -> text."""
    texts: dict[str, str] = {}
    pairs = []
    other = COMPARED_ARM[kind]
    rows = store.answers(run_id, (base_arm, other), ANSWER_FIELDS, only=request_ids)
    for request_id, arms in group_by_request(rows):
        if base_arm not in arms or other not in arms:
            continue
        answered = [arms[arm] for arm in (base_arm, other)]
        if any(row[2] != "ok" for row in answered):  # an arm failed: nothing to compare, nothing to embed
            pairs.append(PairTexts(request_id, None, None))
            continue
        digests = []
        for _, _, _, text, calls, refusal in answered:
            embedded = stored_answer_text(text, calls, refusal)
            digests.append(text_digest(embedded))
            texts[digests[-1]] = embedded
        pairs.append(PairTexts(request_id, digests[0], digests[1]))
    return pairs, texts


def embeddings_model(scenario: dict[str, Any]) -> str | None:
    """The embedding model of a stored scenario snapshot, None when it has no ``embeddings``."""
    embeddings = scenario.get("embeddings")
    return embeddings["endpoint"]["model"] if embeddings else None


def semantic_similarities(store: Store, run_id: str, model: str, base_arm: str, request_ids: Iterable[str],
                          kind: str = PAIR_CANDIDATE) -> tuple[list[float | None], list[str]]:  # fmt: skip
    """Each pair's cosine (None where there is none) in ``request_ids`` order, and the notes
    for the user. Sends nothing: pairs with stored vectors but no cosine get one computed."""
    ids = list(request_ids)
    stored = store.pair_similarities(run_id, model, kind)
    todo = [request_id for request_id in ids if request_id not in stored]
    notes: list[str] = []
    if todo:
        pairs, _ = stored_pairs(store, run_id, base_arm, todo, kind)
        computed = store_cosines(store, run_id, model, pairs, kind)
        stored.update(computed.found)
        if computed.unwritten is not None:
            notes.append(f"{computed.unwritten}; semantic similarities not stored, the next report computes them again")
        if computed.missing:
            whose = "" if kind == PAIR_CANDIDATE else f" of the {kind} floor"
            notes.append(
                f"semantic_similarity: {len(computed.missing):,} pair(s){whose} have no embedding under {model} yet (the"
                " run stopped before embedding them); its intervals allow for any similarity there"
            )
    return [stored.get(request_id) for request_id in ids], notes


async def embed_stored(store: Store, run_id: str, base_arm: str, embeddings: Embeddings, *,
                       provider: OpenAIEmbeddingsProvider | None = None) -> Embedder:  # fmt: skip
    """Embed the stored pairs of a run that have no cosine yet (a resumed or interrupted run,
    an endpoint added later) and store their cosines; the embedder says what was sent.
    Raises :class:`EmbeddingsFailed` when the endpoint could not be reached or refused for good."""
    embedder = Embedder(store, embeddings, provider=provider)
    try:
        await embed_missing(embedder, run_id, base_arm)
    finally:
        await embedder.aclose()
    if embedder.stopped is not None:
        raise embedder.stopped
    return embedder


async def embed_missing(embedder: Embedder, run_id: str, base_arm: str) -> Cosines:
    """Through ``embedder``, embed the stored pairs of the run (of every kind) that have no
    cosine, and store theirs; the texts of all kinds share the batches."""
    store, model = embedder.store, embedder.model
    todo: dict[str, list[PairTexts]] = {}
    for kind in PAIR_KINDS:
        stored = store.pair_similarities(run_id, model, kind)
        ids = [request_id for request_id in store.pair_ids(run_id, base_arm, COMPARED_ARM[kind]) if request_id not in stored]
        if ids:
            pairs, texts = stored_pairs(store, run_id, base_arm, ids, kind)
            todo[kind] = pairs
            for digest, text in texts.items():
                embedder.want(digest, text)
    await embedder.flush()
    results = [store_cosines(store, run_id, model, pairs, kind) for kind, pairs in todo.items()]
    return Cosines({}, [missing for result in results for missing in result.missing],
                   next((result.unwritten for result in results if result.unwritten), None))  # fmt: skip


# --- the stage ----------------------------------------------------------------------------


class EmbeddingsStage(PairStage):
    """Embeds each pair's answers while the run goes on (full batches, in the background) and
    stores the pairs' cosines at its end, with those of stored pairs it was not offered (a
    resumed run's); an endpoint that cannot be reached, or refuses the key, ends the run
    incomplete (exit 3) with every answer kept, and a resume embeds what is left."""

    name: ClassVar[str] = "embeddings"

    def __init__(self, embeddings: Embeddings, base_arm: str, prices: dict[str, dict[str, float]] | None = None,
                 provider: OpenAIEmbeddingsProvider | None = None) -> None:  # fmt: skip
        self.embeddings, self.base_arm, self.prices, self._provider = embeddings, base_arm, prices, provider
        if provider is None:  # before the run exists: a missing key leaves nothing behind
            EMBEDDING_PROVIDERS[embeddings.endpoint.provider].check_arm("embeddings", embeddings.endpoint)
        self._pairs: dict[str, list[PairTexts]] = {}
        """By kind: the candidate's pairs, and the noise floor's (production with itself)."""
        self._embedder: Embedder | None = None
        self._services: StageServices | None = None

    def start(self, services: StageServices) -> None:
        self._services = services
        self._embedder = Embedder(services.store, self.embeddings, provider=self._provider, pause=services.pause,
                                  stopping=services.stopping, rng=services.rng, spend=services.spend,
                                  prices=self.prices)  # fmt: skip

    def offer(self, pair: AnsweredPair) -> None:
        assert self._embedder is not None, "start() comes first"
        pairs = self._pairs.setdefault(pair.kind, [])
        texts = (outcome_text(pair.baseline), outcome_text(pair.candidate))
        if texts[0] is None or texts[1] is None:  # an arm failed: nothing to compare, nothing to embed
            pairs.append(PairTexts(pair.request_id, None, None))
            return
        digests = (text_digest(texts[0]), text_digest(texts[1]))
        for digest, text in zip(digests, texts):
            if text:
                self._embedder.want(digest, text)
        pairs.append(PairTexts(pair.request_id, *digests))

    async def finish(self) -> None:
        embedder, services = self._embedder, self._services
        assert embedder is not None and services is not None
        try:
            await embedder.flush()
            offered = [store_cosines(services.store, services.run_id, embedder.model, pairs, kind)
                       for kind, pairs in self._pairs.items()]  # fmt: skip
            if not services.stopping():
                offered.append(await embed_missing(embedder, services.run_id, self.base_arm))
        except InputError as exc:
            self._fail(services, str(exc))
        finally:
            await embedder.aclose()
        unwritten = next((result.unwritten for result in offered if result.unwritten), None)
        if unwritten is not None:
            services.warn(f"{unwritten}; semantic similarities not stored, the report computes them again")
        missing = len({missing for result in offered for missing in result.missing})
        if embedder.stopped is not None:
            self._fail(services, f"{embedder.stopped}; every answer is stored, and {missing:,} pair(s) have no semantic"
                                 " similarity until the run is resumed")  # fmt: skip
        if missing:
            why = f"the last error: {embedder.last_error}" if embedder.last_error else "the run stopped first"
            services.warn(f"embeddings: {embedder.unembedded:,} text(s) were not embedded ({why});"
                          f" {missing:,} pair(s) have no semantic similarity until the run is resumed")  # fmt: skip

    @staticmethod
    def _fail(services: StageServices, message: str) -> NoReturn:
        """End the run incomplete. Marked here as the engine marks a stopped run: an exception
        from a stage's finish ends the run before the engine's own marking."""
        stop = EmbeddingsFailed(message, run_id=services.run_id)
        with contextlib.suppress(StoreWriteError):
            services.store.set_status(services.run_id, stop.status, str(stop))
        raise stop
