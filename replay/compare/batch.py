"""Compare a run's stored pairs, on every core when there are enough of them.

Comparing is pure Python (~50 µs a pair), and so is reading the answers it needs out of
the store, so 100,000 pairs take seconds on one core. From ``PARALLEL_FROM`` pairs on,
where ``fork`` exists and the store is a file, the request ids are cut into slices and
worker processes each read their own slice from the store on their own connection,
compare it, and send back each pair's measures already encoded as JSON, which is what
the store keeps anyway.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any, Iterable, Iterator

import orjson

from replay.compare.base import CompareSpec, Side
from replay.compare.pair import compare_pair
from replay.store import Store
from replay.types import ARM_CANDIDATE

PARALLEL_FROM = 20_000
MAX_WORKERS = 4

Compared = tuple[str, dict[str, Any], bytes]
"""(request id, measures, measures as JSON)."""

_JOB: tuple[str, str, str, list[str], CompareSpec] | None = None


def measure(request: dict[str, Any], metadata: dict[str, Any], base_row: dict[str, Any],
            cand_row: dict[str, Any], spec: CompareSpec) -> dict[str, Any]:  # fmt: skip
    """One pair's measures as stored: None values dropped, the request's metadata added."""
    measures = compare_pair(request, Side.from_row(base_row), Side.from_row(cand_row), spec)
    measures = {key: value for key, value in measures.items() if value is not None}
    measures["metadata"] = metadata
    return measures


def compare_stored(store: Store, run_id: str, base_arm: str, request_ids: list[str],
                   spec: CompareSpec) -> list[Compared]:  # fmt: skip
    """Measures for each of ``request_ids`` (sorted, each answered on both arms), in order."""
    workers = _workers(len(request_ids), store.path)
    if workers < 2:
        return [(rid, measures, orjson.dumps(measures)) for rid, measures in _compare_ids(store, run_id, base_arm, request_ids, spec)]
    global _JOB
    _JOB = (store.path, run_id, base_arm, request_ids, spec)
    try:
        step = -(-len(request_ids) // (workers * 4))  # a few slices per worker evens out slow ones
        slices = [(start, min(start + step, len(request_ids))) for start in range(0, len(request_ids), step)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            encoded = [pair for part in pool.map(_compare_slice, slices) for pair in part]
    finally:
        _JOB = None
    return [(rid, orjson.loads(blob), blob) for rid, blob in encoded]


def _compare_ids(store: Store, run_id: str, base_arm: str, request_ids: list[str],
                 spec: CompareSpec) -> Iterator[tuple[str, dict[str, Any]]]:  # fmt: skip
    """Read the pairs from the first to the last of ``request_ids`` and compare those listed."""
    if not request_ids:
        return
    first, last = request_ids[0], request_ids[-1]
    wanted = set(request_ids)
    cases = store.cases(run_id, first, last)
    for request_id, arms in group_by_request(store.answers(run_id, (base_arm, ARM_CANDIDATE), first, last)):
        if request_id not in wanted or base_arm not in arms or ARM_CANDIDATE not in arms:
            continue
        request, metadata = cases.get(request_id, ({}, {}))
        yield request_id, measure(request, metadata, arms[base_arm], arms[ARM_CANDIDATE], spec)


def group_by_request(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """Group result rows (ordered by request) into request id -> {arm: row}."""
    current: str | None = None
    arms: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["request_id"] != current:
            if current is not None:
                yield current, arms
            current, arms = row["request_id"], {}
        arms[row["arm"]] = row
    if current is not None:
        yield current, arms


def _workers(n: int, path: str) -> int:
    if n < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods() or not os.path.isfile(path):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def _compare_slice(bounds: tuple[int, int]) -> list[tuple[str, bytes]]:
    """In a worker: its own connection (a forked SQLite connection must never be used)."""
    assert _JOB is not None, "workers inherit the job from the parent (fork)"
    path, run_id, base_arm, request_ids, spec = _JOB
    store = Store(path)
    try:
        ids = request_ids[bounds[0] : bounds[1]]
        return [(rid, orjson.dumps(measures)) for rid, measures in _compare_ids(store, run_id, base_arm, ids, spec)]
    finally:
        store.close()
