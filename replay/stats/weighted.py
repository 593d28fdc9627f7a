"""Weighted figures for deduplicated samples (``sample.dedupe``): each replayed request stands
for ``w`` sampled records with the same request, so it counts ``w`` times in every figure.

The model. The sampled records are a uniform sample of the traffic (by their seeded hash);
identical requests among them are replayed once, and the one answer stands for all of its
copies. The figure estimated is the traffic's: a rate or mean per *record*, so the point is
the weighted one, sum(w y) / sum(w) (a ratio estimator). The copies of a request share one
replay, so they are one cluster, perfectly correlated: the distinct requests are the
independent units. The variance is the linearised (Taylor) variance of the ratio with the
distinct requests as clusters,

    v = sum(w^2 (y - p)^2) / sum(w)^2,

the one R's ``survey`` package gives for ``svymean`` with ``ids = ~request, weights = ~w``
and statsmodels for a weighted mean with cluster-robust errors (both times m / (m - 1), the
small-sample factor the Student-t and score intervals already carry; checked in
tests/test_stats_weighted.py). Each interval method of :mod:`replay.stats` is then fed the
*effective* sample size this variance implies (Kish's design effect, Korn and Graubard's
effective n for a proportion): n_d = sum(w) * sum(w e^2) / sum(w^2 e^2) for the residuals e
of the figure. A variance carried by a few heavy requests is itself uncertain, so n_d is shrunk
by (t(df_iid) / t(df_d))^2, the degrees of freedom Satterthwaite's of each sum (Korn and
Graubard's degrees-of-freedom correction, relative to what the unweighted method assumes), and
the effective n is the smallest of that, Kish's sum(w)^2 / sum(w^2) (the variance at the
hypothesised rate, as a score interval takes it) and the m distinct requests. Simulated
coverage of duplicated traffic (Zipf-like popularity, errors concentrated on popular or on
rare requests, 100 to 2,000 records) stays at 95% or above where either size alone falls to
83-86% (tests/test_stats_weighted.py). With every weight 1, the effective n is n and every
figure is the unweighted one. Means and ratios of sums are the
bootstrap's ratio of sums (requests resampled as clusters, their weights kept), whose
linearised standard error is exactly v's square root.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from replay.stats.bootstrap import bootstrap_ratio, percent_change
from replay.stats.estimate import CONFIDENCE, Estimate, t_quantile, z_for
from replay.stats.proportions import Flips, binomial_two_sided, newcombe_paired, paired_ratio, win_rate
from replay.stats.quantiles import order_ranks


def effective_n(residuals: np.ndarray, weights: np.ndarray) -> float:
    """The effective sample size of the residuals' weighted mean (see the module): the smallest of
    the m distinct requests, Kish's n, and the design-based n shrunk for how few requests carry
    its variance. With every weight 1, all three are m."""
    total = float(weights.sum())
    if total <= 0:
        return 0.0
    kish = min(float(residuals.size), total * total / float(np.sum(weights * weights)))
    squares = residuals * residuals
    iid, design = weights * squares, weights * weights * squares
    if not iid.sum() > 0 or not design.sum() > 0:
        return kish
    shrink = (t_quantile(1 - TAIL, _degrees(iid)) / t_quantile(1 - TAIL, _degrees(design))) ** 2
    return min(kish, design_n(residuals, weights) * shrink)


def design_n(residuals: np.ndarray, weights: np.ndarray) -> float:
    """sum(w) * sum(w e^2) / sum(w^2 e^2): for a proportion, p (1 - p) over the linearised variance
    sum(w^2 e^2) / sum(w)^2 with the requests as clusters."""
    squares = residuals * residuals
    return float(weights.sum()) * float(np.sum(weights * squares) / np.sum(weights * weights * squares))


TAIL = (1 - CONFIDENCE) / 2


def _degrees(contributions: np.ndarray) -> float:
    """Satterthwaite's degrees of freedom of a variance summed from independent contributions:
    (sum a)^2 / sum a^2, the number of requests that effectively carry it (at least 1)."""
    total = float(contributions.sum())
    return max(1.0, total * total / float(np.sum(contributions * contributions)))


def _with_n(estimate: Estimate, n: int) -> Estimate:
    """The estimate with ``n`` the requests behind it (the effective n is the method's input, not a count)."""
    widen = (lambda confidence: _with_n(estimate.at(confidence), n)) if estimate.widen else None
    return Estimate(estimate.value, estimate.low, estimate.high, n, widen, estimate.min_n)


def _wilson(p: float, n_eff: float, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """Wilson's score interval of a proportion ``p`` observed with an effective sample size."""
    z = z_for(confidence)
    denom = 1 + z * z / n_eff
    centre = (p + z * z / (2 * n_eff)) / denom
    half = z * math.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, partial(_wilson, p, n_eff, n))


def rate(numerators: np.ndarray, weights: np.ndarray, denominators: np.ndarray | None = None) -> Estimate:
    """sum(w num) / sum(w den) (den 1 by default: the weighted share of yes), Wilson's interval
    at the effective n of its linearised residuals num - p den."""
    num = np.asarray(numerators, dtype=float)
    den = np.ones_like(num) if denominators is None else np.asarray(denominators, dtype=float)
    n = int(num.size)
    trials = float(np.sum(weights * den))
    if n == 0 or trials <= 0:
        return Estimate.empty()
    p = float(np.sum(weights * num)) / trials
    scale = effective_n(num - p * den, weights) / float(weights.sum())
    return _wilson(p, trials * scale, n)


def _scaled_table(first: np.ndarray, second: np.ndarray, weights: np.ndarray,
                  residuals: np.ndarray) -> tuple[float, float, float, float]:  # fmt: skip
    """The weighted 2x2 table of two yes/no arms, scaled to the effective n of ``residuals``."""
    a, b = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    scale = effective_n(residuals, weights) / float(weights.sum())
    cells = (a & b, a & ~b, ~a & b, ~a & ~b)
    return tuple(float(weights[cell].sum()) * scale for cell in cells)  # type: ignore[return-value]


def paired_rate_delta(baseline: np.ndarray, candidate: np.ndarray, weights: np.ndarray) -> Estimate:
    """Weighted candidate rate minus baseline rate (Newcombe's method 10 on the effective table)."""
    n = int(np.asarray(baseline).size)
    if n == 0:
        return Estimate.empty()
    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    mean = float(np.sum(weights * d)) / float(weights.sum())
    return _with_n(newcombe_paired(*_scaled_table(candidate, baseline, weights, d - mean)), n)  # type: ignore[arg-type]


def paired_rate_ratio(baseline: np.ndarray, candidate: np.ndarray, weights: np.ndarray) -> Estimate:
    """Weighted candidate rate over baseline rate (Tang, Tang & Chan's score interval on the
    effective table, scaled by the ratio's linearised residuals c - R b)."""
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    n = int(b.size)
    base = float(np.sum(weights * b))
    if n == 0 or base <= 0:
        return Estimate.empty(n)
    ratio = float(np.sum(weights * c)) / base
    return _with_n(paired_ratio(*_scaled_table(candidate, baseline, weights, c - ratio * b)), n)  # type: ignore[arg-type]


def mcnemar(baseline_pass: np.ndarray, candidate_pass: np.ndarray, weights: np.ndarray) -> Flips:
    """Flips counted with their weights; McNemar's exact test on the effective number of them."""
    base, cand = np.asarray(baseline_pass, dtype=bool), np.asarray(candidate_pass, dtype=bool)
    to_fail, to_pass = base & ~cand, ~base & cand
    fails, passes = int(weights[to_fail].sum()), int(weights[to_pass].sum())
    discordant = to_fail | to_pass
    if not discordant.any():
        return Flips(0, 0, 1.0)
    share = fails / (fails + passes)
    n_eff = effective_n(to_fail[discordant] - share, weights[discordant])
    trials = max(1, round(n_eff))
    return Flips(fails, passes, binomial_two_sided(round(min(share, 1 - share) * trials), trials))


def judge_rate(wins: np.ndarray, ties: np.ndarray, weights: np.ndarray) -> Estimate:
    """The weighted win rate (ties half a win) of judged pairs, at the effective n of its scores."""
    n = int(wins.size)
    total = float(weights.sum())
    if n == 0 or total <= 0:
        return Estimate.empty()
    scores = wins + ties / 2
    p = float(np.sum(weights * scores)) / total
    scale = effective_n(scores - p, weights) / total
    won, tied = float(weights[wins.astype(bool)].sum()), float(weights[ties.astype(bool)].sum())
    return _with_n(win_rate(won * scale, tied * scale, total * scale), n)  # type: ignore[arg-type]


# --- means and ratios of sums: the cluster bootstrap with the weights kept ---------------------------


def mean_one(values: np.ndarray, weights: np.ndarray) -> Estimate:
    """The weighted mean: the ratio sum(w x) / sum(w), requests resampled as clusters."""
    return ratio_of_sums(np.asarray(values, dtype=float), np.ones(len(values)), weights)


def bounded_mean(values: np.ndarray, weights: np.ndarray) -> Estimate:
    """The weighted mean of values in [0, 1]; Hoeffding's interval at Kish's n where the bootstrap's is not trusted."""
    return ratio_of_sums(np.asarray(values, dtype=float), np.ones(len(values)), weights, bounded=True)


def ratio_of_sums(numerator: np.ndarray, denominator: np.ndarray, weights: np.ndarray, bounded: bool = False) -> Estimate:
    """sum(w num) / sum(w den): the bootstrap's ratio of sums over the weighted clusters, its
    interval widened by t(df_d) / t(df_iid) for how few requests carry its variance (as the
    effective n of a rate is shrunk; 1 with every weight 1)."""
    w = weights.astype(float)
    estimate = bootstrap_ratio(w * numerator, w * denominator, bounded=bounded)
    if not estimate.known:
        return estimate
    assert estimate.value is not None
    residuals = numerator - estimate.value * denominator
    return _widened(estimate, _widening(residuals, w), bounded)


def _widening(residuals: np.ndarray, weights: np.ndarray) -> float:
    squares = residuals * residuals
    iid, design = weights * squares, weights * weights * squares
    if not iid.sum() > 0 or not design.sum() > 0:
        return 1.0
    return t_quantile(1 - TAIL, _degrees(design)) / t_quantile(1 - TAIL, _degrees(iid))


def _widened(estimate: Estimate, factor: float, bounded: bool) -> Estimate:
    if factor == 1.0 or not estimate.known:
        return estimate
    assert estimate.value is not None and estimate.low is not None and estimate.high is not None
    low = estimate.value - (estimate.value - estimate.low) * factor
    high = estimate.value + (estimate.high - estimate.value) * factor
    if bounded:
        low, high = max(0.0, low), min(1.0, high)
    widen = (lambda confidence: _widened(estimate.at(confidence), factor, bounded)) if estimate.widen else None
    return Estimate(estimate.value, low, high, estimate.n, widen, estimate.min_n)


def paired_mean(baseline: np.ndarray, candidate: np.ndarray, weights: np.ndarray
                ) -> tuple[Estimate, Estimate, Estimate, Estimate]:  # fmt: skip
    """Weighted paired means: (baseline, candidate, delta, delta in percent of the baseline)."""
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if b.size == 0:
        return (Estimate.empty(),) * 4
    w = weights.astype(float)
    ratio = ratio_of_sums(c, b, w)
    percent = ratio if not ratio.known else percent_change(ratio)
    return mean_one(b, w), mean_one(c, w), mean_one(c - b, w), percent


# --- percentiles: the expanded sample's, order statistics at the effective n ----------------------------


def _sorted(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(np.asarray(values, dtype=float), kind="stable")
    return np.asarray(values, dtype=float)[order], np.asarray(weights)[order].astype(np.int64)


def _at(ranked: np.ndarray, cumulative: np.ndarray, index: int) -> float:
    """The value at 0-based position ``index`` of the sample with each value repeated by its weight."""
    return float(ranked[int(np.searchsorted(cumulative, index, side="right"))])


def _point(ranked: np.ndarray, cumulative: np.ndarray, q: float) -> float:
    """numpy's linear percentile of the expanded sample, without expanding it."""
    h = (int(cumulative[-1]) - 1) * q / 100
    low = math.floor(h)
    below = _at(ranked, cumulative, low)
    return below + (h - low) * (_at(ranked, cumulative, min(low + 1, int(cumulative[-1]) - 1)) - below)


def _interval(ranked: np.ndarray, weights: np.ndarray, cumulative: np.ndarray, q: float, point: float,
              tail: float) -> tuple[float, float]:  # fmt: skip
    """The order-statistic bounds of the q-quantile for the effective n of the share below it:
    ranks (l, u) of :func:`order_ranks` among n_eff, mapped to the expanded sample."""
    total = int(cumulative[-1])
    below = (ranked <= point).astype(float)
    share = float(np.sum(weights * below)) / total
    n_eff = max(1, math.floor(effective_n(below - share, weights.astype(float)) + 1e-9))
    low_rank, high_rank = order_ranks(n_eff, q / 100, tail)
    low = _at(ranked, cumulative, max(0, math.floor(low_rank * total / n_eff) - 1)) if low_rank is not None else -math.inf
    high = _at(ranked, cumulative, min(total - 1, math.ceil(high_rank * total / n_eff) - 1)) \
        if high_rank is not None else math.inf  # fmt: skip
    return low, high


def percentile_one(values: np.ndarray, weights: np.ndarray, q: float, confidence: float = CONFIDENCE) -> Estimate:
    ranked, w = _sorted(values, weights)
    return _one(ranked, w, q, confidence)


def _one(ranked: np.ndarray, weights: np.ndarray, q: float, confidence: float) -> Estimate:
    n = int(ranked.size)
    if n == 0:
        return Estimate.empty()
    cumulative = np.cumsum(weights)
    point = _point(ranked, cumulative, q)
    low, high = _interval(ranked, weights, cumulative, q, point, (1 - confidence) / 2)
    return Estimate(point, min(low, point), max(high, point), n, partial(_one, ranked, weights, q))


def paired_percentiles(baseline: np.ndarray, candidate: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]
                       ) -> list[tuple[Estimate, Estimate, Estimate, Estimate]]:  # fmt: skip
    """Per percentile: (baseline, candidate, delta, delta in percent), each arm's bounds at tails
    t/2 combined as in :func:`replay.stats.quantiles.paired_percentiles`."""
    base, cand = _sorted(baseline, weights), _sorted(candidate, weights)
    out = []
    for q in qs:
        if base[0].size == 0:
            out.append((Estimate.empty(),) * 4)
            continue
        out.append((_one(*base, q, CONFIDENCE), _one(*cand, q, CONFIDENCE), _delta(base, cand, q, CONFIDENCE, False),
                    _delta(base, cand, q, CONFIDENCE, True)))  # fmt: skip
    return out


def _delta(base: tuple[np.ndarray, np.ndarray], cand: tuple[np.ndarray, np.ndarray], q: float, confidence: float,
           pct: bool) -> Estimate:  # fmt: skip
    n = int(base[0].size)
    tail = (1 - confidence) / 4
    bounds = []
    points = []
    for ranked, weights in (base, cand):
        cumulative = np.cumsum(weights)
        point = _point(ranked, cumulative, q)
        points.append(point)
        bounds.append(_interval(ranked, weights, cumulative, q, point, tail))
    (low_b, high_b), (low_c, high_c) = bounds
    widen = partial(_delta, base, cand, q, pct=pct)
    if not pct:
        point = points[1] - points[0]
        low, high = low_c - high_b, high_c - low_b
        low = low if not math.isnan(low) else -math.inf
        high = high if not math.isnan(high) else math.inf
        return Estimate(point, min(low, point), max(high, point), n, widen)
    if points[0] <= 0:
        return Estimate.empty(n)
    point = (points[1] / points[0] - 1) * 100
    low = (low_c / high_b - 1) * 100 if high_b > 0 and math.isfinite(low_c) else -math.inf
    high = (high_c / low_b - 1) * 100 if low_b > 0 and math.isfinite(high_c) else math.inf
    if low_c >= 0 and math.isinf(high_b):
        low = -100.0
    return Estimate(point, min(low, point), max(high, point), n, widen)
