"""The judge stage against deterministic judge servers on 127.0.0.1 (tests/judge_server.py),
over stored runs (tests/stored_runs.py): position bias exposed by both orders, a biased judge
whatever the order, verdicts cached and never paid twice, invalid answers counted as errors."""

from __future__ import annotations

import pytest

from judge_server import always_a, fenced_candidate, judge_server, prefers_candidate, rambling
from replay.evaluate import evaluate
from replay.stages.judge import judge_stored
from replay.store import Store
from replay.types import LogRecord
from stored_runs import CATEGORIES, outcome, scenario_snapshot

RUN = "judged-run"


def judged_run(path, base_url, n=60, identical=0, **judge_keys):
    """A run of ``n`` pairs whose candidate answers say CAND and baseline answers BASE; the
    first ``identical`` pairs have the same answer on both sides."""
    judge = {"base_url": base_url, "model": "judge-model", **judge_keys}
    store = Store(str(path))
    store.create_run(RUN, "judged", scenario_snapshot(judge=judge, segment_by="category", gates=[
        {"metric": "judge_win_rate", "min": 0.45}]), "h")  # fmt: skip
    store.db.execute("UPDATE runs SET status = 'completed', planned = ? WHERE id = ?", (n, RUN))
    cases, outcomes = [], []
    for i in range(n):
        rid = f"req-{i:03d}"
        request = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"Question {i}"}]}
        cases.append((i, LogRecord(rid, request, metadata={"category": CATEGORIES[i % 3]})))
        same = i < identical
        outcomes.append(outcome(rid, "logged", f"Answer {i}." if same else f"BASE answer {i}", 500))
        outcomes.append(outcome(rid, "candidate", f"answer {i}" if same else f"CAND answer {i}, longer" * (1 + i % 2), 400))
    store.add_cases(RUN, cases)
    store.add_outcomes(RUN, outcomes)
    return store


def judge_metric(store):
    return evaluate(store, RUN).metrics["judge_win_rate"]


def test_a_judge_that_always_answers_a_is_exposed_by_both_orders(tmp_path):
    with judge_server(always_a) as server:
        store = judged_run(tmp_path / "s.db", server.base_url)
        judged = judge_stored(store, RUN)
    assert (judged.calls, judged.errors, server.stats.requests) == (120, 0, 120)
    metric = judge_metric(store)
    extra = metric.extra
    assert (metric.n, extra["wins"], extra["ties"], extra["losses"]) == (60, 0, 60, 0)  # every verdict flipped
    assert extra["position_consistency"].value == 0.0 and extra["position_consistency"].n == 60
    assert extra["first_position"].value == 1.0 and extra["first_position"].n == 120
    assert metric.candidate.value == 0.5
    report = evaluate(store, RUN).judge
    assert any("verdicts are mostly noise" in warning for warning in report.warnings)
    assert any("prefers the answer shown first" in warning for warning in report.warnings)


def test_a_position_biased_judge_in_one_order_only_is_not_a_verdict_about_the_answers(tmp_path):
    """Without both orders, the always-A judge's verdicts follow the drawn order: about half wins."""
    with judge_server(always_a) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, n=200, both_orders=False)
        judge_stored(store, RUN)
    metric = judge_metric(store)
    assert server.stats.requests == 200
    assert metric.extra["ties"] == 0 and 80 <= metric.extra["wins"] <= 120  # the order is drawn per pair, balanced
    assert metric.extra["position_consistency"].n == 0


@pytest.mark.parametrize("respond", [prefers_candidate, fenced_candidate])
@pytest.mark.parametrize("both_orders", [True, False])
def test_a_judge_preferring_the_candidate_gives_a_win_rate_near_1_whatever_the_order(tmp_path, respond, both_orders):
    with judge_server(respond) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, both_orders=both_orders)
        judge_stored(store, RUN)
    evaluation = evaluate(store, RUN)
    metric = evaluation.metrics["judge_win_rate"]
    assert (metric.n, metric.extra["wins"], metric.candidate.value) == (60, 60, 1.0)
    assert metric.candidate.low > 0.9
    assert [(r.gate.metric, r.status) for r in evaluation.decision.results] == [("judge_win_rate", "PASS")]
    for segment in evaluation.segments["category"].values():
        assert segment["judge_win_rate"].n == 20 and segment["judge_win_rate"].candidate.value == 1.0


def test_identical_answers_are_ties_without_a_call(tmp_path):
    with judge_server(prefers_candidate) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, n=20, identical=5)
        judge_stored(store, RUN)
    assert server.stats.requests == 30  # 15 differing pairs, in both orders
    report = evaluate(store, RUN).judge
    assert (report.identical, report.metric.extra["ties"], report.metric.extra["wins"]) == (5, 5, 15)
    assert report.metric.candidate.value == pytest.approx(17.5 / 20)


def test_no_judge_call_is_repeated_by_a_second_judging_a_report_or_a_gate(tmp_path):
    with judge_server(prefers_candidate) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, n=10)
        assert judge_stored(store, RUN).calls == 20
        assert judge_stored(store, RUN).calls == 0
        evaluate(store, RUN)
        evaluate(store, RUN, gates_override=[{"metric": "judge_win_rate", "min": 0.55}])
    assert server.stats.requests == 20


def test_a_rerun_with_the_same_answers_reuses_the_stored_verdicts(tmp_path):
    with judge_server(prefers_candidate) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, n=10)
        judge_stored(store, RUN)
        store.db.execute("UPDATE runs SET id = 'first' WHERE id = ?", (RUN,))
        for table in ("cases", "results", "judge_pairs"):
            store.db.execute(f"UPDATE {table} SET run_id = 'first' WHERE run_id = ?", (RUN,))
        judged_run(tmp_path / "s.db", server.base_url, n=10)  # the same scenario and answers, a new run
        assert judge_stored(store, RUN).calls == 0
    assert server.stats.requests == 20
    report = evaluate(store, RUN).judge
    assert (report.requests, report.cached, report.metric.n) == (0, 20, 10)


def test_an_answer_that_is_not_the_json_asked_for_is_retried_then_a_judge_error(tmp_path):
    with judge_server(rambling) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, n=4)
        judged = judge_stored(store, RUN)
    assert (judged.calls, judged.errors, server.stats.requests) == (16, 8, 16)  # 4 pairs x 2 orders x 2 tries
    metric = judge_metric(store)
    assert (metric.n, metric.extra["errors"]) == (0, 4)
    assert store.judged_ids(RUN) == set()  # judged again next time


def test_judge_errors_are_judged_again_once_the_judge_answers(tmp_path):
    with judge_server(rambling) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, n=4)
        judge_stored(store, RUN)
        server.config.respond = prefers_candidate
        assert judge_stored(store, RUN).calls == 8
    assert judge_metric(store).extra["wins"] == 4


def test_the_order_is_drawn_per_pair_and_balanced(tmp_path):
    with judge_server(prefers_candidate) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, n=400, both_orders=False)
        judge_stored(store, RUN)
    firsts = [first for _, _, first, *_ in store.judgements(RUN)]
    assert len(firsts) == 400 and 160 <= sum(firsts) <= 240  # binomial(400, 1/2): 5 sigma either side
    again = tmp_path / "again.db"
    with judge_server(prefers_candidate) as server:
        judge_stored(judged_run(again, server.base_url, n=400, both_orders=False), RUN)
    assert [row[2] for row in Store(str(again)).judgements(RUN)] == firsts  # the same seed draws the same


def test_a_sample_judges_about_that_many_pairs_from_every_segment(tmp_path):
    with judge_server(prefers_candidate) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, n=300, sample=60)
        judge_stored(store, RUN)
    evaluation = evaluate(store, RUN)
    assert 35 <= evaluation.metrics["judge_win_rate"].n <= 60
    assert all(seg["judge_win_rate"].n >= 5 for seg in evaluation.segments["category"].values())


def test_the_reason_is_scrubbed_of_secrets_before_it_is_stored(tmp_path):
    key = "sk-proj-" + "a1" * 12

    def leaky(body):
        return prefers_candidate(body).replace("CAND is better", f"as the key {key} says")

    with judge_server(leaky) as server:
        store = judged_run(tmp_path / "s.db", server.base_url, n=2)
        judge_stored(store, RUN)
    reasons = [row[4] for row in store.judgements(RUN)]
    assert reasons and all("[REDACTED]" in reason and key not in reason for reason in reasons)
    assert all(key.encode() not in path.read_bytes() for path in tmp_path.iterdir())  # the store and its WAL


def test_a_judge_of_the_candidates_family_is_warned_about_in_the_report(tmp_path):
    with judge_server(prefers_candidate) as server:
        store = Store(str(tmp_path / "s.db"))
        snapshot = scenario_snapshot(judge={"base_url": server.base_url, "model": "cand-large"})
        store.create_run(RUN, "judged", snapshot, "h")
    report = evaluate(store, RUN).judge
    assert report.warnings == ("the judge (cand-large) is of the same family as the candidate (cand-mini): judges favour"
                               " answers of their own family; a judge from another vendor is more trustworthy",)  # fmt: skip


def test_judge_human_agreement_counts_each_review_against_the_judges_verdict(tmp_path):
    from stored_runs import judged_golden_run

    store = judged_golden_run(tmp_path / "g.db")
    store.add_reviews([("judged-run", "x1", "req-025", "bob", "baseline", None),  # the judge said candidate
                       ("judged-run", "x2", "req-005", "bob", "candidate", None)])  # a judge error: left out  # fmt: skip
    agreement = evaluate(store, "judged-run").judge.agreement
    humans = {rid: verdict for rid, _, verdict in store.reviews("judged-run")}
    assert agreement.n == len(humans) - 1 == 9
    assert agreement.table[0][1] == 1  # judge candidate, human baseline
    assert agreement.share.value == pytest.approx(8 / 9)
    assert agreement.kappa.value < 1
