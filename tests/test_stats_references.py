"""Every interval against outside references: published tables, R's ratesci, statsmodels and scipy."""

import csv
import math
import os

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import proportion_confint

from replay import stats

DATA = os.path.join(os.path.dirname(__file__), "data", "ratesci_paired_intervals.csv")


# --- Newcombe (1998) method 10 ---------------------------------------------------------------

PUBLISHED_METHOD_10 = [
    # (a, b, c, d): a both, b first only, c second only; the interval of (a+b)/N - (a+c)/N
    ((20, 12, 2, 16), (0.0562, 0.3292)),  # Newcombe 1998, the worked example
    ((1, 1, 7, 12), (-0.507, -0.026)),  # Fagerland, Lydersen & Laake 2014
    ((8, 3, 1, 2), (-0.1574, 0.4136)),  # Tang, Ling, Ling & Tian 2010
    ((59, 6, 16, 80), (-0.1186, -0.0046)),  # Fagerland et al., Statistical analysis of contingency tables (Cavo data)
    ((7, 25, 2, 68), (0.133, 0.318)),  # quoted in ratesci's tests (tests/testthat/test3.R)
    # Newcombe 1998, Table III, all 18 rows
    ((36, 12, 2, 0), (0.0569, 0.3404)), ((18, 12, 2, 18), (0.0562, 0.3290)), ((36, 14, 0, 0), (0.1528, 0.4167)),
    ((35, 14, 0, 1), (0.1461, 0.4175)), ((18, 14, 0, 18), (0.1441, 0.3963)), ((2, 97, 1, 0), (0.8721, 0.9854)),
    ((1, 97, 1, 1), (0.8736, 0.9850)), ((0, 29, 1, 0), (0.6666, 0.9882)), ((2, 98, 0, 0), (0.9178, 0.9945)),
    ((1, 98, 0, 1), (0.9171, 0.9916)), ((0, 30, 0, 0), (0.8395, 1.0000)), ((54, 0, 0, 0), (-0.0664, 0.0664)),
    ((53, 0, 0, 1), (-0.0729, 0.0729)), ((30, 0, 0, 24), (-0.0358, 0.0358)), ((29, 0, 0, 25), (-0.0354, 0.0354)),
    ((28, 0, 0, 26), (-0.0352, 0.0352)), ((27, 0, 0, 27), (-0.0351, 0.0351)),
]  # fmt: skip


@pytest.mark.parametrize("table, published", PUBLISHED_METHOD_10)
def test_method_10_matches_the_published_tables(table, published):
    est = stats.newcombe_paired(*table)
    digits = len(str(published[0]).split(".")[1])  # papers print 3 or 4 decimals, some truncated
    assert (est.low, est.high) == pytest.approx(published, abs=10**-digits)
    a, b, c, d = table
    assert est.value == pytest.approx((b - c) / sum(table))


def ratesci_rows():
    with open(DATA, encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return [{k: v for k, v in row.items()} for row in csv.DictReader(lines)]


def number(text):
    return None if text in ("", "NA") else float(text)


def test_method_10_equals_ratesci_on_every_table_up_to_six_per_cell():
    """2,414 tables: every (a, b, c, d) in 0..6 (all-zero excluded) and 14 larger ones."""
    rows = ratesci_rows()
    assert len(rows) == 2414
    for row in rows:
        a, b, c, d = (int(row[k]) for k in "abcd")
        est = stats.newcombe_paired(a, b, c, d)
        assert est.low == pytest.approx(number(row["rd10_low"]), abs=2e-6), row
        assert est.high == pytest.approx(number(row["rd10_high"]), abs=2e-6), row


def test_method_10_never_collapses_to_zero_width_without_discordant_pairs():
    """Five requests valid on both arms and five broken on both: the uncorrected phi = 1 gave [0, 0]."""
    est = stats.newcombe_paired(5, 0, 0, 5)
    assert (round(est.low, 6), round(est.high, 6)) == (-0.166593, 0.166593)  # ratesci
    assert stats.PairedTable(5, 0, 0, 5).corrected_phi() == pytest.approx(0.8)


def test_paired_rate_delta_orients_the_table_candidate_first():
    base = np.array([1, 1, 1, 0, 0, 1, 0, 1], bool)
    cand = np.array([1, 0, 1, 0, 1, 1, 0, 0], bool)
    table = stats.PairedTable.of(cand, base)
    assert (table.both, table.only_first, table.only_second, table.neither) == (3, 1, 2, 2)
    assert stats.paired_rate_delta(base, cand) == stats.newcombe_paired(3, 1, 2, 2)


# --- the ratio of paired rates (relative bounds) ---------------------------------------------


def test_paired_ratio_equals_ratesci_tang_score():
    """Where the second rate is positive (the ratio exists), on every table of the grid."""
    checked = 0
    for row in ratesci_rows():
        a, b, c, d = (int(row[k]) for k in "abcd")
        if a + c == 0:
            continue
        first = np.array([1] * (a + b) + [0] * (c + d), bool)
        second = np.array([1] * a + [0] * b + [1] * c + [0] * d, bool)
        est = stats.paired_rate_ratio(second, first)
        low, high = number(row["tang_low"]), number(row["tang_high"])
        assert est.low == pytest.approx(low, rel=1e-5, abs=1e-9), row
        if high is None or math.isinf(high):
            assert math.isinf(est.high), row
        else:
            assert est.high == pytest.approx(high, rel=1e-5), row
        checked += 1
    assert checked > 2000


@pytest.mark.parametrize("table, confidence, expected", [
    ((1, 1, 7, 12), 0.95, (0.0653, 0.9069)),  # DelRocco et al. 2022, quoted in ratesci's tests
    ((8, 3, 1, 2), 0.95, (0.776, 2.033)),  # Tang, Ling, Ling & Tian 2010
    ((59, 6, 16, 80), 0.95, (0.7476, 0.9876)),  # contingencytables' tests (Cavo data)
    ((446, 5, 16, 690), 0.90, (0.958, 0.992)),  # Tang, Tang & Chan 2003, Table II
    ((43, 0, 1, 0), 0.90, (0.904, 1.039)),  # Tang, Tang & Chan 2003, Table II
])  # fmt: skip
def test_paired_ratio_on_the_published_tables(table, confidence, expected):
    est = stats.paired_ratio(*table, confidence=confidence)
    digits = len(str(expected[0]).split(".")[1])
    assert (est.low, est.high) == pytest.approx(expected, abs=10**-digits)


def test_paired_ratio_edge_cases():
    assert not stats.paired_ratio(0, 3, 0, 7).known  # the baseline never had the event: no ratio
    est = stats.paired_ratio(0, 0, 3, 6)  # the candidate never has it: the ratio may be 0
    assert est.value == 0 and est.low == 0 and est.high == pytest.approx(1.2804862736)  # ratesci


# --- Wilson and McNemar against statsmodels --------------------------------------------------


def test_wilson_matches_statsmodels_for_every_count_up_to_n_300():
    counts = [(k, n) for n in range(1, 301) for k in range(n + 1)]
    low, high = proportion_confint(*map(np.array, zip(*counts)), alpha=0.05, method="wilson")
    ours = np.array([(est.low, est.high) for est in (stats.wilson(k, n) for k, n in counts)])
    assert np.max(np.abs(ours - np.column_stack([low, high]))) < 1e-12


def test_wilson_at_other_levels_matches_statsmodels():
    for confidence in (0.9, 0.99, 0.999):
        est = stats.wilson(7, 40).at(confidence)
        low, high = proportion_confint(7, 40, alpha=1 - confidence, method="wilson")
        assert (est.low, est.high) == (pytest.approx(low), pytest.approx(high))


def test_mcnemar_exact_matches_statsmodels():
    for to_fail in range(0, 40, 3):
        for to_pass in range(0, 40, 4):
            ours = stats.binomial_two_sided(min(to_fail, to_pass), to_fail + to_pass)
            theirs = sm_mcnemar([[10, to_fail], [to_pass, 10]], exact=True).pvalue
            assert ours == pytest.approx(theirs, abs=1e-12)


# --- order statistics, t quantiles -----------------------------------------------------------


@pytest.mark.parametrize("n, q, tail, ranks", [
    # computed in R from qbinom, cross-checked with quantileCI's exact method
    (20, 0.5, 0.025, (6, 15)), (50, 0.5, 0.025, (18, 33)), (100, 0.5, 0.025, (40, 61)),
    (100, 0.95, 0.025, (90, 100)), (400, 0.5, 0.025, (180, 221)), (400, 0.95, 0.025, (371, 389)),
    (400, 0.99, 0.025, (392, 400)), (1000, 0.5, 0.025, (469, 532)), (1000, 0.95, 0.025, (936, 964)),
    (1000, 0.99, 0.025, (983, 997)), (20, 0.5, 0.0125, (5, 16)), (400, 0.95, 0.0125, (370, 390)),
    (1000, 0.99, 0.0125, (982, 997)), (20, 0.95, 0.025, (17, None)), (100, 0.99, 0.025, (97, None)),
    (400, 0.99, 0.0125, (391, None)),
])  # fmt: skip
def test_order_statistic_ranks(n, q, tail, ranks):
    assert stats.order_ranks(n, q, tail) == ranks


@pytest.mark.parametrize("q, tail, n", [(0.95, 0.025, 72), (0.99, 0.025, 368), (0.95, 0.0125, 86),
                                        (0.99, 0.0125, 437), (0.5, 0.0125, 7), (0.1, 0.025, 36)])  # fmt: skip
def test_fewest_observations_for_a_percentile_interval(q, tail, n):
    assert stats.min_n_for_bound(q, tail) == n
    assert stats.order_ranks(n, q, tail)[1] is not None and stats.order_ranks(n - 1, q, tail)[1 if q >= 0.5 else 0] is None


def test_order_statistic_coverage_is_exact_binomial():
    """The interval's coverage is the binomial probability of the ranks, at least the nominal level."""
    for n, q in ((50, 0.5), (200, 0.95), (1000, 0.99)):
        low, high = stats.order_ranks(n, q, 0.025)
        coverage = scipy_stats.binom.cdf(high - 1, n, q) - scipy_stats.binom.cdf(low - 1, n, q)
        assert coverage >= 0.95


@pytest.mark.parametrize("df", [19, 29, 99, 999])
def test_t_quantile_matches_scipy(df):
    for p in (0.975, 0.995, 0.9995, 0.99995):
        assert stats.t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=5e-5)
