"""Intervals and tests for paired comparisons.

Every figure a gate reads carries a 95% interval computed the way its kind demands:

* a rate on one side (error rate, format compliance): the Wilson score interval;
* a difference of two rates on the *same* requests: Newcombe's hybrid score interval
  for paired proportions (method 10, 1998), which uses the correlation between the
  arms; their ratio (a relative bound): the paired MOVER interval;
* percentiles (latency, TTFT): distribution-free order-statistic intervals;
* means (tokens, cost, similarity) and key-field accuracy: Student's t and the paired
  bootstrap-t together, trusted from a sample size that grows with the skewness;
* pass-to-fail flips: McNemar's exact test on the discordant pairs;
* several gates and segments at once: Holm's step-down adjustment of the FAIL tests.
"""

from replay.stats.bootstrap import (
    BOOTSTRAP_SEED,
    bootstrap_ratio,
    bounded_mean,
    MEAN_MIN_N,
    skewness_min_n,
    weighted_sums,
    mean_one,
    paired_mean,
    resample_count,
    resample_weights,
)
from replay.stats.estimate import CONFIDENCE, Z95, Estimate, independent_difference, more_needed, t_quantile, z_for
from replay.stats.proportions import (
    paired_rate_ratio,
    paired_ratio,
    Flips,
    PairedTable,
    binomial_two_sided,
    mcnemar,
    newcombe_paired,
    paired_rate_delta,
    wilson,
    win_rate,
)
from replay.stats.quantiles import min_n_for_bound, order_ranks, paired_percentiles, percentile_one

__all__ = [
    "BOOTSTRAP_SEED", "CONFIDENCE", "Z95", "Estimate", "Flips", "PairedTable", "binomial_two_sided",
    "MEAN_MIN_N", "bootstrap_ratio", "bounded_mean", "mcnemar", "mean_one", "skewness_min_n", "weighted_sums", "min_n_for_bound", "more_needed",
    "newcombe_paired", "order_ranks", "paired_mean", "paired_percentiles", "paired_rate_delta", "paired_rate_ratio", "paired_ratio", "percentile_one",
    "resample_count", "resample_weights", "t_quantile", "wilson", "win_rate", "z_for",
]  # fmt: skip
