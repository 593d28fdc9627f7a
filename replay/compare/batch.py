"""Compare many pairs, on every core when there are enough of them.

Comparing is pure Python (~50 µs a pair), so 100,000 pairs take seconds on one core. From
``PARALLEL_FROM`` pairs on, where ``fork`` exists, the pairs are split between worker
processes that inherit them (nothing is pickled on the way in) and send back each pair's
measures already encoded as JSON, which is what the store keeps anyway.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import orjson

from replay.compare.base import CompareSpec, Side
from replay.compare.pair import compare_pair

PARALLEL_FROM = 20_000
MAX_WORKERS = 4

Pending = tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]
"""(request id, request body, metadata, baseline row, candidate row)."""

_JOB: tuple[list[Pending], CompareSpec] | None = None


def measure(item: Pending, spec: CompareSpec) -> dict[str, Any]:
    """One pair's measures as stored: None values dropped, the request's metadata added."""
    request_id, request, metadata, base_row, cand_row = item
    measures = compare_pair(request, Side.from_row(base_row), Side.from_row(cand_row), spec)
    measures = {key: value for key, value in measures.items() if value is not None}
    measures["metadata"] = metadata
    return measures


def compare_many(pending: list[Pending], spec: CompareSpec) -> list[tuple[dict[str, Any], bytes]]:
    """(measures, measures as JSON) for every pending pair, in order."""
    workers = _workers(len(pending))
    if workers < 2:
        out = []
        for item in pending:
            measures = measure(item, spec)
            out.append((measures, orjson.dumps(measures)))
        return out
    global _JOB
    _JOB = (pending, spec)
    try:
        step = -(-len(pending) // (workers * 4))  # a few slices per worker evens out slow ones
        slices = [(start, min(start + step, len(pending))) for start in range(0, len(pending), step)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            encoded = [blob for part in pool.map(_compare_slice, slices) for blob in part]
    finally:
        _JOB = None
    return [(orjson.loads(blob), blob) for blob in encoded]


def _workers(n: int) -> int:
    if n < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _compare_slice(bounds: tuple[int, int]) -> list[bytes]:
    assert _JOB is not None, "workers inherit the job from the parent (fork)"
    pending, spec = _JOB
    return [orjson.dumps(measure(item, spec)) for item in pending[bounds[0] : bounds[1]]]
