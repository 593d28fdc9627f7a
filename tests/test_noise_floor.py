"""The noise floor (production against itself), gates over it, and the drift ledger."""

import os
import random

import numpy as np
import pytest
from click.testing import CliRunner
from statsmodels.stats.proportion import confint_proportions_2indep

from conftest import NO_GATES, record, write_log
from replay.cli import cli
from replay.evaluate import evaluate
from replay.gates import FAIL, INCONCLUSIVE, PASS, Gate, evaluate_gate, parse_gates
from replay.metrics import MetricValue
from replay.stats import bounded_mean, independent_difference, wilson
from replay.store import Store
from replay.types import Completion, LogRecord, Outcome, Usage
from stored_runs import scenario_snapshot

# --- the interval of a difference over the floor -----------------------------------------


def test_two_wilson_intervals_combine_into_newcombes_published_interval():
    """Newcombe (1998), Stat Med 17:873, Table II example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339."""
    estimate = independent_difference(wilson(56, 70), wilson(48, 80))
    assert (round(estimate.low, 4), round(estimate.high, 4)) == (0.0524, 0.3339)


@pytest.mark.parametrize("n1,n2", [(10, 15), (50, 30), (200, 120)])
def test_two_wilson_intervals_combine_as_statsmodels_newcombe(n1, n2):
    for k1 in range(0, n1 + 1, max(1, n1 // 10)):
        for k2 in range(0, n2 + 1, max(1, n2 // 10)):
            estimate = independent_difference(wilson(k1, n1), wilson(k2, n2))
            low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb")
            assert estimate.low == pytest.approx(low, abs=1e-9) and estimate.high == pytest.approx(high, abs=1e-9)


def test_the_difference_widens_at_stricter_levels_for_holm():
    estimate = independent_difference(wilson(56, 70), wilson(48, 80))
    strict = estimate.at(0.99)
    assert strict.low < estimate.low and strict.high > estimate.high and strict.value == estimate.value


def clipped_mean(mean, sd):
    """E[min(X, 1)] for X ~ N(mean, sd) (the clip at 0 is 10 standard deviations away)."""
    from statistics import NormalDist

    unit = NormalDist()
    return mean - ((mean - 1) * unit.cdf((mean - 1) / sd) + sd * unit.pdf((1 - mean) / sd))


@pytest.mark.parametrize("model", ["independent", "overlapping"])
@pytest.mark.parametrize("n, m", [(300, 120), (60, 30)])
def test_a_similarity_exactly_at_the_margin_over_noise_passes_falsely_at_most_at_the_nominal_rate(model, n, m):
    """Truth exactly at the margin: the candidate's mean similarity is the floor's minus the
    difference of the two clipped means. Two data models: the floor measured on other
    requests (independent) and on some of the same requests, hard requests being hard for
    both (positively correlated: the interval is wider than needed, the rate lower still);
    a small and a large sample."""
    rng = np.random.default_rng(n * 10 + (model == "overlapping"))
    spread = (0.08**2 + 0.08**2) ** 0.5
    gate = Gate("similarity", "min_over_noise", clipped_mean(0.80, spread) - clipped_mean(0.85, spread))
    runs, passed = 400, 0
    for _ in range(runs):
        difficulty = rng.normal(0, 0.08, n)
        candidate = np.clip(0.80 + difficulty + rng.normal(0, 0.08, n), 0, 1)
        noise_part = difficulty[:m] if model == "overlapping" else rng.normal(0, 0.08, m)
        noise = np.clip(0.85 + noise_part + rng.normal(0, 0.08, m), 0, 1)
        candidate_value = MetricValue("similarity", n, bounded_mean(candidate))
        noise_value = MetricValue("similarity", m, bounded_mean(noise))
        passed += evaluate_gate(gate, candidate_value, noise_value).status == PASS
    assert passed / runs <= 0.025 + 2 * (0.025 * 0.975 / runs) ** 0.5  # nominal plus two standard errors


def test_a_gate_over_noise_needs_a_pairwise_metric_and_a_floor():
    def fail(key, message):
        return ValueError(f"{key}: {message}")

    with pytest.raises(ValueError, match=r"gates\[0\]\.min_over_noise: error_rate is measured on each arm"):
        parse_gates([{"metric": "error_rate", "min_over_noise": 0}], fail)
    (gate,) = parse_gates([{"metric": "similarity", "min_over_noise": -0.02}], fail)
    result = evaluate_gate(gate, MetricValue("similarity", 100, bounded_mean(np.full(100, 0.9))))
    assert result.status == INCONCLUSIVE and result.note == "no noise floor measured (set noise_floor: {sample: N})"
    assert gate.describe() == "over noise >= -0.02"


# --- a stored run with a noise floor ----------------------------------------------------------

PHRASES = ("Your parcel ships on Monday.", "The parcel will ship Monday.", "It ships Monday, thanks for waiting!",
           "Expect the parcel to leave on Monday.")  # fmt: skip


def answer(request_id, arm, text, fingerprint="fp_a", model="gpt-4o-2024-08-06"):
    completion = Completion(text, finish_reason="stop", usage=Usage(20, 8), model=model, system_fingerprint=fingerprint,
                            latency_ms=500.0, ttft_ms=100.0)  # fmt: skip
    return Outcome(request_id, arm, "ok", completion, (), {}, 200, cost_usd=0.001)


def noisy_run(path, n=300, noise=150, candidate_phrases=PHRASES, baseline="logged"):
    """Production answers each request with one of four phrasings at random, the second time
    too; the candidate does the same (or sticks to ``candidate_phrases``)."""
    rng = random.Random(5)
    snapshot = scenario_snapshot(noise_floor={"sample": noise}, baseline=baseline,
                                 production={"base_url": "http://127.0.0.1:9/v1", "model": "prod"})
    store = Store(str(path))
    store.create_run("noisy", "noisy", snapshot, "h")
    cases, outcomes = [], []
    for i in range(n):
        rid = f"req-{i:03d}"
        cases.append((i, LogRecord(rid, {"model": "gpt-4o", "messages": [{"role": "user", "content": f"q{i}"}]},
                                   metadata={"category": "shipping" if i % 2 else "billing"})))  # fmt: skip
        base = "production" if baseline == "fresh" else "logged"
        outcomes.append(answer(rid, base, rng.choice(PHRASES)))
        if baseline == "fresh":
            outcomes.append(answer(rid, "logged", rng.choice(PHRASES), fingerprint="fp_old" if i % 3 else "fp_a"))
        outcomes.append(answer(rid, "candidate", rng.choice(candidate_phrases)))
        if i < noise:
            outcomes.append(answer(rid, "noise", rng.choice(PHRASES), fingerprint="fp_b" if i % 4 == 0 else "fp_a"))
    store.add_cases("noisy", cases)
    store.add_outcomes("noisy", outcomes)
    return store


SIMILARITY_GATES = [{"metric": "similarity", "min": 0.9}, {"metric": "similarity", "min_over_noise": -0.05}]


def test_pure_production_noise_fails_an_absolute_gate_but_passes_the_same_gate_over_the_floor(tmp_path):
    evaluation = evaluate(noisy_run(tmp_path / "s.db"), "noisy", gates_override=SIMILARITY_GATES)
    absolute, over_noise = evaluation.decision.results
    assert absolute.status == FAIL  # paraphrases are far from 0.9 similar, on production as on the candidate
    assert over_noise.status == PASS and over_noise.n == 150
    assert evaluation.noise.n == 150 and evaluation.noise.against_logged
    floor = evaluation.noise.metrics["similarity"].candidate.value
    assert abs(evaluation.metrics["similarity"].candidate.value - floor) < 0.05


OFF_TOPIC = "Unfortunately our systems are down for maintenance; please write to support@example.com later."


def test_a_candidate_that_differs_more_than_production_fails_over_the_floor(tmp_path):
    store = noisy_run(tmp_path / "s.db", candidate_phrases=(*PHRASES, OFF_TOPIC, OFF_TOPIC, OFF_TOPIC, OFF_TOPIC))
    evaluation = evaluate(store, "noisy", gates_override=SIMILARITY_GATES[1:], top=300)
    assert evaluation.decision.results[0].status == FAIL
    texts = {row["request_id"]: row["text"] for row in store.results("noisy") if row["arm"] == "candidate"}
    marks = {texts[d.request_id] == OFF_TOPIC: set() for d in evaluation.disagreements}
    for d in evaluation.disagreements:
        marks[texts[d.request_id] == OFF_TOPIC].add(d.beyond_noise)
    assert marks == {True: {True}, False: {False}}  # off-topic answers only: paraphrases are what production does too


def test_the_drift_ledger_counts_fresh_answers_unlike_the_logged_ones(tmp_path):
    evaluation = evaluate(noisy_run(tmp_path / "s.db", baseline="fresh"), "noisy", gates_override=[])
    drift = evaluation.drift
    assert drift.arm == "production" and drift.pairs == 300
    assert drift.fingerprint_known == 300 and drift.fingerprint_changed == sum(1 for i in range(300) if i % 3)
    assert drift.model_changed == 0 and 0 < drift.changed < 300  # the same phrasing a quarter of the time
    logged = evaluate(noisy_run(tmp_path / "l.db"), "noisy", gates_override=[])
    assert logged.drift.arm == "noise" and logged.drift.pairs == 150
    assert logged.drift.fingerprint_changed == sum(1 for i in range(150) if i % 4 == 0)


def test_a_noise_floor_without_production_is_refused_naming_the_key(tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("r1")])
    result = CliRunner().invoke(cli, ["run", "--logs", log, "--candidate-url", "http://127.0.0.1:9/v1", "--candidate-model",
                                      "c", "--noise-floor", "5", "--store", store_path, "--gates", NO_GATES])  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == "Error: <flags>: noise_floor: needs a 'production' endpoint to ask a second time"


def test_replay_run_with_a_noise_floor_compares_production_with_itself(scripted, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q {i}") for i in range(12)])
    scenario = tmp_path / "s.yaml"
    endpoint = f"{{base_url: '{scripted.base_url}', model: MODEL, provider: scripted}}"
    scenario.write_text(f"name: s\nlogs: {log}\ncandidate: {endpoint.replace('MODEL', 'c')}\n"
                        f"production: {endpoint.replace('MODEL', 'p')}\nnoise_floor: {{sample: 4}}\n")  # fmt: skip
    result = CliRunner().invoke(cli, ["run", str(scenario), "--store", store_path, "--quiet", "--gates", NO_GATES],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    store = Store(store_path)
    run = store.get_run("latest")
    assert store.counts(run.id)["noise"] == {"ok": 4} and len(list(store.comparisons(run.id, kind="noise"))) == 4
    evaluation = evaluate(store, run.id)
    assert evaluation.noise.n == 4 and evaluation.noise.metrics["similarity"].candidate.value == pytest.approx(1.0)
    assert os.path.getsize(store_path) > 0


def test_the_disagreement_queue_says_which_pairs_are_beyond_noise(tmp_path):
    import json

    store = noisy_run(tmp_path / "s.db", candidate_phrases=(*PHRASES, OFF_TOPIC))
    texts = {row["request_id"]: row["text"] for row in store.results("noisy") if row["arm"] == "candidate"}
    result = CliRunner().invoke(cli, ["disagreements", "noisy", "--store", str(tmp_path / "s.db"), "--top", "300",
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(row["beyond_noise"] == (texts[row["request_id"]] == OFF_TOPIC) for row in rows)
    table = CliRunner().invoke(cli, ["disagreements", "noisy", "--store", str(tmp_path / "s.db"), "--top", "2"])
    assert "Beyond noise" in table.stdout.splitlines()[1] and table.stdout.splitlines()[3].rstrip().endswith("yes")


def test_exact_and_normalised_match_are_reported_for_production_against_itself(tmp_path):
    import json as json_module

    from replay.reports import render

    evaluation = evaluate(noisy_run(tmp_path / "s.db"), "noisy", gates_override=[])
    block = json_module.loads(render("json", evaluation))["noise_floor"]["metrics"]
    noise_similarity = evaluation.noise.metrics["similarity"]
    assert block["exact_match"]["n"] == 150 and block["exact_match"]["value"] == noise_similarity.extra["exact_match"].value
    assert 0.1 < block["exact_match"]["value"] < 0.5  # one phrasing in four, drawn twice
    markdown = render("markdown", evaluation)
    assert "| exact_match |" in markdown and "| normalized_match |" in markdown
