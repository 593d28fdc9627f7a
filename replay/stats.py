"""Intervals and tests for paired comparisons.

Every figure a gate reads carries a 95% interval computed the way its kind demands:

* a rate on one side (error rate, format compliance): Wilson score interval;
* a difference of two rates on the *same* requests: Newcombe's hybrid score interval
  for paired proportions (method 10, 1998), which uses the correlation between the
  arms. Treating the arms as independent would throw the pairing away and make
  intervals several times wider than they need to be;
* percentiles and means (latency, tokens, cost): a paired percentile bootstrap,
  resampling requests (both arms together), with a fixed seed so reports repeat;
* pass-to-fail flips: McNemar's exact test on the discordant pairs.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_SEED = 20261123
BOOTSTRAP_WORK = 5_000_000
"""Resamples x requests per bootstrap: 1,000 resamples up to 5,000 requests, fewer above,
never under 200 (where intervals are narrow anyway), so that a 100,000-pair report with
its segments stays within seconds."""


@dataclass(frozen=True)
class Estimate:
    """A value with its 95% interval and the number of observations behind it."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def known(self) -> bool:
        return self.value is not None and self.low is not None and self.high is not None

    @classmethod
    def empty(cls, n: int = 0) -> "Estimate":
        return cls(None, None, None, n)


def wilson(successes: int, n: int, z: float = Z95) -> Estimate:
    """Wilson score interval for a proportion: sound at small n and near 0 or 1."""
    if n <= 0:
        return Estimate.empty()
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def paired_rate_delta(baseline: np.ndarray, candidate: np.ndarray, z: float = Z95) -> Estimate:
    """Candidate rate minus baseline rate over the same requests (Newcombe method 10)."""
    base = np.asarray(baseline, dtype=bool)
    cand = np.asarray(candidate, dtype=bool)
    n = int(base.size)
    if n == 0:
        return Estimate.empty()
    both = int(np.count_nonzero(base & cand))
    only_cand = int(np.count_nonzero(cand & ~base))
    only_base = int(np.count_nonzero(base & ~cand))
    neither = n - both - only_cand - only_base
    return newcombe_paired(both, only_cand, only_base, neither, z)


def newcombe_paired(both: int, only_first: int, only_second: int, neither: int, z: float = Z95) -> Estimate:
    """Interval for p(first) - p(second) from a paired 2x2 table (Newcombe 1998, method 10)."""
    n = both + only_first + only_second + neither
    if n == 0:
        return Estimate.empty()
    first = wilson(both + only_first, n, z)
    second = wilson(both + only_second, n, z)
    p1, l1, u1 = first.value, first.low, first.high
    p2, l2, u2 = second.value, second.low, second.high
    assert p1 is not None and l1 is not None and u1 is not None
    assert p2 is not None and l2 is not None and u2 is not None
    margins = (both + only_first) * (only_second + neither) * (both + only_second) * (only_first + neither)
    phi = (both * neither - only_first * only_second) / math.sqrt(margins) if margins else 0.0
    theta = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return Estimate(theta, max(-1.0, theta - delta), min(1.0, theta + epsilon), n)


@dataclass(frozen=True)
class Flips:
    """Pairs that passed on the baseline and failed on the candidate, and the reverse."""

    to_fail: int
    to_pass: int
    p_value: float


def mcnemar(baseline_pass: np.ndarray, candidate_pass: np.ndarray) -> Flips:
    """McNemar's exact test: are pass-to-fail flips more common than fail-to-pass?"""
    base = np.asarray(baseline_pass, dtype=bool)
    cand = np.asarray(candidate_pass, dtype=bool)
    to_fail = int(np.count_nonzero(base & ~cand))
    to_pass = int(np.count_nonzero(~base & cand))
    return Flips(to_fail, to_pass, binomial_two_sided(min(to_fail, to_pass), to_fail + to_pass))


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of k or fewer successes in n fair coin flips (doubled tail)."""
    if n == 0:
        return 1.0
    log_half = n * math.log(0.5)
    tail = sum(math.exp(_log_comb(n, i) + log_half) for i in range(0, k + 1))
    return min(1.0, 2 * tail)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def resample_count(n: int) -> int:
    return int(min(1000, max(200, BOOTSTRAP_WORK // max(n, 1))))


_WEIGHTS: dict[tuple[int, int], np.ndarray] = {}
_WEIGHTS_LOCK = threading.Lock()
WEIGHT_CACHE_BYTES = 100_000_000


def resample_weights(n: int, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(resamples x n) counts: how often each request appears in each bootstrap resample.

    Drawn exactly as the classic bootstrap (n indices with replacement per resample),
    then counted, so a statistic reads a resample as weights over the sorted sample
    (a running sum and a binary search) instead of selecting from n values each time:
    about ten times faster for percentiles. Every metric over the same number of
    requests reuses the same counts, cached here with the seed fixed.
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


class Statistic:
    """k figures of a sample (several percentiles share one sort)."""

    size = 1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The k figures of the sample itself."""
        raise NotImplementedError

    def draws(self, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(k x resamples) figures of the resamples that ``weights`` describe."""
        raise NotImplementedError

    def draws_many(self, xs: list[np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
        """:meth:`draws` for several samples of the same size under the same resamples."""
        return [self.draws(x, weights) for x in xs]


class Percentiles(Statistic):
    """Percentiles by linear interpolation, as ``numpy.percentile`` computes them."""

    def __init__(self, *qs: float) -> None:
        self.qs = qs
        self.size = len(qs)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.atleast_1d(np.percentile(x, self.qs))

    def draws(self, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
        n, k = x.size, len(self.qs)
        order = np.argsort(x, kind="stable")
        ranked = x[order]
        virtual = np.asarray(self.qs, dtype=float) / 100 * (n - 1)
        below = np.floor(virtual).astype(np.int64)
        fraction = virtual - below
        # the j-th smallest value of a resample is the first rank whose running count exceeds j
        targets = np.concatenate([below, np.minimum(below + 1, n - 1)])
        if n >= 10_000:  # few long resamples: a binary search per resample is cheapest
            out = np.empty((k, weights.shape[0]))
            for r, row in enumerate(weights):
                values = ranked[np.searchsorted(np.cumsum(row[order], dtype=np.int32), targets, side="right")]
                out[:, r] = values[:k] + fraction * (values[k:] - values[:k])
            return out
        chunks = []  # many short resamples: count in bulk, without a Python step per resample
        for part in _row_slices(weights):
            running = np.cumsum(part[:, order], axis=1, dtype=np.int32)
            position = np.stack([np.count_nonzero(running <= j, axis=1) for j in targets])
            values = ranked[np.minimum(position, n - 1)]
            chunks.append(values[:k] + fraction[:, np.newaxis] * (values[k:] - values[:k]))
        return np.concatenate(chunks, axis=1)


class Mean(Statistic):
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.array([x.mean()])

    def draws(self, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return self.draws_many([x], weights)[0]

    def draws_many(self, xs: list[np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
        """One matrix product for all samples: converting the integer counts to floats costs
        more than the product itself, so it is done once, not once per sample."""
        stacked = np.column_stack(xs)
        sums = np.concatenate([part.astype(float) @ stacked for part in _row_slices(weights)])
        return [sums[:, i][np.newaxis, :] / x.size for i, x in enumerate(xs)]


def _row_slices(weights: np.ndarray) -> list[np.ndarray]:
    """A few resamples at a time, so temporaries stay near 4 million elements."""
    rows = max(1, 4_000_000 // max(weights.shape[1], 1))
    return [weights[start : start + rows] for start in range(0, weights.shape[0], rows)]


def percentiles(*qs: float) -> Statistic:
    return Percentiles(*qs)


mean = Mean()


def paired_bootstrap(
    baseline: np.ndarray, candidate: np.ndarray, statistic: Statistic, seed: int = BOOTSTRAP_SEED
) -> list[tuple[Estimate, Estimate, Estimate, Estimate]]:
    """Paired percentile bootstrap of k figures at once (e.g. p50, p95 and p99).

    Every resample draws requests with replacement and keeps each request's two
    answers together, so the delta's interval reflects the pairing. Returns, per
    figure, (baseline, candidate, delta, delta in percent of the baseline).
    """
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    n = int(base.size)
    if n == 0:
        return [(Estimate.empty(),) * 4 for _ in range(statistic.size)]  # type: ignore[misc]
    points_b, points_c = statistic(base), statistic(cand)
    weights = resample_weights(n, seed)
    boot_b, boot_c = statistic.draws_many([base, cand], weights)
    out = []
    for k in range(points_b.size):
        point_b, point_c = float(points_b[k]), float(points_c[k])
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = (boot_c[k] - boot_b[k]) / boot_b[k] * 100
        out.append((
            _percentile_estimate(point_b, boot_b[k], n),
            _percentile_estimate(point_c, boot_c[k], n),
            _percentile_estimate(point_c - point_b, boot_c[k] - boot_b[k], n),
            _percentile_estimate((point_c - point_b) / point_b * 100, pct[np.isfinite(pct)], n)
            if point_b else Estimate.empty(n),
        ))  # fmt: skip
    return out


def bootstrap_one(values: np.ndarray, statistic: Statistic, seed: int = BOOTSTRAP_SEED) -> list[Estimate]:
    """Percentile bootstrap of k figures of one sample (a candidate-only measure)."""
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return [Estimate.empty() for _ in range(statistic.size)]
    points = statistic(data)
    draws = statistic.draws(data, resample_weights(n, seed))
    return [_percentile_estimate(float(points[k]), draws[k], n) for k in range(points.size)]


def bootstrap_ratio(numerator: np.ndarray, denominator: np.ndarray, seed: int = BOOTSTRAP_SEED) -> Estimate:
    """sum(numerator) / sum(denominator) with requests resampled as clusters.

    For key-field accuracy: fields of one answer are not independent (one bad parse
    breaks them all), so requests, not fields, are resampled.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    n = int(num.size)
    total = float(den.sum())
    if n == 0 or total == 0:
        return Estimate.empty(n)
    weights = resample_weights(n, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = np.concatenate([(p.astype(float) @ num) / (p.astype(float) @ den) for p in _row_slices(weights)])
    return _percentile_estimate(float(num.sum()) / total, draws[np.isfinite(draws)], n)


def _percentile_estimate(value: float | None, draws: np.ndarray, n: int) -> Estimate:
    if value is None or draws.size == 0:
        return Estimate(value, None, None, n)
    low, high = np.percentile(draws, [2.5, 97.5])
    return Estimate(float(value), float(min(low, value)), float(max(high, value)), n)


def more_needed(estimate: Estimate, threshold: float) -> int | None:
    """Roughly how many more requests would settle a gate whose interval straddles it.

    An interval's half-width shrinks like 1/sqrt(n): solve for the n at which the
    half-width equals the distance from the estimate to the threshold. None when the
    estimate sits on the threshold (no sample size settles it).
    """
    if not estimate.known or estimate.n == 0:
        return None
    assert estimate.value is not None and estimate.low is not None and estimate.high is not None
    gap = abs(estimate.value - threshold)
    half = max(estimate.high - estimate.value, estimate.value - estimate.low)
    if gap <= 1e-12 or half <= 0:
        return None
    needed = estimate.n * (half / gap) ** 2
    return max(1, math.ceil(needed - estimate.n))
