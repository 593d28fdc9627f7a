"""Metrics of a deduplicated run: every pair counted with its weight (the sampled records its request
stands for), in the whole table and in its segments; a table without weights is computed as before."""

import numpy as np
import pytest

from replay.metrics import METRICS, Pairs
from replay.stats import weighted


def pair(i, c_error=False, latency=500.0, category="a", tokens=10):
    return {"request_id": f"r{i:02d}", "b_error": False, "c_error": c_error, "b_error_class": None,
            "b_latency_ms": latency, "c_latency_ms": latency + 10 * i, "b_tokens_out": 10, "c_tokens_out": tokens,
            "similarity": 1.0 if not c_error else None, "metadata": {"category": category}}  # fmt: skip


def table(weights=None):
    """20 requests; the candidate errs on r00 only, the request 11 of the 30 sampled records carried."""
    rows = [pair(i, c_error=i == 0, category="ab"[i % 2], tokens=10 + i) for i in range(20)]
    pairs = Pairs(rows)
    if weights is not None:
        pairs.set_weights(weights)
    return pairs


WEIGHTS = [11] + [1] * 19


def test_a_duplicated_request_that_errs_counts_with_its_weight():
    plain, heavy = METRICS["error_rate"].compute(table()), METRICS["error_rate"].compute(table(WEIGHTS))
    assert plain.candidate.value == pytest.approx(1 / 20)
    assert heavy.candidate.value == pytest.approx(11 / 30) and heavy.n == 20  # n: the requests replayed
    assert heavy.delta.value == pytest.approx(11 / 30)
    assert heavy.flips.to_fail == 11 and plain.flips.to_fail == 1
    # one heavy error is one replay: its interval is far wider than 11 errors in 30 independent replays
    independent = METRICS["error_rate"].compute(Pairs([pair(i, c_error=i < 11) for i in range(30)]))
    assert independent.candidate.value == pytest.approx(heavy.candidate.value)
    assert heavy.candidate.high - heavy.candidate.low > 1.3 * (independent.candidate.high - independent.candidate.low)


def test_means_percentiles_and_totals_are_weighted():
    heavy = table(WEIGHTS)
    tokens = METRICS["tokens_out"].compute(heavy)  # the pairs both arms answered: r01..r19, weight 1 each
    assert tokens.candidate.value == pytest.approx(np.mean(np.arange(11, 30)))
    reweighted = table([1] + [1] * 18 + [20])  # r19 (candidate 29 tokens, latency +190 ms) stands for 20
    tokens = METRICS["tokens_out"].compute(reweighted)
    values, w = np.arange(11, 30), np.array([1] * 18 + [20])
    assert tokens.candidate.value == pytest.approx(float(np.sum(w * values) / w.sum()))
    assert tokens.extra["total_candidate"] == pytest.approx(float(np.sum(w * values)))
    p50 = METRICS["latency_p50_ms"].compute(reweighted)
    expanded = np.repeat(500.0 + 10 * np.arange(1, 20), w)
    assert p50.candidate.value == pytest.approx(float(np.percentile(expanded, 50))) == 690.0


def test_segments_keep_their_pairs_weights():
    heavy = table(WEIGHTS)
    category_a = heavy.subset(np.array([i % 2 == 0 for i in range(20)]))
    assert list(category_a.weights()) == [11] + [1] * 9
    assert METRICS["error_rate"].compute(category_a).candidate.value == pytest.approx(11 / 20)


def test_without_weights_the_table_is_computed_as_before():
    pairs = table()
    assert pairs.weights() is None
    with_ones = table([1] * 20)
    for name in ("error_rate", "tokens_out", "latency_p95_ms", "similarity"):
        plain, ones = METRICS[name].compute(pairs), METRICS[name].compute(with_ones)
        assert plain.candidate.value == pytest.approx(ones.candidate.value)
        assert (plain.candidate.low, plain.candidate.high) == pytest.approx((ones.candidate.low, ones.candidate.high))


def test_the_weighted_rate_is_the_module_s():
    heavy = METRICS["error_rate"].compute(table(WEIGHTS))
    erred = np.array([True] + [False] * 19)
    assert heavy.candidate == weighted.rate(erred, np.array(WEIGHTS, dtype=float))
