"""Deterministic sampling: a record is in or out by a seeded hash of its id alone.

The same id gets the same draw whatever the file order or the other records, so a
rerun (or a resume) picks exactly the same requests. With ``max``, the records with
the smallest draws win: still independent of order, and a uniform random subset.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from typing import Iterable


def draw(seed: int | str, record_id: str) -> float:
    """A uniform number in [0, 1) fixed by the seed and the id."""
    digest = hashlib.blake2b(f"{seed}\x00{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class SampleSpec:
    rate: float = 1.0
    max: int | None = None
    seed: int = 0


def select_ids(ids: Iterable[str], spec: SampleSpec) -> set[str]:
    """Return the sampled ids; memory grows with ``max`` (or the sample), not the log."""
    if spec.max is None:
        return {record_id for record_id in ids if draw(spec.seed, record_id) < spec.rate}
    heap: list[tuple[float, str]] = []  # max-heap by draw, via negation
    for record_id in ids:
        u = draw(spec.seed, record_id)
        if u >= spec.rate:
            continue
        if len(heap) < spec.max:
            heapq.heappush(heap, (-u, record_id))
        elif -heap[0][0] > u:
            heapq.heapreplace(heap, (-u, record_id))
    return {record_id for _, record_id in heap}


def empty_sample_message(spec: SampleSpec, records: int) -> str:
    """Why a run would have nothing to send, and what to change."""
    return (f"sample.rate: {spec.rate:g} selects none of the {records} record(s) (seed {spec.seed});"
            " raise it (--sample) to replay something")  # fmt: skip


def subsample(ids: Iterable[str], size: int, seed: int, purpose: str) -> set[str]:
    """``size`` of the ids, drawn independently of the sample itself (the draws are salted
    with ``purpose``), and as stable: the same run picks the same ones on resume."""
    return set(heapq.nsmallest(size, ids, key=lambda record_id: (draw(f"{purpose}:{seed}", record_id), record_id)))


def select_units(items: Iterable[tuple[str, str | None]], spec: SampleSpec) -> set[str]:
    """Like :func:`select_ids` over ``(record id, unit)`` pairs, drawing once per unit: the
    records of one conversation are in or out together. A record of no unit (None) is drawn
    on its own id, exactly as :func:`select_ids` draws it. With ``max``, the unit that would
    cross the limit is left out whole, so a sample may hold fewer than ``max`` records."""
    if spec.max is None:
        return {record_id for record_id, unit in items if _unit_draw(spec.seed, record_id, unit) < spec.rate}
    heap: list[tuple[float, str]] = []
    cut = 2.0  # the smallest draw left out: its unit may be in the heap only in part
    for record_id, unit in items:
        u = _unit_draw(spec.seed, record_id, unit)
        if u >= spec.rate:
            continue
        if len(heap) < spec.max:
            heapq.heappush(heap, (-u, record_id))
        elif -heap[0][0] > u:
            cut = min(cut, -heapq.heapreplace(heap, (-u, record_id))[0])
        else:
            cut = min(cut, u)
    return {record_id for negative, record_id in heap if -negative != cut}


def _unit_draw(seed: int, record_id: str, unit: str | None) -> float:
    return draw(seed, record_id) if unit is None else draw(seed, f"session\x00{unit}")
