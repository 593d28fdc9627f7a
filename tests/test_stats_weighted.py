"""replay.stats.weighted: the figures of a deduplicated sample, checked against statsmodels'
cluster-robust weighted mean (an independent implementation of the design-based variance),
against the unweighted figures when every weight is 1, and by simulation of duplicated traffic."""

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.stats import t as t_dist

from replay import stats
from replay.stats import weighted


def cluster_variance(y, w):
    """The variance of the weighted mean with each row its own cluster, as statsmodels computes it
    (WLS on a constant, cluster-robust; its small-sample factor m / (m - 1) taken back out)."""
    fit = sm.WLS(y, np.ones_like(y), weights=w).fit(cov_type="cluster", cov_kwds={"groups": np.arange(y.size)})
    m = y.size
    return float(fit.params[0]), float(fit.bse[0]) ** 2 * (m - 1) / m


@pytest.mark.parametrize("seed", range(5))
def test_the_effective_n_is_the_cluster_robust_variance_statsmodels_gives(seed):
    rng = np.random.default_rng(seed)
    m = 80
    w = rng.integers(1, 12, m).astype(float)
    y = (rng.random(m) < 0.1 + 0.05 * (w > 6)).astype(float)  # heavy requests err more often
    point, variance = cluster_variance(y, w)
    p = float(np.sum(w * y) / w.sum())
    assert p == pytest.approx(point, rel=1e-12)
    assert weighted.design_n(y - p, w) == pytest.approx(p * (1 - p) / variance, rel=1e-9)
    n_eff = weighted.effective_n(y - p, w)
    a_iid, a_design = w * (y - p) ** 2, w * w * (y - p) ** 2
    df_iid, df_design = (a.sum() ** 2 / np.sum(a * a) for a in (a_iid, a_design))
    shrink = (t_dist.ppf(0.975, df_iid) / t_dist.ppf(0.975, df_design)) ** 2
    assert n_eff == pytest.approx(min(m, w.sum() ** 2 / np.sum(w * w), p * (1 - p) / variance * shrink), rel=1e-3)
    estimate = weighted.rate(y, w)
    assert estimate.value == pytest.approx(point) and estimate.n == m
    assert (estimate.low, estimate.high) == pytest.approx(_wilson(p, n_eff))


def _wilson(p, n, z=1.959963984540054):
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("seed", range(3))
def test_a_weighted_mean_has_the_cluster_robust_standard_error(seed):
    rng = np.random.default_rng(seed)
    m = 60
    w = rng.integers(1, 8, m).astype(float)
    x = rng.gamma(2.0, 50.0, m) + 20 * w
    fit = sm.WLS(x, np.ones_like(x), weights=w).fit(cov_type="cluster", cov_kwds={"groups": np.arange(m)})
    estimate = weighted.mean_one(x, w)
    assert estimate.value == pytest.approx(float(fit.params[0]), rel=1e-12)
    # the t part of the interval: point -/+ t(0.975, m - 1) * se, se the cluster-robust one (m / (m - 1) included)
    t = stats.t_quantile(0.975, m - 1) * float(fit.bse[0])
    assert estimate.low <= estimate.value - t * (1 - 1e-9) and estimate.high >= estimate.value + t * (1 - 1e-9)
    assert min(estimate.value - estimate.low, estimate.high - estimate.value) == pytest.approx(t, rel=1e-6) or \
        estimate.high - estimate.low > 2 * t  # the bootstrap-t widened one side


def test_every_weighted_figure_is_the_unweighted_one_when_each_weight_is_1():
    rng = np.random.default_rng(7)
    n = 150
    ones = np.ones(n)
    b, c = rng.random(n) < 0.2, rng.random(n) < 0.3
    x = rng.gamma(2, 100, n)
    y = x * 0.8 + rng.normal(0, 20, n)
    close = pytest.approx

    def same(first, second):
        assert (first.value, first.low, first.high, first.n, first.min_n) == \
            (close(second.value), close(second.low), close(second.high), second.n, second.min_n)  # fmt: skip

    same(weighted.rate(c, ones), stats.wilson(int(c.sum()), n))
    same(weighted.paired_rate_delta(b, c, ones), stats.paired_rate_delta(b, c))
    same(weighted.paired_rate_ratio(b, c, ones), stats.paired_rate_ratio(b, c))
    assert weighted.mcnemar(b, c, ones) == stats.mcnemar(b, c)
    for first, second in zip(weighted.paired_mean(x, y, ones), stats.paired_mean(x, y)):
        same(first, second)
    for first, second in zip(weighted.paired_percentiles(x, y, ones, (50, 95, 99)), stats.paired_percentiles(x, y, (50, 95, 99))):
        for one, other in zip(first, second):
            same(one, other)
    values = rng.random(n)
    same(weighted.bounded_mean(values, ones), stats.bounded_mean(values))
    same(weighted.judge_rate((values > 0.6).astype(float), ((values > 0.3) & (values <= 0.6)).astype(float), ones),
         stats.win_rate(int((values > 0.6).sum()), int(((values > 0.3) & (values <= 0.6)).sum()), n))  # fmt: skip


def test_a_weighted_percentile_is_the_expanded_samples_and_its_bounds_widen():
    values = np.array([10.0, 20.0, 30.0, 40.0, 1000.0])
    w = np.array([5, 1, 1, 1, 2])
    expanded = np.repeat(values, w)
    for q in (10, 50, 90, 95):
        assert weighted.percentile_one(values, w, q).value == pytest.approx(float(np.percentile(expanded, q)))
    rng = np.random.default_rng(3)
    x = rng.gamma(2, 100, 400)
    copies = rng.integers(1, 6, 400)
    clustered = weighted.percentile_one(x, copies, 50)
    independent = stats.percentile_one(np.repeat(x, copies), 50)  # as if every copy had been replayed on its own
    assert clustered.value == pytest.approx(independent.value)
    assert clustered.high - clustered.low > independent.high - independent.low


def test_flips_count_their_weights_and_test_on_the_effective_number():
    base = np.array([True] * 6 + [False] * 4)
    cand = np.array([False] + [True] * 9)
    w = np.array([30, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    flips = weighted.mcnemar(base, cand, w)
    assert (flips.to_fail, flips.to_pass) == (30, 4)
    # one heavy flip and four light ones are not 34 independent flips: p is far from McNemar's on 30 vs 4
    assert flips.p_value > 0.1 and stats.binomial_two_sided(4, 34) < 1e-4


def simulate(runs, traffic, outcome_of, records, seed, figure):
    """Coverage of a weighted figure's interval: each run samples ``records`` records from the
    traffic (request j with probability traffic[j]), replays each distinct request once (its
    outcome drawn by ``outcome_of``) and weighs it by its copies; the truth is the traffic's mean."""
    rng = np.random.default_rng(seed)
    covered = 0
    for _ in range(runs):
        drawn = rng.choice(traffic.size, size=records, p=traffic)
        distinct, copies = np.unique(drawn, return_counts=True)
        estimate = figure(outcome_of(rng, distinct), copies.astype(float))
        covered += estimate.low <= outcome_of.truth <= estimate.high
    return covered / runs


def errors(rate_of):
    def draw(rng, distinct):
        return rng.random(distinct.size) < rate_of[distinct]

    draw.truth = None
    return draw


ZIPF = 1 / np.arange(1, 301) ** 1.1
ZIPF /= ZIPF.sum()
MILD = 1 / np.arange(1, 2001) ** 0.8
MILD /= MILD.sum()


@pytest.mark.parametrize("traffic, rate_of, records", [
    (ZIPF, np.where(np.arange(300) < 3, 0.5, 0.03), 400),  # the 3 most common requests (30% of traffic) err half the time
    (ZIPF, np.full(300, 0.05), 400),  # every request errs alike: a few heavy coin flips decide the figure
    (MILD, np.where(np.arange(2000) < 20, 0.2, 0.02), 500),  # popular requests err more
])  # fmt: skip
def test_the_rates_interval_covers_under_duplicated_traffic(traffic, rate_of, records):
    draw = errors(rate_of)
    draw.truth = float(np.sum(traffic * rate_of))
    coverage = simulate(500, traffic, draw, records, 11, weighted.rate)
    assert coverage >= 0.93  # 95% nominal (binomial sd over 500 runs: 1%); the design-based n alone gave 83-87%

    def naive(erred, copies):  # every copy counted as an independent replay
        return stats.wilson(int(copies[erred].sum()), int(copies.sum()))

    assert simulate(500, traffic, draw, records, 11, naive) < 0.5  # 17-46%


def test_the_means_interval_covers_under_duplicated_traffic():
    def tokens(rng, distinct):
        return rng.gamma(2.0, 50.0, distinct.size)  # skewed, the same for every request

    tokens.truth = 100.0
    assert simulate(300, ZIPF, tokens, 400, 5, weighted.mean_one) >= 0.93  # without the widening: 91%
