"""The disagreement ranking: the shortcut that skips pairs below the top N ranks exactly like a full sort."""

import random

import pytest

from replay.evaluate import top_disagreements
from replay.gates import SegmentSpec
from replay.metrics import Pairs


def brute_force(rows, top, category=None):
    chosen = [row for row in rows if row.get("divergence", 0) > 0
              and (category is None or row["metadata"].get("category") == category)]  # fmt: skip
    chosen.sort(key=lambda row: (-row["divergence"], row["request_id"]))
    return [(row["request_id"], row["divergence"]) for row in chosen[:top]]


@pytest.mark.parametrize("top", [1, 5, 40, None])
@pytest.mark.parametrize("segment", [None, "category=billing"])
def test_the_top_n_equals_a_full_sort_with_ties_and_segments(top, segment):
    rng = random.Random(7)
    rows = [
        {"request_id": f"r{i:04d}", "divergence": rng.choice([0, 0, 5.0, 12.5, 12.5, 40.0, rng.random() * 50]),
         "reasons": ["why"], "metadata": {"category": rng.choice(["billing", "shipping"])}}
        for i in range(400)
    ]  # fmt: skip
    rows[3].pop("divergence")  # a pair without a score is never ranked
    ranked = top_disagreements(Pairs(rows), SegmentSpec(by=("category",)), top, segment)
    expected = brute_force(rows, top, segment.split("=")[1] if segment else None)
    assert [(d.request_id, d.divergence) for d in ranked] == expected
    assert all(d.segment.startswith("category=") for d in ranked)
