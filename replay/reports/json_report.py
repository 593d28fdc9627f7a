"""The JSON report: a documented, versioned schema (see README, "JSON report").

``schema_version`` changes only when a field changes meaning or disappears; new
fields may be added within a version.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from replay import __version__
from replay.privacy import report_fields
from replay.reports import register_renderer
from replay.gates import required_n
from replay.stats import Estimate

if TYPE_CHECKING:  # for the annotations only
    from replay.evaluate import Evaluation

SCHEMA_VERSION = 1


def _est(estimate: Estimate | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    return {"value": estimate.value, "ci": _ci(estimate), "n": estimate.n}


def _ci(estimate: Estimate) -> list[float | None]:
    """[low, high]; null for a bound that does not exist (a p99 of too few requests has none)."""
    return [_finite_or_none(estimate.low), _finite_or_none(estimate.high)]


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _metric(metric: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n": metric.n,
        "baseline": _est(metric.baseline),
        "candidate": _est(metric.candidate),
        "delta": _est(metric.delta),
        "delta_pct": _est(metric.delta_pct),
    }
    if metric.flips is not None:
        out["flips"] = {"pass_to_fail": metric.flips.to_fail, "fail_to_pass": metric.flips.to_pass,
                        "mcnemar_p": metric.flips.p_value}  # fmt: skip
    for key, extra in metric.extra.items():
        if isinstance(extra, Estimate):
            out[key] = _est(extra)
        elif isinstance(extra, dict):
            out[key] = {k: _est(v) if isinstance(v, Estimate) else v for k, v in extra.items()}
        else:
            out[key] = extra
    return out


def _gate(result: Any) -> dict[str, Any]:
    gate, metric = result.gate, result.metric
    return {
        "metric": gate.metric,
        "bound": gate.bound,
        "threshold": gate.threshold,
        "segment": gate.segment,
        "min_n": gate.min_n,
        "baseline": metric.baseline.value if metric is not None and metric.baseline else None,
        "candidate": metric.candidate.value if metric is not None else None,
        "delta": result.estimate.value if gate.on_delta else (metric.delta.value if metric and metric.delta else None),
        "ci": _ci(result.estimate),
        "n": result.n,
        "status": result.status,
        "note": result.note or None,
        "more_needed": result.more_needed,
        "min_n_required": max(required_n(gate), result.estimate.min_n),
        "fail_alpha": result.fail_alpha,
        "fail_ci": _ci(result.fail_estimate) if result.fail_estimate is not None else None,
        "critical_segments": [_gate(part) for part in result.segments],
    }


def report_data(evaluation: Evaluation, top: int = 20) -> dict[str, Any]:
    run = evaluation.run
    scenario = run.scenario
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "replay", "version": __version__},
        "run_id": run.id,
        "run": {
            "name": run.name, "status": run.status, "started_at": run.started_at, "ended_at": run.ended_at,
            "scenario_hash": run.scenario_hash, "logs": scenario.get("logs"), "sample": scenario.get("sample"),
            "baseline": evaluation.baseline_arm, "planned": run.planned,
            "candidate_model": (scenario.get("candidate") or {}).get("model"),
            "production_model": (scenario.get("production") or {}).get("model"),
            **_transforms(scenario),
        },
        "verdict": evaluation.decision.verdict,
        "compared": evaluation.decision.compared,
        "family_tests": evaluation.decision.tests,
        "exit_code": evaluation.decision.exit_code,
        "on_inconclusive": evaluation.decision.on_inconclusive,
        "pairs": evaluation.pairs,
        "gates": [_gate(result) for result in evaluation.decision.results],
        "metrics": {name: _metric(metric) for name, metric in evaluation.metrics.items()},
        "segments": {key: {value: {name: _metric(m) for name, m in metrics.items()} for value, metrics in values.items()}
                     for key, values in evaluation.segments.items()},  # fmt: skip
        "disagreements": [_disagreement(d, evaluation.judge is not None) for d in evaluation.disagreements[:top]],
        "human_review": None if evaluation.reviews is None else {**_est(evaluation.reviews), **evaluation.review_counts},  # type: ignore[dict-item]
        **_noise_and_drift(evaluation),
        **_embeddings(evaluation),
        **({"lossy": evaluation.lossy} if evaluation.lossy else {}),
        **({"tokens_estimated": evaluation.tokens_estimated} if evaluation.tokens_estimated else {}),
        **({"redaction": report_fields(scenario.get("redact"))} if scenario.get("redact") else {}),
        **({"judge": _judge(evaluation.judge)} if evaluation.judge is not None else {}),
        **({"sessions": _sessions(evaluation.sessions)} if evaluation.sessions is not None else {}),
        **({"mix": evaluation.mix} if evaluation.mix is not None else {}),
    }  # fmt: skip


def _sessions(sessions: Any) -> dict[str, Any]:
    """The ``sessions`` block (present when the run's records name conversations)."""
    return {
        "key": sessions.key, "mode": sessions.mode, "against": sessions.against, "count": sessions.count,
        "turns": sessions.turns, "answered_turns": sessions.answered_turns, "completed": sessions.completed,
        "diverged": sessions.diverged, "with_errors": sessions.with_errors,
        "tool_sequence_agreement": _est(sessions.agreement),
        "first_divergence": {str(turn): count for turn, count in sessions.first_divergence().items()},
        "sessions": [{"session": r.session, "turns": r.turns, "answered": r.answered, "diverged_at": r.diverged_at,
                      "reason": r.reason, "errors": r.errors, "request_ids": list(r.request_ids)}
                     for r in sessions.results],
    }  # fmt: skip


def _judge(judge: Any) -> dict[str, Any]:
    """The ``judge`` block (present when the run has a judge): the issue's fields first."""
    metric, extra = judge.metric, judge.metric.extra
    consistency = extra["position_consistency"]
    agreement = judge.agreement
    return {
        "model": judge.model, "judged": metric.n, "wins": extra["wins"], "ties": extra["ties"],
        "losses": extra["losses"], "errors": extra["errors"],
        "win_rate": {"value": metric.candidate.value, "ci": _ci(metric.candidate)},
        "position_consistency": consistency.value, "cost_usd": judge.cost_usd, "requests": judge.requests,
        "both_orders": judge.both_orders, "identical": judge.identical, "cached": judge.cached,
        "position_consistency_detail": _est(consistency), "first_position": _est(extra["first_position"]),
        "when_longer": _est(extra["when_longer"]), "when_shorter": _est(extra["when_shorter"]),
        "warnings": list(judge.warnings),
        "human_agreement": None if agreement is None else {
            "n": agreement.n, "share": _est(agreement.share), "kappa": _est(agreement.kappa),
            "categories": list(agreement.categories), "table": [list(row) for row in agreement.table]},
    }  # fmt: skip


def _transforms(scenario: dict[str, Any]) -> dict[str, Any]:
    """``candidate_transform`` and ``production_transform``, present only for an arm with a transform."""
    from replay.transforms import report_fields

    fields = {f"{arm}_transform": report_fields((scenario.get(arm) or {}).get("transform")) for arm in ("candidate", "production")}
    return {key: value for key, value in fields.items() if value is not None}


def _disagreement(d: Any, judged: bool = False) -> dict[str, Any]:
    out = {"request_id": d.request_id, "divergence": d.divergence, "reasons": list(d.reasons), "segment": d.segment}
    if d.beyond_noise is not None:
        out["beyond_noise"] = d.beyond_noise
    if judged:
        out["judge"], out["judge_reason"] = d.judge, d.judge_reason
    return out


def _noise_value(estimate: Estimate, n: int) -> dict[str, Any]:
    return {"value": _finite_or_none(estimate.value), "ci": _ci(estimate) if estimate.known else None, "n": n}


def _noise_and_drift(evaluation: Evaluation) -> dict[str, Any]:
    """``noise_floor`` and ``drift``, present when the run measured them."""
    out: dict[str, Any] = {}
    floor = evaluation.noise
    if floor is not None:
        out["noise_floor"] = {
            "n": floor.n, "against": "logged" if floor.against_logged else "production",
            "beyond_noise_divergence": floor.divergence_limit,
            "metrics": {**{name: _noise_value(m.candidate, m.n) for name, m in floor.metrics.items()},
                        **{name: _noise_value(m.extra[name], m.extra[name].n) for m in [floor.metrics.get("similarity")]
                           if m is not None and m.n for name in ("exact_match", "normalized_match")}},
        }  # fmt: skip
    drift = evaluation.drift
    if drift is not None:
        out["drift"] = {"arm": drift.arm, "pairs": drift.pairs, "changed": drift.changed,
                        "changed_share": drift.changed / drift.pairs,
                        "system_fingerprint": {"known": drift.fingerprint_known, "changed": drift.fingerprint_changed},
                        "model": {"known": drift.model_known, "changed": drift.model_changed}}  # fmt: skip
    return out


def _embeddings(evaluation: Evaluation) -> dict[str, Any]:
    """``embeddings`` {model, batch_size, embedded, missing}, for a run with an embeddings endpoint only."""
    configured = evaluation.run.scenario.get("embeddings")
    semantic = evaluation.metrics.get("semantic_similarity")
    if not configured or semantic is None:
        return {}
    return {"embeddings": {"model": configured["endpoint"]["model"], "batch_size": configured["batch_size"],
                           "embedded": semantic.n, "missing": semantic.extra.get("missing", 0)}}  # fmt: skip


@register_renderer("json", suffix=".json", option="--report-json", help="Write the JSON report here.", order=2)
def render_json(evaluation: Evaluation, top: int = 20) -> str:
    text = json.dumps(report_data(evaluation, top), indent=2, ensure_ascii=False, allow_nan=False, default=_finite)
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


_UNPRINTABLE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")
"""Characters json.dumps leaves raw with ``ensure_ascii=False`` that a terminal acts on (DEL,
C1 controls such as CSI) or that reorder what a reader sees (bidi controls); they can only
occur inside JSON strings, where ``\\uXXXX`` is the same character."""


def _finite(value: Any) -> Any:
    return str(value)
