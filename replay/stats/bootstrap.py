"""Means (tokens, cost, similarity) and ratios of sums (key-field accuracy).

No interval for the mean of unbounded data holds for every distribution (Bahadur &
Savage 1956): a rare huge value can always hide. What holds well is measured, by
simulation (tests/test_stats_simulation.py, and the README's table):

* the interval is the union of Student's t interval and the studentized (bootstrap-t)
  interval. The bootstrap-t corrects for skewness, which the t interval ignores; the t
  interval stays conservative for heavy symmetric tails, where the bootstrap-t is too
  narrow at small n. A gate passes only when both would;
* it is trusted from ``max(20, 355 g^2)`` observations, g being the sample skewness
  of what is averaged (the per-request differences for a delta): Kohavi et al.'s
  (2014) rule for the normal approximation of a mean to err by at most 10% in a 2.5%
  tail. Below that a gate on it is INCONCLUSIVE, and the report says how many it needs.

Requests are resampled with replacement, each request's two answers kept together so
that the delta's interval reflects the pairing, with a fixed seed so that a report
always prints the same interval.
"""

from __future__ import annotations

import math
import threading
from functools import partial

import numpy as np

from replay.stats.estimate import CONFIDENCE, Estimate, t_quantile

BOOTSTRAP_SEED = 20261123
BOOTSTRAP_WORK = 5_000_000
"""Resamples x requests per bootstrap: 1,000 resamples up to 5,000 requests, fewer above,
never under 200 (where intervals are narrow anyway), so that a 100,000-pair report with
its segments stays within seconds."""
MEAN_MIN_N = 20
SKEWNESS_FACTOR = 355
"""Kohavi, Deng, Longbotham & Xu (2014), "Seven rules of thumb for web site experimenters", rule 7."""


def resample_count(n: int) -> int:
    return int(min(1000, max(200, BOOTSTRAP_WORK // max(n, 1))))


_WEIGHTS: dict[tuple[int, int], np.ndarray] = {}
_WEIGHTS_LOCK = threading.Lock()
WEIGHT_CACHE_BYTES = 100_000_000


def resample_weights(n: int, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(resamples x n) counts: how often each request appears in each bootstrap resample.

    Drawn exactly as the classic bootstrap (n indices with replacement per resample),
    then counted, so a resample's mean is one row of a matrix product instead of a
    selection from n values. Every metric over the same number of requests reuses the
    same counts, cached here with the seed fixed.
    """
    key = (n, seed)
    cached = _WEIGHTS.get(key)
    if cached is not None:
        return cached
    # drawn outside the lock: two threads may both draw the same counts, identically
    rng = np.random.default_rng(seed)
    weights = np.empty((resample_count(n), n), dtype=np.uint16)
    if n >= 10_000:
        for row in weights:
            row[:] = np.bincount(rng.integers(0, n, n), minlength=n)
    for part in _row_slices(weights) if n < 10_000 else ():  # many short resamples: in bulk
        rows = part.shape[0]
        drawn = rng.integers(0, n, size=(rows, n)) + np.arange(rows)[:, np.newaxis] * n
        part[:] = np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n)
    with _WEIGHTS_LOCK:  # segments are aggregated in a second thread
        while _WEIGHTS and sum(w.nbytes for w in _WEIGHTS.values()) + weights.nbytes > WEIGHT_CACHE_BYTES:
            _WEIGHTS.pop(next(iter(_WEIGHTS)))
        _WEIGHTS[key] = weights
    return weights


def weighted_sums(columns: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """(resamples x columns) sums of each column under every resample's counts: one matrix
    product, since converting the integer counts to floats costs more than the product."""
    stacked = np.column_stack(columns)
    return np.concatenate([part.astype(float) @ stacked for part in _row_slices(weights)])


def _row_slices(weights: np.ndarray) -> list[np.ndarray]:
    """A few resamples at a time, so temporaries stay near 4 million elements."""
    rows = max(1, 4_000_000 // max(weights.shape[1], 1))
    return [weights[start : start + rows] for start in range(0, weights.shape[0], rows)]


def skewness_min_n(values: np.ndarray, scale: float | None = None) -> int:
    """The fewest observations at which a mean of data this skewed is trusted.

    ``scale`` is the size of the data the values derive from (residuals of a ratio are
    all rounding error when the two sides are exactly proportional: no skewness there)."""
    centred = values - values.mean()
    spread = float(np.mean(centred**2))
    size = float(np.mean(np.abs(values))) if scale is None else scale
    if spread <= (1e-9 * size) ** 2:
        return MEAN_MIN_N
    skew = float(np.mean(centred**3)) / spread**1.5
    return max(MEAN_MIN_N, int(math.ceil(SKEWNESS_FACTOR * skew * skew)))


def _studentized(point: float, se: float, draws: np.ndarray, ses: np.ndarray, n: int, min_n: int,
                 confidence: float = CONFIDENCE) -> Estimate:  # fmt: skip
    """The union of Student's t interval and the bootstrap-t interval at ``confidence``."""
    widen = partial(_studentized, point, se, draws, ses, n, min_n)
    if n < 2:
        return Estimate(point, None, None, n, None, max(min_n, MEAN_MIN_N))
    if not se > 1e-9 * abs(point):  # no spread beyond rounding (or none computable): nothing to widen
        return Estimate(point, point, point, n, widen, min_n)
    tail = (1 - confidence) / 2
    t = t_quantile(1 - tail, n - 1) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        pivots = (draws - point) / ses
    # a resample equal to the sample deviates by nothing; one with no spread, infinitely
    pivots = np.clip(np.where(np.isnan(pivots), 0.0, pivots), -1e15, 1e15)
    low_t, high_t = np.percentile(pivots, [tail * 100, (1 - tail) * 100]) if pivots.size else (-1e15, 1e15)
    low_t = -math.inf if low_t <= -1e14 else low_t
    high_t = math.inf if high_t >= 1e14 else high_t
    low = min(point - t, point - high_t * se)
    high = max(point + t, point - low_t * se)
    return Estimate(point, float(low), float(high), n, widen, min_n)


def _mean_parts(x: np.ndarray, sums: np.ndarray, squares: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Point, standard error, and per resample the mean and its standard error."""
    n = x.size
    point = float(x.mean())
    se = float(x.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    means = sums / n
    variance = np.maximum(squares / n - means * means, 0.0) * n / max(n - 1, 1)
    return point, se, means, np.sqrt(variance / n)


def _ratio_parts(num: np.ndarray, den: np.ndarray, s: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """sum(num) / sum(den), its linearised standard error, per resample the same, and the
    residuals num - ratio * den whose mean the ratio's error is (Fieller's pivot)."""
    n = num.size
    total = float(den.sum())
    point = float(num.sum()) / total
    residuals = num - point * den
    se = float(residuals.std(ddof=1)) / math.sqrt(n) / (total / n) if n > 1 else math.nan
    s_num, s_den, s_nn, s_dd, s_nd = s.T
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = s_num / s_den
        square = (s_nn - 2 * ratios * s_nd + ratios * ratios * s_dd) / n
        ses = np.sqrt(np.maximum(square, 0.0) * n / max(n - 1, 1) / n) / (s_den / n)
    keep = np.isfinite(ratios)
    return point, se, ratios[keep], ses[keep], residuals


def paired_mean(baseline: np.ndarray, candidate: np.ndarray, seed: int = BOOTSTRAP_SEED
                ) -> tuple[Estimate, Estimate, Estimate, Estimate]:  # fmt: skip
    """Paired means: (baseline, candidate, delta, delta in percent of the baseline).

    The delta is the mean of the per-request differences, the percentage the ratio of the
    two means; both resampled by request, so the pairing narrows them."""
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    n = int(b.size)
    if n == 0:
        return (Estimate.empty(),) * 4
    s = weighted_sums([b, c, b * b, c * c, b * c], resample_weights(n, seed))
    sb, sc, sbb, scc, sbc = s.T
    out = []
    for x, sums, squares in ((b, sb, sbb), (c, sc, scc), (c - b, sc - sb, scc - 2 * sbc + sbb)):
        point, se, means, ses = _mean_parts(x, sums, squares)
        out.append(_studentized(point, se, means, ses, n, skewness_min_n(x)))
    out.append(_ratio_percent(c, b, s[:, [1, 0, 3, 2, 4]], n))
    return tuple(out)  # type: ignore[return-value]


def _ratio_percent(num: np.ndarray, den: np.ndarray, s: np.ndarray, n: int) -> Estimate:
    if not den.sum():
        return Estimate.empty(n)
    point, se, ratios, ses, residuals = _ratio_parts(num, den, s)
    ratio = _studentized(point, se, ratios, ses, n, skewness_min_n(residuals, float(np.mean(np.abs(num)))))
    return percent_change(ratio)


def percent_change(ratio: Estimate, confidence: float = CONFIDENCE) -> Estimate:
    at = ratio.at(confidence)
    assert at.value is not None
    low = (at.low - 1) * 100 if at.low is not None else None
    high = (at.high - 1) * 100 if at.high is not None else None
    return Estimate((at.value - 1) * 100, low, high, at.n, partial(percent_change, ratio), at.min_n)


def mean_one(values: np.ndarray, seed: int = BOOTSTRAP_SEED) -> Estimate:
    """The mean of one sample (a measure of the pair itself, e.g. similarity)."""
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return Estimate.empty()
    sums, squares = weighted_sums([x, x * x], resample_weights(n, seed)).T
    point, se, means, ses = _mean_parts(x, sums, squares)
    return _studentized(point, se, means, ses, n, skewness_min_n(x))


def bootstrap_ratio(numerator: np.ndarray, denominator: np.ndarray, seed: int = BOOTSTRAP_SEED,
                    bounded: bool = False) -> Estimate:  # fmt: skip
    """sum(numerator) / sum(denominator) with requests resampled as clusters.

    For key-field accuracy: fields of one answer are not independent (one bad parse
    breaks them all), so requests, not fields, are resampled. ``bounded``: each
    numerator lies between 0 and its denominator, so where the skewness rule is not met,
    or the sample has no spread at all (every field right), a distribution-free
    Hoeffding interval is given instead of none or a zero-width one.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    n = int(num.size)
    if n == 0 or not den.sum():
        return Estimate.empty(n)
    s = weighted_sums([num, den, num * num, den * den, num * den], resample_weights(n, seed))
    point, se, ratios, ses, residuals = _ratio_parts(num, den, s)
    estimate = _studentized(point, se, ratios, ses, n, skewness_min_n(residuals, float(np.mean(np.abs(num)))))
    if bounded and (n < estimate.min_n or estimate.low == estimate.high):
        # per-request shares in [0, 1] weighted by the denominators: Hoeffding with the
        # weights' effective sample size (sum w)^2 / sum w^2
        return _hoeffding(point, float(den.sum() ** 2 / np.sum(den * den)), n)
    return estimate


def bounded_mean(values: np.ndarray, seed: int = BOOTSTRAP_SEED) -> Estimate:
    """The mean of values in [0, 1] (similarity): :func:`mean_one` where its skewness rule
    is met and the data vary, else Hoeffding's (1963) interval, which holds for any data
    in [0, 1] at any n."""
    estimate = mean_one(values, seed)
    if estimate.n == 0 or (estimate.n >= estimate.min_n and estimate.low != estimate.high):
        return estimate
    return _hoeffding(float(estimate.value), estimate.n, estimate.n)  # type: ignore[arg-type]


def _hoeffding(point: float, effective_n: float, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """mean +- sqrt(ln(2 / alpha) / 2n): holds for any data in [0, 1] (Hoeffding 1963)."""
    half = math.sqrt(math.log(2 / (1 - confidence)) / (2 * effective_n))
    widen = partial(_hoeffding, point, effective_n, n)
    return Estimate(point, max(0.0, point - half), min(1.0, point + half), n, widen, MEAN_MIN_N)
