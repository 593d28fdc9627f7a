"""The plan's sample sizes against a simulation of the gate code itself.

Pairs are drawn from a known model at the n the plan says gives an 80% chance to PASS a
candidate equal to the baseline, each simulated run goes through the metric's own
``compute`` and :func:`replay.gates.evaluate_gate`, and the share that PASS is checked.

The tolerance, from the simulation's size and from what "agrees within 10%" means: with
R runs the share's standard error is sqrt(0.8 x 0.2 / R), 3 of them a false alarm in
about 1 test in 400; and a planned n within 10% of the true one gives a PASS rate between
the plan's own power at 0.9 n and at 1.1 n (about 75% and 84%). So the simulated share
must lie in [power(0.9 n) - 3 SE, power(1.1 n) + 3 SE]. Seeds are fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from replay.config import Arm, Scenario
from replay.gates import PASS, Gate, evaluate_gate, required_n
from replay.metrics import METRICS, Pairs
from replay.plan import (
    PASS_ALPHA,
    LoggedBaseline,
    Quantiles,
    chance,
    independent_table,
    mean_bound,
    paired_rate_bound,
    pairs_needed,
    percentile_bound,
    plan_gates,
)
from replay.settings import decision_from

RUNS = 1500
SE = math.sqrt(0.8 * 0.2 / RUNS)


def pass_share(gate: Gate, n: int, draw, seed: int) -> float:
    """The share of RUNS simulated runs of n pairs in which the gate PASSes."""
    rng = np.random.default_rng(seed)
    passed = 0
    for _ in range(RUNS):
        columns = draw(rng, n)
        value = METRICS[gate.metric].compute(Pairs.from_columns(columns, n))
        passed += evaluate_gate(gate, value).status == PASS
    return passed / RUNS


def band(bound, gate: Gate, n: int) -> tuple[float, float]:
    def power(size: int) -> float:
        return chance(bound, gate.threshold, gate.upper, size, PASS_ALPHA, passing=True)

    return power(int(0.9 * n)) - 3 * SE, power(int(math.ceil(1.1 * n))) + 3 * SE


def correlated_normals(rng: np.random.Generator, n: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    first = rng.standard_normal(n)
    return first, rho * first + math.sqrt(1 - rho * rho) * rng.standard_normal(n)


def scenario() -> Scenario:
    return Scenario(name="sim", logs=("x",), candidate=Arm("http://127.0.0.1:1/v1", "gpt-4o-mini"))


def logged(flags: dict[str, np.ndarray], numbers: dict[str, np.ndarray] | None = None) -> LoggedBaseline:
    size = len(next(iter(flags.values())))
    nan = np.full(size, np.nan)
    names = ("latency_ms", "ttft_ms", "tokens_in", "tokens_out", "cost_usd", "max_output")
    all_flags = {name: flags.get(name, np.zeros(size, dtype=bool)) for name in
                 ("comparable", "ok", "json_required", "json_valid", "schema_required", "schema_valid", "refused",
                  "policy_pass")}  # fmt: skip
    return LoggedBaseline(all_flags, {name: (numbers or {}).get(name, nan) for name in names},
                          np.ones(size, dtype=bool), records=size, sample_size=size)  # fmt: skip


def planned(gate_spec: dict, baseline: LoggedBaseline):
    settings = decision_from({"gates": [gate_spec]})
    (plan,) = plan_gates(baseline, settings, scenario())
    return settings.gates[0], plan


# --- a rate: error_rate +2 pt, baseline 3% errors -----------------------------------------------


def error_pairs(p: float, rho: float):
    def draw(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        cells = rng.multinomial(1, independent_table(p, rho), size=n).argmax(axis=1)
        return {"c_error": (cells == 0) | (cells == 1), "b_error": (cells == 0) | (cells == 2)}

    return draw


def test_the_error_rate_plan_matches_the_gate_under_independent_failures():
    rng = np.random.default_rng(7)
    failed = rng.random(20_000) < 0.03  # the log: 3% logged errors
    baseline = logged({"comparable": np.ones(failed.size, dtype=bool), "ok": ~failed})
    gate, plan = planned({"metric": "error_rate", "max_delta": 0.02}, baseline)
    assert plan.baseline == pytest.approx(failed.mean())
    n = plan.needed
    assert n is not None and 900 < n < 1500  # Connor: (1.96 + 0.84)^2 x 2 x 0.03 x 0.97 / 0.02^2 = 1142
    low, high = band(paired_rate_bound(*independent_table(plan.baseline)), gate, n)
    assert low <= pass_share(gate, n, error_pairs(plan.baseline, 0.0), seed=1) <= high


def test_the_error_rate_plan_matches_the_gate_under_correlated_failures():
    """With failure correlation 0.5 (the arms often fail on the same requests) the
    discordance halves, and so does the planned n; the gate's interval uses that
    correlation (Newcombe's phi*), and the simulation agrees."""
    gate = Gate("error_rate", "max_delta", 0.02)
    independent = pairs_needed(paired_rate_bound(*independent_table(0.03)), 0.02, True, required_n(gate))
    bound = paired_rate_bound(*independent_table(0.03, correlation=0.5))
    n = pairs_needed(bound, 0.02, True, required_n(gate))
    assert n is not None and independent is not None and 0.4 * independent < n < 0.6 * independent
    low, high = band(bound, gate, n)
    assert low <= pass_share(gate, n, error_pairs(0.03, 0.5), seed=2) <= high


# --- a mean: tokens_out +40, completion tokens Gamma(2, 100) ----------------------------------------


def gamma_pairs(rho: float):
    from scipy.stats import gamma, norm

    def draw(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        first, second = correlated_normals(rng, n, rho)
        return {"b_tokens_out": gamma.ppf(norm.cdf(first), 2, scale=100),
                "c_tokens_out": gamma.ppf(norm.cdf(second), 2, scale=100)}  # fmt: skip

    return draw


def test_the_mean_plan_matches_the_gate_with_independent_answer_lengths():
    """The plan's own model: the candidate's answer length is an independent draw from the logged ones."""
    rng = np.random.default_rng(11)
    tokens = rng.gamma(2, 100, 20_000)
    baseline = logged({"comparable": np.ones(tokens.size, dtype=bool), "ok": np.ones(tokens.size, dtype=bool)},
                      {"tokens_in": np.full(tokens.size, 30.0), "tokens_out": tokens})  # fmt: skip
    gate, plan = planned({"metric": "tokens_out", "max_delta": 40}, baseline)
    n = plan.needed
    assert n is not None and 150 < n < 260  # (1.96 + 0.84)^2 x 2 x 20,000 / 40^2 = 196
    assert plan.expected == pytest.approx(0.0, abs=1e-9) and plan.floor == 20
    low, high = band(mean_bound(rng.gamma(2, 100, 200_000) - rng.gamma(2, 100, 200_000)), gate, n)
    assert low <= pass_share(gate, n, gamma_pairs(0.0), seed=3) <= high


def test_the_mean_plan_matches_the_gate_with_correlated_answer_lengths():
    gate = Gate("tokens_out", "max_delta", 30)
    rng = np.random.default_rng(12)
    columns = gamma_pairs(0.5)(rng, 200_000)
    bound = mean_bound(columns["c_tokens_out"] - columns["b_tokens_out"])
    n = pairs_needed(bound, 30, True, required_n(gate))
    assert n is not None and 140 < n < 260  # var(d) = 2 x 20,000 x (1 - ~0.5)
    low, high = band(bound, gate, n)
    assert low <= pass_share(gate, n, gamma_pairs(0.5), seed=4) <= high


# --- a percentile: latency_p95_ms +400 ms, lognormal latencies ------------------------------------


def latency_pairs(rho: float):
    def draw(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        first, second = correlated_normals(rng, n, rho)
        return {"b_latency_ms": 800 * np.exp(0.5 * first), "c_latency_ms": 800 * np.exp(0.5 * second)}

    return draw


def test_the_latency_plan_matches_the_gate_and_is_conservative_for_correlated_latencies():
    rng = np.random.default_rng(13)
    latencies = 800 * np.exp(0.5 * rng.standard_normal(50_000))
    ones = np.ones(latencies.size, dtype=bool)
    baseline = logged({"comparable": ones, "ok": ones}, {"latency_ms": latencies})
    gate, plan = planned({"metric": "latency_p95_ms", "max_delta": 400}, baseline)
    n = plan.needed
    assert n is not None and n > required_n(gate)
    low, high = band(percentile_bound(0.95, Quantiles(latencies), Quantiles(latencies)), gate, n)
    assert low <= pass_share(gate, n, latency_pairs(0.0), seed=5) <= high
    # correlated latencies (a slow request is slow on both arms) only narrow the difference
    assert pass_share(gate, n, latency_pairs(0.6), seed=6) >= low
