"""Compare a run's stored pairs, on every core when there are enough of them.

Comparing is pure Python (~50 µs a pair), and so is reading the answers it needs out of
the store, so 100,000 pairs take seconds on one core. From ``PARALLEL_FROM`` pairs on,
where ``fork`` exists and the store is a file, the request ids are cut into slices and
worker processes each read their own slice from the store on their own connection,
compare it, and send back each pair's measures already encoded as JSON, which is what
the store keeps anyway.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import orjson

from replay.compare.base import ANSWER_COLUMNS, CompareSpec, Side
from replay.compare.pair import compare_pair
from replay.metrics import transpose
from replay.errors import StoreError
from replay.store import Store
from replay.types import ARM_CANDIDATE

PARALLEL_FROM = 20_000
MAX_WORKERS = 4

WRITE_BATCH = 5000
_JOB: tuple[str, str, str, list[str], CompareSpec, str] | None = None


def measure(request: dict[str, Any], metadata: dict[str, Any], base_row: tuple[Any, ...],
            cand_row: tuple[Any, ...], spec: CompareSpec) -> dict[str, Any]:  # fmt: skip
    """One pair's measures as stored: None values dropped, the request's metadata added.
    The rows are answers in ``ANSWER_COLUMNS`` order."""
    measures = compare_pair(request, Side.from_answer(base_row), Side.from_answer(cand_row), spec)
    measures = {key: value for key, value in measures.items() if value is not None}
    measures["metadata"] = metadata
    return measures


@dataclass
class ComparedPairs:
    """Freshly compared (and already stored) pairs: ids in order and the measures as columns,
    which is what the metrics read, so nobody has to decode the stored JSON again."""

    ids: list[str]
    columns: dict[str, Sequence[Any]]
    """Measure key -> one value per pair (None where a pair lacks it), ``request_id`` included."""


def compare_stored(store: Store, run_id: str, base_arm: str, request_ids: list[str], spec: CompareSpec,
                   digest: str) -> ComparedPairs:  # fmt: skip
    """Compare and store each of ``request_ids`` (sorted, each answered on both arms) under
    the settings ``digest``; return their measures, in order.

    Workers store their own slice: sending the JSON back to the parent to be written
    moved ~80 MB through pipes at 100,000 pairs and cost more than the writes."""
    workers = _workers(len(request_ids), store.path)
    if workers < 2:
        return _compare_chunk(store, run_id, base_arm, request_ids, spec, digest)
    global _JOB
    _JOB = (store.path, run_id, base_arm, request_ids, spec, digest)
    try:
        step = -(-len(request_ids) // (workers * 4))  # a few slices per worker evens out slow ones
        slices = [(start, min(start + step, len(request_ids))) for start in range(0, len(request_ids), step)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_compare_slice, slices)
    finally:
        _JOB = None
    return _concatenate(parts)


def _compare_chunk(store: Store, run_id: str, base_arm: str, request_ids: list[str], spec: CompareSpec,
                   digest: str) -> ComparedPairs:  # fmt: skip
    ids, stored, rows = [], [], []
    for request_id, measures in _compare_ids(store, run_id, base_arm, request_ids, spec):
        stored.append((request_id, base_arm, digest, float(measures["divergence"]), orjson.dumps(measures).decode()))
        measures["request_id"] = request_id
        ids.append(request_id)
        rows.append(measures)
    # the answers' cursor is exhausted: this connection holds no read transaction while it writes
    try:
        for start in range(0, len(stored), WRITE_BATCH):
            store.add_comparisons(run_id, stored[start : start + WRITE_BATCH])
    except sqlite3.Error as exc:
        raise StoreError(f"{store.path}: cannot store comparisons ({exc})") from None
    return ComparedPairs(ids, transpose(rows))


def _concatenate(parts: list[ComparedPairs]) -> ComparedPairs:
    keys = sorted(set().union(*(part.columns for part in parts)))
    columns: dict[str, Sequence[Any]] = {}
    for key in keys:
        columns[key] = list(itertools.chain.from_iterable(
            part.columns.get(key) or itertools.repeat(None, len(part.ids)) for part in parts))  # fmt: skip
    return ComparedPairs([request_id for part in parts for request_id in part.ids], columns)


def _compare_ids(store: Store, run_id: str, base_arm: str, request_ids: list[str],
                 spec: CompareSpec) -> Iterator[tuple[str, dict[str, Any]]]:  # fmt: skip
    """Read the pairs from the first to the last of ``request_ids`` and compare those listed."""
    if not request_ids:
        return
    first, last = request_ids[0], request_ids[-1]
    wanted = set(request_ids)
    cases = store.cases(run_id, first, last)
    rows = store.answers(run_id, (base_arm, ARM_CANDIDATE), ANSWER_COLUMNS, first, last)
    for request_id, arms in group_by_request(rows):
        if request_id not in wanted or base_arm not in arms or ARM_CANDIDATE not in arms:
            continue
        request, metadata = cases.get(request_id, ({}, {}))
        yield request_id, measure(request, metadata, arms[base_arm], arms[ARM_CANDIDATE], spec)


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
    path, run_id, base_arm, request_ids, spec, digest = _JOB
    store = Store(path)
    try:
        return _compare_chunk(store, run_id, base_arm, request_ids[bounds[0] : bounds[1]], spec, digest)
    finally:
        store.close()
