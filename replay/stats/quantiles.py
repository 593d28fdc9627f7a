"""Distribution-free intervals for percentiles (latency, TTFT), from order statistics.

The k-th smallest of n observations lies below the population's q-quantile exactly
when at least k observations do, and that count is Binomial(n, q) whatever the
distribution. So the ranks (l, u) whose binomial tails are each at most t give an
interval [x(l), x(u)] covering the quantile with probability at least 1 - 2t, for any
continuous distribution (and conservatively with ties): the "exact" method of Hahn &
Meeker, ``EnvStats::eqnpar(ci.method = "exact")`` in R.

A high percentile needs many observations beyond it before it can be bounded: with
fewer than 73 values nothing bounds a p95 from above at 95%, with fewer than 368
nothing bounds a p99. Below that the interval is honestly infinite; the bootstrap,
which can only ever resample the largest value seen, reports a tight interval there
and was found to cover p99 in as few as 77% of runs at n = 50.

The difference of two arms' percentiles is bounded by combining both arms' intervals,
each at tails t/2 (Bonferroni): if both cover, the difference lies between
low_c - high_b and high_c - low_b. It does not use the pairing, so it is wider than a
paired method would be, but it holds for every joint distribution of the two arms.
"""

from __future__ import annotations

import math
from functools import lru_cache, partial

import numpy as np

from replay.stats.estimate import CONFIDENCE, Estimate
from replay.stats.proportions import log_comb


@lru_cache(maxsize=8192)
def order_ranks(n: int, q: float, tail: float) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) with P(x(l) > quantile) <= tail and P(x(u) < quantile) <= tail.

    None where no order statistic is far enough out (the bound is infinite)."""
    if n <= 0:
        return None, None
    cdf = _binomial_cdf(n, q)  # cdf[k] = P(B <= k), B ~ Bin(n, q) counts values below the quantile
    # lower: the largest l with P(B <= l - 1) <= tail
    below = np.flatnonzero(cdf[:n] <= tail)
    low = int(below[-1]) + 1 if below.size else None
    # upper: the smallest u with P(B >= u) = 1 - P(B <= u - 1) <= tail
    above = np.flatnonzero(1 - cdf[:n] <= tail)
    high = int(above[0]) + 1 if above.size else None
    return low, high


def _binomial_cdf(n: int, q: float) -> np.ndarray:
    """P(B <= k) for k = 0..n, summed in the window that holds all but 1e-30 of the mass."""
    k = np.arange(n + 1)
    sd = math.sqrt(n * q * (1 - q))
    lo, hi = max(0, int(n * q - 12 * sd - 12)), min(n, int(n * q + 12 * sd + 12))
    window = np.arange(lo, hi + 1)
    logs = np.array([log_comb(n, int(i)) for i in window]) + window * math.log(q) + (n - window) * math.log1p(-q)
    pmf = np.zeros(n + 1)
    pmf[lo : hi + 1] = np.exp(logs)
    return np.minimum(np.cumsum(pmf), 1.0) if k.size else pmf


def min_n_for_bound(q: float, tail: float) -> int:
    """The fewest observations for which both order-statistic bounds of the q-quantile exist."""
    p = max(q, 1 - q)  # the bound on the far side of the quantile is the one that needs data
    return math.ceil(math.log(tail) / math.log(p))


def quantile_interval(ranked: np.ndarray, q: float, tail: float) -> tuple[float, float]:
    """[x(l), x(u)] from sorted values; -inf / +inf where the bound does not exist."""
    low_rank, high_rank = order_ranks(int(ranked.size), q, tail)
    low = float(ranked[low_rank - 1]) if low_rank is not None else -math.inf
    high = float(ranked[high_rank - 1]) if high_rank is not None else math.inf
    return low, high


def percentile_one(values: np.ndarray, q: float, confidence: float = CONFIDENCE) -> Estimate:
    """A percentile (``q`` in percent, linear interpolation as numpy computes it) of one sample."""
    ranked = np.sort(np.asarray(values, dtype=float))
    return _one(ranked, q, confidence)


def _one(ranked: np.ndarray, q: float, confidence: float) -> Estimate:
    n = int(ranked.size)
    if n == 0:
        return Estimate.empty()
    point = float(np.percentile(ranked, q))
    low, high = quantile_interval(ranked, q / 100, (1 - confidence) / 2)
    return Estimate(point, min(low, point), max(high, point), n, partial(_one, ranked, q))


def paired_percentiles(baseline: np.ndarray, candidate: np.ndarray, qs: tuple[float, ...]
                       ) -> list[tuple[Estimate, Estimate, Estimate, Estimate]]:  # fmt: skip
    """Per percentile: (baseline, candidate, delta, delta in percent of the baseline)."""
    base = np.sort(np.asarray(baseline, dtype=float))
    cand = np.sort(np.asarray(candidate, dtype=float))
    out = []
    for q in qs:
        if base.size == 0:
            out.append((Estimate.empty(),) * 4)
            continue
        out.append((_one(base, q, CONFIDENCE), _one(cand, q, CONFIDENCE), _delta(base, cand, q, CONFIDENCE),
                    _delta_pct(base, cand, q, CONFIDENCE)))  # fmt: skip
    return out


def _delta(base: np.ndarray, cand: np.ndarray, q: float, confidence: float) -> Estimate:
    tail = (1 - confidence) / 4
    low_b, high_b = quantile_interval(base, q / 100, tail)
    low_c, high_c = quantile_interval(cand, q / 100, tail)
    point = float(np.percentile(cand, q) - np.percentile(base, q))
    low, high = low_c - high_b, high_c - low_b
    low = low if not math.isnan(low) else -math.inf
    high = high if not math.isnan(high) else math.inf
    return Estimate(point, min(low, point), max(high, point), int(base.size), partial(_delta, base, cand, q))


def _delta_pct(base: np.ndarray, cand: np.ndarray, q: float, confidence: float) -> Estimate:
    point_b = float(np.percentile(base, q))
    if point_b <= 0:
        return Estimate.empty(int(base.size))
    tail = (1 - confidence) / 4
    low_b, high_b = quantile_interval(base, q / 100, tail)
    low_c, high_c = quantile_interval(cand, q / 100, tail)
    point = (float(np.percentile(cand, q)) / point_b - 1) * 100
    low = (low_c / high_b - 1) * 100 if high_b > 0 and math.isfinite(low_c) else -math.inf
    high = (high_c / low_b - 1) * 100 if low_b > 0 and math.isfinite(high_c) else math.inf
    if low_c >= 0 and math.isinf(high_b):
        low = -100.0  # a non-negative figure cannot fall by more than all of it
    return Estimate(point, min(low, point), max(high, point), int(base.size), partial(_delta_pct, base, cand, q))
