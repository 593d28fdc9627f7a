"""Which answer the judge sees first, and which pairs a ``sample`` judges: drawn per pair
from the run's recorded seed, so a rerun (or a resume) draws the same and finds its
verdicts cached.

Both come from a hash of the seed and the request id, not from a generator consumed in
arrival order: pairs are judged in the order their answers arrive, which changes from run
to run. The hash's bits are uniform, so the candidate is shown first on half the pairs in
expectation (and on exactly half of the calls with ``both_orders``), whatever the ids.
"""

from __future__ import annotations

import hashlib


def _draw(seed: int, request_id: str, purpose: str) -> int:
    digest = hashlib.blake2b(f"{purpose}\x00{seed}\x00{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def candidate_first(seed: int, request_id: str) -> bool:
    """Whether the candidate's answer is shown as A in the first (or only) order."""
    return _draw(seed, request_id, "judge-order") & 1 == 1


def in_sample(seed: int, request_id: str, rate: float) -> bool:
    """Whether a pair is judged when a share ``rate`` of the pairs is: every segment at the
    same rate, so the sample is stratified by segment in proportion to its size."""
    if rate >= 1:
        return True
    return _draw(seed, request_id, "judge-sample") < rate * 2**64
