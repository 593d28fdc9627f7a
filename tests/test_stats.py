"""Intervals and tests, checked against known values and by simulation with fixed seeds."""

import math

import numpy as np
import pytest

from replay import stats


def test_wilson_matches_known_values():
    est = stats.wilson(0, 10)
    assert est.value == 0 and est.low == 0 and est.high == pytest.approx(0.2775, abs=1e-4)
    est = stats.wilson(5, 10)
    assert (est.low, est.high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert not stats.wilson(0, 0).known


def test_newcombe_paired_reduces_to_square_and_add_when_arms_are_uncorrelated():
    """With ad = bc (phi = 0) method 10 is Newcombe's square-and-add of the two Wilson intervals."""
    both, only_first, only_second, neither = 20, 10, 20, 10  # ad = bc = 200
    est = stats.newcombe_paired(both, only_first, only_second, neither)
    first, second = stats.wilson(30, 60), stats.wilson(40, 60)
    theta = first.value - second.value
    low = theta - math.sqrt((first.value - first.low) ** 2 + (second.high - second.value) ** 2)
    high = theta + math.sqrt((first.high - first.value) ** 2 + (second.value - second.low) ** 2)
    assert (est.value, est.low, est.high) == (pytest.approx(theta), pytest.approx(low), pytest.approx(high))
    # positively correlated arms (same requests) give a narrower interval than that
    tight = stats.newcombe_paired(38, 2, 12, 8)
    assert tight.high - tight.low < est.high - est.low


@pytest.mark.parametrize("p_base, drop, flip", [(0.9, 0.0, 0.05), (0.95, 0.05, 0.02), (0.5, 0.1, 0.2)])
def test_paired_rate_delta_covers_the_true_delta_95_percent_of_the_time(p_base, drop, flip):
    rng = np.random.default_rng(11)
    n, runs, covered = 300, 400, 0
    for _ in range(runs):
        base = rng.random(n) < p_base
        # the candidate keeps the baseline's outcome except for random flips, then loses `drop` more
        cand = np.where(rng.random(n) < flip, ~base, base)
        cand = cand & ~(rng.random(n) < drop / p_base)
        truth = p_base * (1 - flip) * (1 - drop / p_base) + (1 - p_base) * flip * (1 - drop / p_base) - p_base
        est = stats.paired_rate_delta(base, cand)
        covered += est.low <= truth <= est.high
    assert covered / runs >= 0.93


def test_paired_interval_is_narrower_than_treating_arms_as_independent():
    rng = np.random.default_rng(5)
    base = rng.random(400) < 0.9
    cand = base & ~(rng.random(400) < 0.03)
    paired = stats.paired_rate_delta(base, cand)
    p1, p2 = cand.mean(), base.mean()
    independent_half = 1.96 * math.sqrt(p1 * (1 - p1) / 400 + p2 * (1 - p2) / 400)
    assert (paired.high - paired.low) / 2 < independent_half * 0.7


def test_mcnemar_exact_p_values():
    assert stats.binomial_two_sided(0, 5) == pytest.approx(2 / 32)
    assert stats.binomial_two_sided(5, 10) == 1.0
    flips = stats.mcnemar(np.array([1, 1, 1, 1, 0], bool), np.array([0, 0, 0, 1, 1], bool))
    assert (flips.to_fail, flips.to_pass) == (3, 1)
    assert flips.p_value == pytest.approx(0.625)


def test_paired_mean_of_an_exact_shift_is_exact():
    """Candidate = baseline + 50 ms exactly: the delta's interval is [50, 50] and the percentage follows."""
    rng = np.random.default_rng(2)
    base = rng.lognormal(6.5, 0.4, 500)
    b, c, d, pct = stats.paired_mean(base, base + 50)
    assert d.value == pytest.approx(50) and d.low == pytest.approx(50) and d.high == pytest.approx(50)
    assert pct.value == pytest.approx(50 / b.value * 100)


def test_paired_mean_coverage_by_simulation():
    rng = np.random.default_rng(8)
    covered, runs = 0, 200
    for _ in range(runs):
        base = rng.normal(100, 20, 150)
        cand = base + rng.normal(3, 10, 150)  # true mean delta 3
        _, _, d, _ = stats.paired_mean(base, cand, seed=int(rng.integers(1 << 30)))
        covered += d.low <= 3 <= d.high
    assert covered / runs >= 0.93


def test_bootstrap_is_repeatable_with_its_fixed_seed():
    data = np.random.default_rng(4).gamma(2, 1, 100)
    assert stats.mean_one(data) == stats.mean_one(data)
    assert stats.paired_mean(data, data * 1.1) == stats.paired_mean(data, data * 1.1)


def test_empty_samples_give_unknown_estimates():
    b, c, d, pct = stats.paired_mean(np.array([]), np.array([]))
    assert not d.known and d.n == 0
    assert not stats.mean_one(np.array([])).known
    assert not stats.percentile_one(np.array([]), 50).known
    assert [e.known for e in stats.paired_percentiles(np.array([]), np.array([]), (50, 99))[0]] == [False] * 4
    assert not stats.bootstrap_ratio(np.array([]), np.array([])).known


def test_more_needed_shrinks_as_the_estimate_moves_away_from_the_threshold():
    near = stats.more_needed(stats.Estimate(0.004, -0.004, 0.012, 400), 0.005)
    far = stats.more_needed(stats.Estimate(-0.004, -0.012, 0.004, 400), 0.005)
    assert near > far > 0
    # half-width 0.008 at n=400, gap 0.009: (0.008/0.009)^2 * 400 = 316 < 400, so few more
    assert stats.more_needed(stats.Estimate(-0.004, -0.012, 0.004, 400), 0.005) == 1
    assert stats.more_needed(stats.Estimate(0.005, 0.0, 0.01, 100), 0.005) is None


@pytest.mark.parametrize("n", [1, 7, 300, 12_000])
def test_resample_counts_give_exactly_the_sums_of_each_resample(n):
    """The count-based bootstrap equals numpy on the materialised resample, on both code paths."""
    x = np.random.default_rng(n).lognormal(5, 1, n)
    weights = stats.resample_weights(n, seed=3)
    assert weights.shape == (stats.resample_count(n), n) and set(weights.sum(axis=1)) == {n}
    sums = stats.weighted_sums([x, x * x], weights[:8])
    for r in range(8):
        sample = np.repeat(x, weights[r])
        assert sums[r] == pytest.approx([sample.sum(), (sample * sample).sum()])
