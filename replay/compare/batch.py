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
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import orjson

from replay.compare.base import ANSWER_COLUMNS, CompareSpec, Side
from replay.compare.pair import compare_pair
from replay.metrics import transpose
from replay.store import Store
from replay.types import ARM_CANDIDATE

PARALLEL_FROM = 20_000
MAX_WORKERS = 4

_JOB: tuple[str, str, str, list[str], CompareSpec] | None = None


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
    """Freshly compared pairs: ids in order, each pair's measures as JSON (what the store keeps)
    and the measures as columns (what the metrics read), so nobody has to decode the JSON."""

    ids: list[str]
    blobs: list[bytes]
    columns: dict[str, Sequence[Any]]
    """Measure key -> one value per pair (None where a pair lacks it), ``request_id`` included."""


def compare_stored(store: Store, run_id: str, base_arm: str, request_ids: list[str],
                   spec: CompareSpec) -> ComparedPairs:  # fmt: skip
    """Measures for each of ``request_ids`` (sorted, each answered on both arms), in order."""
    workers = _workers(len(request_ids), store.path)
    if workers < 2:
        return _compare_chunk(store, run_id, base_arm, request_ids, spec)
    global _JOB
    _JOB = (store.path, run_id, base_arm, request_ids, spec)
    try:
        step = -(-len(request_ids) // (workers * 4))  # a few slices per worker evens out slow ones
        slices = [(start, min(start + step, len(request_ids))) for start in range(0, len(request_ids), step)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_compare_slice, slices)
    finally:
        _JOB = None
    return _concatenate(parts)


def _compare_chunk(store: Store, run_id: str, base_arm: str, request_ids: list[str],
                   spec: CompareSpec) -> ComparedPairs:  # fmt: skip
    ids, blobs, rows = [], [], []
    for request_id, measures in _compare_ids(store, run_id, base_arm, request_ids, spec):
        blobs.append(orjson.dumps(measures))
        measures["request_id"] = request_id
        ids.append(request_id)
        rows.append(measures)
    return ComparedPairs(ids, blobs, transpose(rows))


def _concatenate(parts: list[ComparedPairs]) -> ComparedPairs:
    keys = sorted(set().union(*(part.columns for part in parts)))
    columns: dict[str, Sequence[Any]] = {}
    for key in keys:
        columns[key] = list(itertools.chain.from_iterable(
            part.columns.get(key) or itertools.repeat(None, len(part.ids)) for part in parts))  # fmt: skip
    ids = [request_id for part in parts for request_id in part.ids]
    return ComparedPairs(ids, [blob for part in parts for blob in part.blobs], columns)


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
    path, run_id, base_arm, request_ids, spec = _JOB
    store = Store(path)
    try:
        return _compare_chunk(store, run_id, base_arm, request_ids[bounds[0] : bounds[1]], spec)
    finally:
        store.close()
