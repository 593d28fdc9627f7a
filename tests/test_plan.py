"""The plan's formulas against a published value, and what it says about gates and arms."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from conftest import record, write_log
from replay.gates import FAIL, INCONCLUSIVE, PASS, SKIPPED
from replay.metrics import METRICS
from replay.plan import (
    PASS_ALPHA,
    UNKNOWN,
    Bound,
    LoggedBaseline,
    independent_table,
    make_plan,
    paired_rate_bound,
    pairs_needed,
    plan_gates,
    tally_for,
)
from replay.runner import scan
from replay.scenario_file import load_scenario
from replay.settings import decision_from

Z = NormalDist()


def wald_mcnemar(p10: float, p01: float) -> Bound:
    """McNemar's z-test as Connor (1987) sizes it: the critical value from the variance
    under H0 (psi / n), the spread from the variance under H1 ((psi - delta^2) / n)."""
    psi, delta = p10 + p01, p10 - p01

    def moments(n: int, tail: float, upper: bool) -> tuple[float, float]:
        half = Z.inv_cdf(1 - tail) * math.sqrt(psi / n)
        return (delta + half if upper else delta - half), math.sqrt((psi - delta**2) / n)

    return Bound(moments)


def test_the_search_reproduces_connors_published_example():
    """Connor (1987), p. 209, as worked on powerandsamplesize.com (McNemar Z-test, 2-sided):
    p01 = 0.45, p10 = 0.05, alpha = 0.05, power 0.8: n = 23. The plan's power function
    and search, given McNemar's Wald bound, find the same n."""
    closed_form = ((Z.inv_cdf(0.975) * math.sqrt(0.5) + Z.inv_cdf(0.8) * math.sqrt(0.5 - 0.4**2)) / 0.4) ** 2
    assert math.ceil(closed_form) == 23
    assert PASS_ALPHA == 0.025
    assert pairs_needed(wald_mcnemar(0.05, 0.45), 0.0, upper=True, floor=1) == 23


@pytest.mark.parametrize("p, margin", [(0.05, 0.02), (0.1, 0.03), (0.02, 0.01)])
def test_the_newcombe_plan_is_connors_non_inferiority_n_where_the_wald_interval_is_good(p, margin):
    """For a candidate equal to the baseline Connor's n is (z_a + z_b)^2 psi / M^2; away
    from p = 0 the score interval is nearly Wald's, so the two agree within a few percent."""
    psi = 2 * p * (1 - p)
    connor = (Z.inv_cdf(0.975) + Z.inv_cdf(0.8)) ** 2 * psi / margin**2
    planned = pairs_needed(paired_rate_bound(*independent_table(p)), margin, upper=True, floor=10)
    assert planned is not None and abs(planned / connor - 1) < 0.04


def test_near_zero_the_score_interval_needs_more_than_connor_says():
    """At p = 0.2% the Wilson margins are lopsided: Wald's n (1,253) passes far too rarely,
    the plan asks for more (its n checked by simulation in test_plan_simulation)."""
    connor = (Z.inv_cdf(0.975) + Z.inv_cdf(0.8)) ** 2 * 2 * 0.002 * 0.998 / 0.005**2
    planned = pairs_needed(paired_rate_bound(*independent_table(0.002)), 0.005, upper=True, floor=10)
    assert round(connor) == 1253 and planned is not None and planned > 1.2 * connor


def baseline(size: int, **columns) -> LoggedBaseline:
    ones = np.ones(size, dtype=bool)
    flags = {name: columns.pop(name, ones if name in ("comparable", "ok") else ~ones)
             for name in ("comparable", "ok", "json_required", "json_valid", "schema_required", "schema_valid",
                          "refused", "policy_pass")}  # fmt: skip
    numbers = {name: columns.pop(name, np.full(size, np.nan))
               for name in ("latency_ms", "ttft_ms", "tokens_in", "tokens_out", "cost_usd", "max_output")}
    selected = columns.pop("selected", ones)
    labels = columns.pop("labels", {})
    return LoggedBaseline(flags, numbers, selected, labels, records=size, sample_size=int(selected.sum()))


def scenario(tmp_path, text: str = "", **overrides):
    log = write_log(tmp_path / "log.jsonl", [record("a")])
    path = tmp_path / "s.yaml"
    path.write_text(f"logs: {log}\ncandidate: {{base_url: 'http://127.0.0.1:1/v1', model: gpt-4o-mini}}\n{text}")
    return load_scenario(str(path), overrides)


def plan_of(gates, data: LoggedBaseline, config, segment_by=()):
    settings = decision_from({"gates": gates, "segment_by": list(segment_by)})
    return plan_gates(data, settings, config)


def test_a_gate_the_sample_is_too_small_for_is_expected_inconclusive(tmp_path):
    rng = np.random.default_rng(1)
    failed = rng.random(5000) < 0.02
    selected = np.zeros(5000, dtype=bool)
    selected[:160] = True
    (plan,) = plan_of([{"metric": "error_rate", "max_delta": 0.005}], baseline(5000, ok=~failed, selected=selected),
                      scenario(tmp_path))  # fmt: skip
    assert plan.sample == 160 and plan.needed is not None and plan.needed > 5000
    assert plan.expect == INCONCLUSIVE and plan.pass_chance is not None and plan.pass_chance < 0.2
    assert plan.line() == f"error_rate +0.5 pt: needs about {plan.needed:,} pairs; the sample gives 160, so expect INCONCLUSIVE"
    assert not plan.settled


def test_the_levels_are_the_gates_own(tmp_path):
    """PASS at the 95% interval's one-sided 2.5%; FAIL at Holm's first step, 2.5% / tests,
    the tests counting each gate once plus once per critical segment."""
    data = baseline(100, labels={"category": np.array(["a"] * 50 + ["b"] * 50, dtype=object)})
    settings = decision_from({"gates": [{"metric": "error_rate", "max_delta": 0.01},
                                        {"metric": "error_rate", "max_delta": 0.01, "segment": "category=a"}],
                              "segment_by": ["category"], "critical_segments": ["a", "b"]})  # fmt: skip
    whole, segment = plan_gates(data, settings, scenario(tmp_path))
    assert whole.pass_alpha == segment.pass_alpha == 0.025
    assert whole.fail_alpha == pytest.approx(0.025 / 4)  # 1 + 2 critical parts, plus the segment's own gate
    assert (whole.sample, segment.sample) == (100, 50)


def test_a_pricier_candidate_is_expected_to_fail_the_cost_gate(tmp_path):
    size = 2000
    rng = np.random.default_rng(2)
    prompt, completion = rng.integers(50, 500, size).astype(float), rng.integers(10, 200, size).astype(float)
    logged_cost = (prompt * 0.15 + completion * 0.60) / 1e6  # gpt-4o-mini prices
    data = baseline(size, tokens_in=prompt, tokens_out=completion, cost_usd=logged_cost)
    config = scenario(tmp_path, "", **{"candidate.model": "gpt-4o"})  # about 16x the price
    (plan,) = plan_of([{"metric": "cost_per_request_usd", "max_delta_pct": 20}], data, config)
    ratio = (2.5 * prompt.mean() + 10 * completion.mean()) / (0.15 * prompt.mean() + 0.6 * completion.mean())
    assert plan.expected == pytest.approx((ratio - 1) * 100)  # +1,567%: the same tokens at gpt-4o's prices
    assert plan.needed is None and plan.expect == FAIL and plan.fail_chance == pytest.approx(1.0)
    assert plan.line().startswith("cost_per_request_usd +20%: a candidate equal to the baseline cannot pass it (expected +")


def test_an_unpriced_candidate_skips_the_preset_cost_gate(tmp_path):
    data = baseline(100, tokens_in=np.full(100, 10.0), tokens_out=np.full(100, 5.0), cost_usd=np.full(100, 1e-5))
    config = scenario(tmp_path, "", **{"candidate.model": "my-own-model"})
    plans = plan_of("default", data, config)
    cost = next(plan for plan in plans if plan.gate.metric == "cost_per_request_usd")
    assert cost.expect == SKIPPED and cost.settled
    assert cost.note == "no price for the candidate's model 'my-own-model': its costs are unknown"


def test_a_pair_measure_cannot_be_planned_from_the_log(tmp_path):
    (plan,) = plan_of([{"metric": "similarity", "min": 0.8}], baseline(100), scenario(tmp_path))
    assert plan.expect == UNKNOWN and plan.needed is None and plan.settled
    assert plan.line() == "similarity >= 0.8: measures the pair itself: the log holds no candidate answer to estimate it from"


def test_a_threshold_the_baseline_already_misses_cannot_pass(tmp_path):
    valid = np.arange(1000) < 900  # 90% valid JSON, the gate wants 95%
    data = baseline(1000, json_required=np.ones(1000, dtype=bool), json_valid=valid)
    (plan,) = plan_of([{"metric": "format_compliance", "min": 0.95}], data, scenario(tmp_path))
    assert plan.baseline == pytest.approx(0.9) and plan.needed is None and plan.expect == FAIL


def test_a_p99_gate_cannot_pass_below_its_order_statistic_floor(tmp_path):
    latency = 500 + 100 * np.random.default_rng(3).standard_normal(3000)
    (plan,) = plan_of([{"metric": "latency_p99_ms", "max_delta": 1000}], baseline(3000, latency_ms=latency),
                      scenario(tmp_path))  # fmt: skip
    # fewer than 437 pairs bound no p99 from above at a one-sided 1.25% per arm: a huge margin needs just that
    assert plan.floor == METRICS["latency_p99_ms"].min_n == 437 and plan.needed == 437
    assert plan.expect == PASS


def test_the_budget_caps_the_sample_the_gates_get(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(100)])
    config = load_scenario(None, {"logs": [log], "candidate.base_url": "http://127.0.0.1:1/v1",
                                  "candidate.model": "gpt-4o", "limits.budget_usd": 0.0005,
                                  "gates": [{"metric": "error_rate", "max_delta": 0.05}]})  # fmt: skip
    plan = make_plan(config)
    # each request: 10 prompt and 5 completion tokens at gpt-4o's $2.50 / $10 per million
    assert plan.cost_usd == pytest.approx(100 * (10 * 2.5 + 5 * 10) / 1e6)
    assert plan.budget_requests == 6 and plan.gates[0].sample == 6
    assert plan.warnings()[-1] == "budget $0.0005 pays for about 6 of the 100 sampled requests: the run stops there"


def test_the_pace_is_the_tightest_limit(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(600)])  # 400 ms each, max_tokens 50
    base = {"logs": [log], "candidate.base_url": "http://127.0.0.1:1/v1", "candidate.model": "gpt-4o"}
    by_concurrency = make_plan(load_scenario(None, {**base, "limits.concurrency": 4})).senders[0]
    assert (by_concurrency.limited_by, by_concurrency.duration_s) == ("concurrency", pytest.approx(600 * 0.4 / 4))
    by_rpm = make_plan(load_scenario(None, {**base, "limits.rpm": 60})).senders[0]
    assert (by_rpm.limited_by, by_rpm.duration_s) == ("rpm", pytest.approx(600.0))
    by_tpm = make_plan(load_scenario(None, {**base, "limits.tpm": 600})).senders[0]  # 10 prompt + 50 cap a request
    assert (by_tpm.limited_by, by_tpm.duration_s) == ("tpm", pytest.approx(600 * 60 / 600 * 60))
    assert (by_tpm.requests, by_tpm.prompt_tokens, by_tpm.completion_tokens) == (600, 6000, 3000)


def test_a_fresh_baseline_plans_both_arms(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(10)])
    config = load_scenario(None, {"logs": [log], "candidate.base_url": "http://127.0.0.1:1/v1",
                                  "candidate.model": "gpt-4o-mini", "baseline": "fresh",
                                  "production.base_url": "http://127.0.0.1:2/v1", "production.model": "gpt-4o"})  # fmt: skip
    plan = make_plan(config)
    assert [(s.name, s.model, s.requests) for s in plan.senders] == [("candidate", "gpt-4o-mini", 10),
                                                                    ("production", "gpt-4o", 10)]  # fmt: skip
    assert plan.cost_usd == pytest.approx(10 * (10 * 0.15 + 5 * 0.6 + 10 * 2.5 + 5 * 10) / 1e6)


def test_the_plan_samples_as_the_run_does(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(200)])
    config = load_scenario(None, {"logs": [log], "candidate.base_url": "http://127.0.0.1:1/v1",
                                  "candidate.model": "m", "sample.rate": 0.3, "sample.seed": 5})  # fmt: skip
    _, selected, _ = scan(config, False)
    assert make_plan(config).sample == len(selected)


def test_the_runs_reservoir_estimates_what_the_plan_counts(tmp_path):
    """replay run measures a uniform sample of the log for its warning; the shares it
    estimates from agree with the exact counts of replay plan."""
    records = []
    for i in range(3000):
        rec = record(f"r{i}")
        if i % 4 == 0:
            rec["request"]["response_format"] = {"type": "json_object"}
            rec["response"]["choices"][0]["message"]["content"] = '{"ok": true}' if i % 8 else "not json"
        if i % 50 == 0:
            rec["status"], rec["error"] = 500, "boom"
        records.append(rec)
    log = write_log(tmp_path / "log.jsonl", records)
    config = load_scenario(None, {"logs": [log], "candidate.base_url": "http://127.0.0.1:1/v1",
                                  "candidate.model": "gpt-4o", "sample.max": 800})  # fmt: skip
    exact, sampled = tally_for(config), tally_for(config, keep=500)
    scan(config, False, exact)
    scan(config, False, sampled)
    a, b = exact.baseline(), sampled.baseline()
    assert (a.measured, b.measured, a.records, b.records) == (3000, 500, 3000, 3000)
    assert a.exact and not b.exact
    assert b.in_sample(b.flags["json_required"]) == pytest.approx(a.in_sample(a.flags["json_required"]), rel=0.15)
    assert b.flags["json_valid"].sum() / b.flags["json_required"].sum() == pytest.approx(0.5, abs=0.1)
    assert b.in_sample(~b.flags["ok"]) == pytest.approx(a.in_sample(~a.flags["ok"]), abs=12)


def test_the_noise_floor_is_one_more_sender_through_productions_limits(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(100)])
    config = load_scenario(None, {"logs": [log], "candidate.base_url": "http://127.0.0.1:1/v1",
                                  "candidate.model": "gpt-4o-mini", "baseline": "fresh", "limits.rpm": 60,
                                  "production.base_url": "http://127.0.0.1:2/v1", "production.model": "gpt-4o",
                                  "noise_floor.sample": 20})  # fmt: skip
    candidate, production, noise = make_plan(config).senders
    assert [(s.name, s.model, s.requests) for s in (candidate, production, noise)] == [
        ("candidate", "gpt-4o-mini", 100), ("production", "gpt-4o", 100), ("noise", "gpt-4o", 20)]
    assert (noise.prompt_tokens, noise.completion_tokens) == (200, 100)
    # production's endpoint answers 120 requests at 60 a minute; the candidate's 100
    assert (candidate.duration_s, production.duration_s, noise.duration_s) == (100.0, 120.0, 120.0)


def test_the_judge_and_the_embeddings_are_planned_as_senders(tmp_path, monkeypatch):
    """record(): 10 prompt tokens, 5 answer tokens, 400 ms a request."""
    monkeypatch.setenv("JUDGE_KEY", "k")
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(100)])
    config = load_scenario(None, {
        "logs": [log], "candidate.base_url": "http://127.0.0.1:1/v1", "candidate.model": "gpt-4o-mini",
        "production.base_url": "http://127.0.0.1:2/v1", "production.model": "gpt-4o", "noise_floor.sample": 20,
        "judge.base_url": "http://127.0.0.1:3/v1", "judge.model": "gpt-4.1", "judge.api_key_env": "JUDGE_KEY",
        "judge.limits.rpm": 600, "embeddings.base_url": "http://127.0.0.1:4/v1",
        "embeddings.model": "text-embedding-3-small", "embeddings.batch_size": 16,
        "prices.text-embedding-3-small.input": 0.02, "prices.text-embedding-3-small.output": 0,
    })  # fmt: skip
    senders = {s.name: s for s in make_plan(config).senders}
    assert list(senders) == ["candidate", "noise", "judge", "embeddings"]
    judge = senders["judge"]
    assert judge.requests == 2 * (100 + 20)  # every pair, the noise floor's too, in both orders
    assert judge.prompt_tokens == 240 * (10 + 2 * 5 + 250) and judge.completion_tokens == 240 * 80
    assert (judge.limited_by, judge.duration_s) == ("rpm", pytest.approx(240 / 10))
    embeddings = senders["embeddings"]
    assert embeddings.requests == math.ceil(2 * 120 / 16) and embeddings.prompt_tokens == 2 * 120 * 5
    assert embeddings.cost_usd == pytest.approx(2 * 120 * 5 * 0.02 / 1e6)
