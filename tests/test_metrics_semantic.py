"""semantic_similarity and semantic_similarity_p10: the cosines' mean and 10th percentile, with intervals."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from replay.gates import FAIL, INCONCLUSIVE, PASS, Gate, decide
from replay.metrics import METRICS, P10_MIN_N, Pairs


def pairs_of(cosines, missing=0, errors=0):
    rows = [{"request_id": f"r{i:04d}", "b_error": False, "c_error": False, "semantic_similarity": float(value)}
            for i, value in enumerate(cosines)]  # fmt: skip
    rows += [{"request_id": f"m{i}", "b_error": False, "c_error": False} for i in range(missing)]
    rows += [{"request_id": f"e{i}", "b_error": False, "c_error": True} for i in range(errors)]
    return Pairs(rows)


def test_the_mean_of_varied_cosines_has_a_t_interval_around_it():
    rng = np.random.default_rng(5)
    values = np.clip(rng.normal(0.8, 0.1, 400), -1, 1)
    metric = METRICS["semantic_similarity"].compute(pairs_of(values, errors=2))
    assert metric.n == 400 and metric.extra["missing"] == 0  # an errored pair is not one to embed
    estimate = metric.candidate
    assert estimate.value == pytest.approx(values.mean())
    half = sps.t.ppf(0.975, 399) * values.std(ddof=1) / math.sqrt(400)
    assert estimate.low <= values.mean() - half * 0.99 and estimate.high >= values.mean() + half * 0.99
    assert estimate.high - estimate.low < 4 * half  # the t interval, not a distribution-free one


def test_too_few_alike_cosines_get_hoeffdings_interval_for_the_range_minus_one_to_one():
    metric = METRICS["semantic_similarity"].compute(pairs_of([0.9] * 25))
    half = 2 * math.sqrt(math.log(2 / 0.05) / (2 * 25))  # range 2: the cosine's, not [0, 1]'s
    assert (metric.candidate.value, metric.candidate.low, metric.candidate.high) == pytest.approx((0.9, 0.9 - half, 1.0))


def test_negative_cosines_keep_the_interval_within_minus_one_and_one():
    metric = METRICS["semantic_similarity"].compute(pairs_of([-0.95, -0.9, -0.99, -1.0] * 6))
    assert -1.0 <= metric.candidate.low <= metric.candidate.value <= metric.candidate.high <= 1.0
    assert metric.candidate.value == pytest.approx(-0.96)


def exact_p10_ranks(n, tail=0.025):
    """Order-statistic ranks of a 95% interval of the 10th percentile, from scipy's binomial."""
    below = sps.binom(n, 0.10)
    low = max(k for k in range(1, n + 1) if below.cdf(k - 1) <= tail)
    high = min(k for k in range(1, n + 1) if below.sf(k - 1) <= tail)
    return low, high


def test_the_10th_percentile_is_bounded_by_order_statistics():
    values = np.arange(1, 201) / 200.0
    metric = METRICS["semantic_similarity_p10"].compute(pairs_of(values[::-1]))
    low, high = exact_p10_ranks(200)
    assert metric.candidate.value == pytest.approx(np.percentile(values, 10))
    assert (metric.candidate.low, metric.candidate.high) == (values[low - 1], values[high - 1])
    assert METRICS["semantic_similarity"].compute(pairs_of(values)).extra["p10"] == metric.candidate


def test_a_p10_gate_waits_for_the_pairs_its_interval_needs():
    assert P10_MIN_N == 36 == math.ceil(math.log(0.025) / math.log(0.9))
    gate = Gate("semantic_similarity_p10", "min", 0.5)
    result = decide((gate,), pairs_of([0.99] * 30)).results[0]
    assert result.status == INCONCLUSIVE
    assert result.note == "n=30 is below the minimum of 36 (a distribution-free interval of a p10 needs 36 pairs)"


@pytest.mark.parametrize("centre, status", [(0.95, PASS), (0.5, FAIL)])
def test_a_gate_on_the_mean_passes_or_fails_on_its_interval(centre, status):
    rng = np.random.default_rng(1)
    values = np.clip(rng.normal(centre, 0.03, 300), -1, 1)
    assert decide((Gate("semantic_similarity", "min", 0.8),), pairs_of(values)).results[0].status == status


def test_no_cosine_at_all_is_no_data():
    metric = METRICS["semantic_similarity"].compute(pairs_of([], missing=4))
    assert (metric.n, metric.candidate.value, metric.extra) == (0, None, {"missing": 4})
    result = decide((Gate("semantic_similarity", "min", 0.8),), pairs_of([], missing=4)).results[0]
    assert (result.status, result.note) == (INCONCLUSIVE, "no data")


def test_a_column_joins_a_table_built_from_rows_or_from_columns():
    rows = Pairs([{"request_id": "a"}, {"request_id": "b"}])
    rows.add_column("semantic_similarity", [0.5, None])
    assert rows.present("semantic_similarity").tolist() == [True, False] and rows.rows[0]["semantic_similarity"] == 0.5
    columns = Pairs.from_columns({"request_id": ("a", "b")}, 2)
    columns.numbers("semantic_similarity")  # built before the column joins: rebuilt after
    columns.add_column("semantic_similarity", [None, 0.25])
    assert np.isnan(columns.numbers("semantic_similarity")[0]) and columns.numbers("semantic_similarity")[1] == 0.25
    with pytest.raises(ValueError):
        columns.add_column("x", [1.0])


def test_pairs_never_embedded_stretch_the_intervals_to_whatever_their_cosines_could_be():
    rng = np.random.default_rng(2)
    values = list(np.clip(rng.normal(0.9, 0.05, 200), -1, 1))
    stretched = METRICS["semantic_similarity"].compute(pairs_of(values, missing=5))
    alone = METRICS["semantic_similarity"].compute(pairs_of(values)).candidate
    assert stretched.n == 200 and stretched.extra["missing"] == 5
    assert stretched.candidate.value == pytest.approx(np.mean(values))
    assert stretched.candidate.low == pytest.approx((200 * alone.low - 5) / 205)  # the mean of all 205, the 5 at -1
    assert stretched.candidate.high == pytest.approx((200 * alone.high + 5) / 205)
    p10 = METRICS["semantic_similarity_p10"].compute(pairs_of(values, missing=30)).candidate
    assert p10.low == -1.0 and p10.value == pytest.approx(np.percentile(values, 10))  # 30 of 230 could all be below
    strict = stretched.candidate.at(0.999)  # Holm's stricter levels stretch the same way
    assert strict.low < stretched.candidate.low and strict.value == stretched.candidate.value
