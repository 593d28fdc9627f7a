"""The compare stage: a run's stored pairs compared, on every core when there are enough of them.

Comparing is pure Python, and so is reading the answers it needs out of the store, so a
large run takes seconds on one core. From ``PARALLEL_FROM`` pairs on,
where ``fork`` exists and the store is a file, the request ids are cut into slices and
worker processes each read their own slice from the store on their own connection,
compare it, store the comparisons themselves and send back the measures as columns.

Storing is best effort: comparisons are a cache of pure functions of the stored answers,
so a store another process keeps locked costs a note and a recomputation next time,
never the report.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import multiprocessing
import os
import queue
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import orjson

from replay.compare.base import ANSWER_COLUMNS, CompareSpec, Side
from replay.compare.pair import compare_pair, refresh_pair
from replay.errors import ComparisonFailed, ReplayError, keep_tracebacks
from replay.metrics import transpose
from replay.pipeline import AnsweredPair, PairStage, StageServices
from replay.store import Store
from replay.types import COMPARED_ARM, PAIR_CANDIDATE, Outcome

PARALLEL_FROM = 20_000
MAX_WORKERS = 4

WRITE_BATCH = 1000
"""Rows a transaction stores: small enough that a run writing to the same store waits only briefly for one."""
Refresh = Mapping[str, tuple[frozenset[str], dict[str, Any]]]
"""request id -> (its stale comparators, its stored measures): pairs recomputed comparator by comparator."""
_JOB: tuple[str, str, str, list[str], CompareSpec, "Digests", bool, Refresh, str] | None = None


@dataclass(frozen=True)
class Digests:
    """What the stored comparisons are keyed by: the settings' digest and each comparator's."""

    settings: str
    comparators_json: str
    """comparator name -> digest of its options, as stored with each comparison."""


def measure(request: dict[str, Any], metadata: dict[str, Any], base_row: tuple[Any, ...],
            cand_row: tuple[Any, ...], spec: CompareSpec,
            refresh: tuple[frozenset[str], dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """One pair's measures as stored: None values dropped, the request's metadata added.
    The rows are answers in ``ANSWER_COLUMNS`` order; with ``refresh`` (stale comparators,
    stored measures), only the stale comparators run."""
    return measure_sides(request, metadata, Side.from_answer(base_row), Side.from_answer(cand_row), spec, refresh)


def measure_sides(request: dict[str, Any], metadata: dict[str, Any], baseline: Side, candidate: Side,
                  spec: CompareSpec, refresh: tuple[frozenset[str], dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """:func:`measure` of two sides already read."""
    if refresh is None:
        measures = compare_pair(request, baseline, candidate, spec)
    else:
        measures = refresh_pair(request, baseline, candidate, spec, *refresh)
    measures = {key: value for key, value in measures.items() if value is not None}
    measures["metadata"] = metadata
    return measures


@dataclass
class ComparedPairs:
    """Freshly compared (and already stored) pairs: ids in order and the measures as columns,
    which is what the metrics read, so nobody has to decode the stored JSON again."""

    ids: list[str]
    columns: Mapping[str, Sequence[Any]]
    """Measure key -> one value per pair (None where a pair lacks it), ``request_id`` included."""
    notes: list[str] = field(default_factory=list)
    """What the user should know and nothing stopped (comparisons that could not be stored)."""


def compare_stored(store: Store, run_id: str, base_arm: str, request_ids: list[str], spec: CompareSpec,
                   digests: Digests, dense: bool = True, refresh: Refresh | None = None,
                   kind: str = PAIR_CANDIDATE) -> ComparedPairs:  # fmt: skip
    """Compare and store each of ``request_ids`` (sorted, each answered on both arms) under
    ``digests``; return their measures, in order. ``dense``: the ids are most of the run's
    pairs, so they are read by id range; otherwise one by one. The pairs in ``refresh`` run
    only their stale comparators over their stored measures.

    Workers store their own slice: sending the JSON back to the parent to be written
    moves every measure through a pipe, which costs more than the writes."""
    workers = _workers(len(request_ids), store.path)
    if workers < 2:
        return _compare_chunk(store, run_id, base_arm, request_ids, spec, digests, dense, refresh or {}, kind)
    global _JOB
    _JOB = (store.path, run_id, base_arm, request_ids, spec, digests, dense, refresh or {}, kind)
    try:
        step = -(-len(request_ids) // (workers * 4))  # a few slices per worker evens out slow ones
        slices = [(start, min(start + step, len(request_ids))) for start in range(0, len(request_ids), step)]
        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            parts = list(pool.map(_compare_slice, slices))
    except concurrent.futures.process.BrokenProcessPool:
        raise ComparisonFailed(
            "a comparison worker died (out of memory?); what was stored is kept and the next report compares the rest"
        ) from None
    finally:
        _JOB = None
    return _concatenate(parts)


def _compare_chunk(store: Store, run_id: str, base_arm: str, request_ids: list[str], spec: CompareSpec,
                   digests: Digests, dense: bool, refresh: Refresh, kind: str = PAIR_CANDIDATE) -> ComparedPairs:  # fmt: skip
    ids, stored, rows = [], [], []
    digest, per_comparator = digests.settings, digests.comparators_json
    for request_id, measures in _compare_ids(store, run_id, base_arm, request_ids, spec, dense, refresh, kind):
        stored.append((request_id, base_arm, digest, float(measures["divergence"]), orjson.dumps(measures).decode(),
                       per_comparator))  # fmt: skip
        measures["request_id"] = request_id
        ids.append(request_id)
        rows.append(measures)
    # the answers' cursor is exhausted: this connection holds no read transaction while it writes
    notes: list[str] = []
    if store.read_only:  # a store on a read-only filesystem: compared each time, and nothing to say
        return ComparedPairs(ids, transpose(rows), notes)
    try:
        for start in range(0, len(stored), WRITE_BATCH):
            store.add_comparisons(run_id, stored[start : start + WRITE_BATCH], kind)
    except sqlite3.Error as exc:
        notes.append(f"{store.path}: comparisons not stored ({exc}); the next report computes them again")
    return ComparedPairs(ids, transpose(rows), notes)


def _concatenate(parts: list[ComparedPairs]) -> ComparedPairs:
    keys = sorted(set().union(*(part.columns for part in parts)))
    columns: dict[str, Sequence[Any]] = {}
    for key in keys:
        columns[key] = list(itertools.chain.from_iterable(
            part.columns.get(key) or itertools.repeat(None, len(part.ids)) for part in parts))  # fmt: skip
    notes = list(dict.fromkeys(note for part in parts for note in part.notes))
    return ComparedPairs([request_id for part in parts for request_id in part.ids], columns, notes)


def _compare_ids(store: Store, run_id: str, base_arm: str, request_ids: list[str], spec: CompareSpec,
                 dense: bool = True, refresh: Refresh | None = None,
                 kind: str = PAIR_CANDIDATE) -> Iterator[tuple[str, dict[str, Any]]]:  # fmt: skip
    """Read the listed pairs (by id range when they are most of the pairs there are) and compare them."""
    if not request_ids:
        return
    first, last = request_ids[0], request_ids[-1]
    only = None if dense else request_ids
    wanted = set(request_ids)
    cases = store.cases(run_id, first, last, only)
    other = COMPARED_ARM[kind]
    rows = store.answers(run_id, (base_arm, other), ANSWER_COLUMNS, first, last, only)
    for request_id, arms in group_by_request(rows):
        if request_id not in wanted or base_arm not in arms or other not in arms:
            continue
        request, metadata = cases.get(request_id, ({}, {}))
        stale = refresh.get(request_id) if refresh else None
        yield request_id, measure(request, metadata, arms[base_arm], arms[other], spec, stale)


def group_by_request(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[str, dict[str, tuple[Any, ...]]]]:
    """Group (request_id, arm, ...) rows, ordered by request, into request id -> {arm: row}."""
    current: str | None = None
    arms: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        if row[0] != current:
            if current is not None:
                yield current, arms
            current, arms = row[0], {}
        arms[row[1]] = row
    if current is not None:
        yield current, arms


def _workers(n: int, path: str) -> int:
    if n < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods() or not os.path.isfile(path):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def _compare_slice(bounds: tuple[int, int]) -> ComparedPairs:
    """In a worker: its own connection (a forked SQLite connection must never be used)."""
    assert _JOB is not None, "workers inherit the job from the parent (fork)"
    path, run_id, base_arm, request_ids, spec, digests, dense, refresh, kind = _JOB
    try:
        store = Store(path, create=False)  # read-only where the parent's store is
        try:
            return _compare_chunk(store, run_id, base_arm, request_ids[bounds[0] : bounds[1]], spec, digests, dense,
                                  refresh, kind)  # fmt: skip
        finally:
            store.close()
    except ReplayError as exc:  # sent back as a message: any exception must survive pickling
        raise ComparisonFailed(str(exc)) from None
    except Exception as exc:
        raise ComparisonFailed(f"comparing pairs failed: {type(exc).__name__}: {exc}") from None


class CompareAsAnswered(PairStage):
    """Compares each pair of a running run as soon as both answers are stored, and stores the
    comparison, so the report after the last answer reads comparisons instead of making them.

    The comparing happens in a thread of its own, with its own connection to the store:
    with the interpreter lock, it then takes the CPU while the engine waits on its sockets,
    instead of delaying the engine's next send. (A store that is not a file, which a second
    connection would not see, is compared on the event loop.)

    Best effort, like every stored comparison: a comparator that fails or a store that
    refuses the rows costs one warning, and the report computes what is missing (and says
    what failed) as it would have without this stage."""

    name = "compare"

    def __init__(self, spec: CompareSpec, digests: Digests, base_arm: str) -> None:
        self.spec, self.digests, self.base_arm = spec, digests, base_arm
        self._rows: dict[str, list[tuple[str, str, str, float, str, str]]] = {}
        self._services: StageServices | None = None
        self._store: Store | None = None
        self._queue: queue.SimpleQueue[AnsweredPair | None] | None = None
        self._thread: threading.Thread | None = None
        self._problem: str | None = None
        self._failure: BaseException | None = None

    def start(self, services: StageServices) -> None:
        self._services = services
        if services.store.read_only:
            self._problem = ""  # compared each time, and nothing to say
        elif os.path.isfile(services.store.path):
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._work, name="replay-compare", daemon=True)
            self._thread.start()
        else:
            self._store = services.store

    def offer(self, pair: AnsweredPair) -> None:
        if self._problem is not None:
            return
        if self._queue is not None:
            self._queue.put(pair)
        else:
            self._compare(pair)

    async def finish(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        else:
            self._write()
        if self._failure is not None and keep_tracebacks():
            raise self._failure
        if self._problem and self._services is not None:
            self._services.warn(self._problem)

    def _work(self) -> None:
        """The thread: compare what is offered, store it in batches, until told to stop."""
        assert self._queue is not None and self._services is not None
        try:
            self._store = Store(self._services.store.path, create=False)
        except ReplayError as exc:
            self._stop(f"comparing while replaying stopped ({exc}); the report compares the pairs")
        try:
            while (pair := self._queue.get()) is not None:
                if self._problem is None:
                    self._compare(pair)
            self._write()
        finally:
            if self._store is not None:
                self._store.close()

    def _compare(self, pair: AnsweredPair) -> None:
        try:
            measures = measure_sides(pair.request, pair.metadata, side_of(pair.baseline), side_of(pair.candidate), self.spec)
            rows = self._rows.setdefault(pair.kind, [])
            rows.append((pair.request_id, self.base_arm, self.digests.settings, float(measures["divergence"]),
                         orjson.dumps(measures).decode(), self.digests.comparators_json))  # fmt: skip
        except Exception as exc:  # the report compares this run again and says what fails
            self._failure = exc
            self._stop(f"comparing while replaying stopped ({type(exc).__name__}: {exc}); the report compares the pairs")
            return
        if len(rows) >= WRITE_BATCH:
            self._write()

    def _write(self) -> None:
        if self._problem is not None or self._store is None or self._services is None:
            return
        for kind, rows in list(self._rows.items()):
            if not rows:
                continue
            self._rows[kind] = []
            try:
                self._store.add_comparisons(self._services.run_id, rows, kind)
            except sqlite3.Error as exc:
                self._stop(f"{self._store.path}: comparisons not stored ({exc}); the report computes them")
                return

    def _stop(self, problem: str) -> None:
        """Said once, by :meth:`finish` on the run's own thread."""
        self._problem, self._rows = problem, {}


def side_of(outcome: Outcome) -> Side:
    """The :class:`Side` the comparators see of an outcome, equal to the one read back from
    its stored row (:meth:`Side.from_answer`)."""
    completion = outcome.completion
    if completion is None:
        return Side(ok=outcome.status == "ok", error_class=outcome.error_class, error_message=outcome.error_message,
                    cost_usd=outcome.cost_usd)  # fmt: skip
    usage = completion.usage
    return Side(
        ok=outcome.status == "ok", error_class=outcome.error_class, error_message=outcome.error_message,
        text=completion.text, tool_calls=completion.tool_calls, refusal=completion.refusal,
        finish_reason=completion.finish_reason, latency_ms=completion.latency_ms, ttft_ms=completion.ttft_ms,
        prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, cost_usd=outcome.cost_usd,
    )  # fmt: skip
