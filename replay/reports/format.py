"""Number formatting shared by the renderers, by metric unit."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from replay.gates import Gate, GateResult
from replay.metrics import METRICS, MetricValue
from replay.reports.escape import clip
from replay.stats import Estimate

if TYPE_CHECKING:  # for the annotations only
    from replay.evaluate import Evaluation


def value(unit: str, x: float | None) -> str:
    if x is None:
        return "—"
    if unit == "rate":
        return f"{x * 100:.1f}%"
    if unit == "ms":
        return f"{x:,.0f} ms"
    if unit == "usd":
        return f"${x:.5f}" if abs(x) < 0.1 else f"${x:,.2f}"
    if unit == "tokens":
        return f"{x:,.1f}"
    return f"{x:.3f}"


def delta(unit: str, x: float | None, pct: bool = False) -> str:
    if x is None:
        return "—"
    suffix = "%" if pct else {"rate": " pt", "ms": " ms"}.get(unit, "")
    return bare(unit, x, True, pct) + suffix


def interval(unit: str, estimate: Estimate | None, signed: bool, pct: bool = False) -> str:
    """``[low, high]`` in the unit of the value beside it, the unit itself left out
    (points for rate deltas, percent for relative deltas) so that columns stay narrow."""
    if estimate is None or estimate.low is None or estimate.high is None:
        return "—"
    return f"[{bare(unit, estimate.low, signed, pct)}, {bare(unit, estimate.high, signed, pct)}]"


def bare(unit: str, x: float, signed: bool, pct: bool = False) -> str:
    if math.isinf(x):  # a bound that does not exist: too few requests beyond a percentile
        return "∞" if x > 0 else "−∞"
    sign = "+" if signed else ""
    if pct:
        return f"{x:{sign}.1f}"
    if unit == "rate":
        return f"{x * 100:{sign}.1f}" + ("" if signed else "%")
    if unit == "ms":
        return f"{x:{sign},.0f}"
    if unit == "usd":
        return f"{x:{sign}.5f}"
    if unit == "tokens":
        return f"{x:{sign},.1f}"
    return f"{x:{sign}.3f}"


def threshold(gate: Gate) -> str:
    unit = METRICS[gate.metric].unit
    sign = "≤" if gate.upper else "≥"
    if gate.bound.endswith("_pct"):
        return f"Δ {sign} {gate.threshold:+g}%"
    if gate.on_delta:
        return f"Δ {sign} {delta(unit, gate.threshold)}"
    return f"{sign} {value(unit, gate.threshold)}"


def gate_name(gate: Gate) -> str:
    return gate.metric + (f" [{gate.segment}]" if gate.segment else "")


def gate_cells(result: GateResult) -> dict[str, str]:
    """The gate table's cells for one gate, as text."""
    gate = result.gate
    unit = METRICS[gate.metric].unit
    metric: MetricValue | None = result.metric
    pct = gate.bound.endswith("_pct")
    base = metric.baseline.value if metric and metric.baseline else None
    cand = metric.candidate.value if metric else None
    if gate.on_delta:
        shown = result.estimate.value
        delta_text = delta(unit, shown, pct)
        ci = interval(unit, result.estimate, signed=True, pct=pct)
    else:
        delta_text = delta(unit, metric.delta.value if metric and metric.delta else None)
        ci = interval(unit, result.estimate, signed=False)
    return {
        "gate": gate_name(gate),
        "label": f"{gate_name(gate)}\n{value(unit, base)} → {value(unit, cand)}",
        "baseline": value(unit, base),
        "candidate": value(unit, cand),
        "delta": delta_text,
        "ci": ci,
        "threshold": threshold(gate),
        "n": f"{result.n:,}",
        "status": result.status,
    }


def metric_cells(name: str, metric: MetricValue) -> dict[str, str]:
    unit = METRICS[name].unit
    return {
        "metric": name,
        "n": f"{metric.n:,}",
        "baseline": value(unit, metric.baseline.value) if metric.baseline else "—",
        "candidate": value(unit, metric.candidate.value),
        "delta": delta(unit, metric.delta.value) if metric.delta else "—",
        "ci": interval(unit, metric.delta, signed=True) if metric.delta else interval(unit, metric.candidate, False),
    }


def header_items(evaluation: Evaluation) -> list[tuple[str, str]]:
    run = evaluation.run
    scenario = run.scenario
    sample = scenario.get("sample") or {}
    candidate = _arm_text(scenario.get("candidate") or {})
    if evaluation.baseline_arm == "production":
        baseline = f"fresh: {_arm_text(scenario.get('production') or {})}"
    else:
        baseline = "logged production answers"
    return [
        ("Run", f"{run.id} ({run.name}, {run.status})"),
        ("Logs", ", ".join(scenario.get("logs") or [])),
        ("Sample", sample_text(sample)),
        ("Pairs", f"{evaluation.pairs:,} compared of {run.planned or 0:,} sampled"),
        ("Candidate", candidate),
        ("Baseline", baseline),
        *privacy_items(scenario),
    ]


def privacy_items(scenario: dict[str, Any]) -> list[tuple[str, str]]:
    """A ``Privacy`` row for a run that redacted (what, and that the comparisons ran on redacted text)."""
    from replay.privacy import describe

    redaction = scenario.get("redact")
    return [("Privacy", describe(redaction))] if redaction else []


def _arm_text(arm: dict[str, object]) -> str:
    """The arm's model, and its transform if it has one (``gpt-4o-mini, system prompt from p.txt (sha256 1a2b3c4d)``)."""
    from replay.transforms import describe

    transform = describe(arm.get("transform"))  # type: ignore[arg-type]
    return f"{arm.get('model', '?')}, {transform}" if transform else str(arm.get("model", "?"))


def verdict_line(evaluation: Evaluation) -> str:
    decision = evaluation.decision
    counts = {status: sum(1 for r in decision.results if r.status == status)
              for status in ("PASS", "FAIL", "INCONCLUSIVE", "SKIPPED")}  # fmt: skip
    parts = [f"{n} {status.lower()}" for status, n in counts.items() if n]
    text = f"{decision.verdict} ({', '.join(parts) or 'no gates'})"
    if decision.compared == 0:
        text += "; no pair was answered on both arms, so the run fails whatever on_inconclusive says"
    elif decision.verdict == "INCONCLUSIVE":
        text += f"; on_inconclusive: {decision.on_inconclusive}"
    return text


def gate_notes(evaluation: Evaluation) -> list[str]:
    notes = []
    for result in evaluation.decision.results:
        if result.note and result.status != "PASS":
            notes.append(f"{gate_name(result.gate)}: {result.status.lower()}, {result.note}")
    return notes


SHORT_NAMES = {
    "error_rate": "errors Δ", "format_compliance": "format Δ", "similarity": "similarity",
    "latency_p95_ms": "p95 Δ", "refusal_rate": "refusals Δ", "semantic_similarity": "semantic",
}  # fmt: skip
SEGMENT_METRICS = ("error_rate", "format_compliance", "similarity", "latency_p95_ms")
"""The columns of a segment table; ``semantic_similarity`` joins them for a run with embeddings."""


def segment_columns(evaluation: Evaluation) -> tuple[str, ...]:
    return SEGMENT_METRICS + tuple(name for name in ("semantic_similarity",) if name in evaluation.metrics)


def semantic_line(evaluation: Evaluation, semantic: MetricValue) -> str:
    """The mean and 10th percentile of the cosines, with intervals, the model, and the pairs left out."""
    model = ((evaluation.run.scenario.get("embeddings") or {}).get("endpoint") or {}).get("model", "?")
    missing = semantic.extra.get("missing", 0)
    left_out = f"; {missing:,} pair(s) not embedded yet" if missing else ""
    if not semantic.n:
        return f"Semantic similarity ({model}): no pair embedded{left_out}"
    p10 = semantic.extra["p10"]
    return (f"Semantic similarity ({model}): mean {value('score', semantic.candidate.value)} "
            f"{interval('score', semantic.candidate, False)}, p10 {value('score', p10.value)} "
            f"{interval('score', p10, False)} over {semantic.n:,} pairs{left_out}")  # fmt: skip


def segment_cell(name: str, metric: MetricValue) -> str:
    unit = METRICS[name].unit
    if metric.n == 0:
        return "—"
    if metric.delta is not None:
        return delta(unit, metric.delta.value)
    return value(unit, metric.candidate.value)


def summary_lines(evaluation: Evaluation, quote: Callable[[str], str] = str) -> list[str]:
    """One-line summaries under the metrics; ``quote`` escapes the text that comes from the data."""
    lines = []
    cost = evaluation.metrics.get("cost_per_request_usd")
    if cost and cost.n:
        per_1k = cost.extra.get("per_1000_requests", {})
        pct = f" ({cost.delta_pct.value:+.1f}%)" if cost.delta_pct and cost.delta_pct.value is not None else ""
        lines.append(
            f"Cost: {value('usd', cost.extra['total_candidate'])} candidate vs "
            f"{value('usd', cost.extra['total_baseline'])} baseline over {cost.n:,} pairs{pct}"
        )
        lines.append(
            f"Cost per 1,000 requests: {value('usd', per_1k.get('candidate'))} candidate vs "
            f"{value('usd', per_1k.get('baseline'))} baseline"
        )
    similarity = evaluation.metrics.get("similarity")
    if similarity and similarity.n:
        p10 = similarity.extra["p10"].value
        exact = similarity.extra["exact_match"].value
        norm = similarity.extra["normalized_match"].value
        lines.append(f"Similarity: mean {value('score', similarity.candidate.value)}, p10 {value('score', p10)}; "
                     f"exact match {value('rate', exact)}, normalised {value('rate', norm)}")  # fmt: skip
    semantic = evaluation.metrics.get("semantic_similarity")
    if semantic is not None:
        lines.append(semantic_line(evaluation, semantic))
    for name in ("error_rate", "format_compliance", "schema_validity", "refusal_rate", "policy_pass_rate"):
        metric = evaluation.metrics.get(name)
        if metric and metric.flips and (metric.flips.to_fail or metric.flips.to_pass):
            flips = metric.flips
            lines.append(f"{name}: {flips.to_fail} pass→fail, {flips.to_pass} fail→pass (McNemar p = {flips.p_value:.3g})")
    fields = evaluation.metrics.get("key_field_accuracy")
    if fields and fields.n:
        worst = sorted(fields.extra["fields"].items(), key=lambda kv: kv[1].value if kv[1].value is not None else 1)[:3]
        lines.append("Key fields: " + ", ".join(f"{quote(path)} {value('rate', est.value)}" for path, est in worst))
    return lines + lossy_lines(evaluation, quote) + estimated_lines(evaluation)


def estimated_lines(evaluation: Evaluation) -> list[str]:
    """Per arm whose endpoint sent no usage for some answers: how many, and what that means."""
    lines = []
    for arm, n in evaluation.tokens_estimated.items():
        answered = evaluation.counts.get(arm, {}).get("ok", n)
        lines.append(f"Tokens estimated for {arm}: {n:,} of {answered:,} answers had no usage (counted locally)")
    return lines


def review_line(evaluation: Evaluation) -> str:
    est = evaluation.reviews
    counts = evaluation.review_counts
    assert est is not None
    return (f"Human review: candidate win rate {value('rate', est.value)} {interval('rate', est, False)} "
            f"(n={est.n}: {counts.get('candidate', 0)} candidate, {counts.get('baseline', 0)} baseline, "
            f"{counts.get('tie', 0)} ties)")  # fmt: skip


def noise_rows(evaluation: Evaluation) -> list[dict[str, str]]:
    """The pairwise metrics side by side: candidate against baseline, production against itself,
    and the difference with its interval (both samples' uncertainty in it)."""
    from replay.stats import independent_difference

    floor = evaluation.noise
    if floor is None:
        return []
    rows = []
    for name, (candidate, noise, unit) in noise_pairs(evaluation).items():
        over = independent_difference(candidate, noise)
        rows.append({
            "metric": name, "candidate": value(unit, candidate.value), "noise": value(unit, noise.value),
            "n": f"{noise.n:,}", "over": delta(unit, over.value) if over.known else "—",
            "ci": interval(unit, over, signed=True) if over.known else "—",
        })  # fmt: skip
    return rows


def noise_pairs(evaluation: Evaluation) -> dict[str, tuple[Estimate, Estimate, str]]:
    """Each pairwise measure production's own pairs have: (candidate's, production's, unit);
    exact and normalised match (which the similarity metric carries) included."""
    floor = evaluation.noise
    out: dict[str, tuple[Estimate, Estimate, str]] = {}
    if floor is None:
        return out
    for name, noise in floor.metrics.items():
        if not noise.n:
            continue
        candidate = evaluation.metrics[name]
        out[name] = (candidate.candidate, noise.candidate, METRICS[name].unit)
        if name == "similarity":
            for extra in ("exact_match", "normalized_match"):
                out[extra] = (candidate.extra[extra], noise.extra[extra], "rate")
    return out


def noise_title(evaluation: Evaluation) -> str:
    floor = evaluation.noise
    assert floor is not None
    against = "a fresh production answer vs the logged one (includes drift since the log)" if floor.against_logged \
        else "production vs production"  # fmt: skip
    return f"Noise floor ({against}, n={floor.n:,})"


def lossy_lines(evaluation: Evaluation, quote: Callable[[str], str] = str) -> list[str]:
    """What adapting the logged requests to an arm's API lost: "seed dropped on 400 requests:
    Anthropic has none", one line per step and arm."""
    lines = []
    for arm, notes in evaluation.lossy.items():
        for note, n in notes.items():
            what, _, why = note.partition(": ")
            lines.append(f"Adapted for {arm}: {quote(what)} on {n:,} request{'s' if n != 1 else ''}" + (f": {quote(why)}" if why else ""))
    return lines


def drift_line(evaluation: Evaluation) -> str | None:
    """How often production's fresh answers differ from the logged ones, and whether its
    fingerprint or model changed: provider-side drift, not the candidate's doing."""
    drift = evaluation.drift
    if drift is None:
        return None
    parts = [f"{value('rate', drift.changed / drift.pairs)} of {drift.pairs:,} fresh production answers differ from the logged ones"]
    if drift.fingerprint_known:
        parts.append(f"system_fingerprint changed on {drift.fingerprint_changed:,} of {drift.fingerprint_known:,}")
    if drift.model_known:
        parts.append(f"model changed on {drift.model_changed:,} of {drift.model_known:,}")
    return "Drift: " + "; ".join(parts)


def judge_lines(evaluation: Evaluation, quote: Callable[[str], str] = str) -> list[str]:
    """The judge's figures in sentences: its verdicts, how far to trust them, what it cost."""
    judge = evaluation.judge
    if judge is None:
        return []
    metric = judge.metric
    extra = metric.extra
    orders = "both orders" if judge.both_orders else "one order per pair"
    win = metric.candidate
    rate = f"{value('rate', win.value)} {interval('rate', win, False)}" if win.known else "—"
    lines = [f"Judge {quote(judge.model)} ({orders}): candidate win rate {rate} over {metric.n:,} pairs:"
             f" {extra['wins']:,} wins, {extra['ties']:,} ties, {extra['losses']:,} losses; {extra['errors']:,} judge"
             f" errors; {judge.identical:,} identical pairs tied without a call"]  # fmt: skip
    consistency, first = extra["position_consistency"], extra["first_position"]
    parts = []
    if consistency.n:
        parts.append(f"position consistency {value('rate', consistency.value)} {interval('rate', consistency, False)}"
                     f" (n={consistency.n:,})")  # fmt: skip
    if first.n:
        parts.append(f"the first-shown answer won {value('rate', first.value)} of {first.n:,} decisive verdicts")
    if parts:
        lines.append("Judge " + "; ".join(parts))
    longer, shorter = extra["when_longer"], extra["when_shorter"]
    if longer.n or shorter.n:
        lines.append(f"Judge win rate when the candidate's answer is longer: {value('rate', longer.value)} (n={longer.n:,});"
                     f" shorter: {value('rate', shorter.value)} (n={shorter.n:,})")  # fmt: skip
    lines.append(f"Judge spend: {value('usd', judge.cost_usd)} over {judge.requests:,} requests"
                 f" ({judge.cached:,} verdicts reused from the store, not paid again)")  # fmt: skip
    agreement = judge.agreement
    if agreement is not None:
        kappa = agreement.kappa
        kappa_text = f"{kappa.value:.2f} [{kappa.low:.2f}, {kappa.high:.2f}]" if kappa.known else "—"
        few = " (from so few pairs, read the share agreeing: kappa's interval is approximate)" if agreement.n < 30 else ""
        lines.append(f"Judge vs human reviewers: agree on {value('rate', agreement.share.value)}"
                     f" {interval('rate', agreement.share, False)} of {agreement.n:,} reviewed pairs; Cohen's kappa"
                     f" {kappa_text}{few}")  # fmt: skip
    lines += [f"Judge warning: {quote(warning)}" for warning in judge.warnings]
    return lines


JUDGE_REASON_CHARS = 160
"""How much of the judge's reason a table cell shows (``replay show`` shows more)."""
JUDGE_SAYS = {"candidate": "candidate better", "baseline": "baseline better", "tie": "tie", "error": "judge error"}


def judge_cell(verdict: str | None, reason: str | None, limit: int = JUDGE_REASON_CHARS) -> str:
    """The judge's verdict and the start of its reason, as one line of plain text (escape it to print)."""
    if verdict is None:
        return "not judged"
    from replay.reports.escape import clip

    said = JUDGE_SAYS.get(verdict, verdict)
    return f"{said}: {clip(' '.join(reason.split()), limit)}" if reason else said


SHOWN_SESSIONS = 5
"""Diverged sessions named in the terminal and Markdown reports (JSON lists them all)."""


def session_lines(evaluation: Evaluation, quote: Callable[[str], str] = str) -> list[str]:
    """Whole conversations in sentences: how many agreed turn by turn, where the others parted."""
    sessions = evaluation.sessions
    if sessions is None:
        return []
    loop = "closed loop" if sessions.mode == "closed_loop" else "open loop"
    agree = sessions.agreement
    lines = [f"Sessions ({loop}, by metadata.{quote(sessions.key)}, against the {sessions.against} answers):"
             f" {sessions.count:,} sessions, {sessions.answered_turns:,} of {sessions.turns:,} turns answered;"
             f" every turn's tool calls agree in {value('rate', agree.value)} {interval('rate', agree, False)};"
             f" {sessions.completed:,} completed, {sessions.diverged:,} diverged, {sessions.with_errors:,} with an error"]  # fmt: skip
    first = sessions.first_divergence()
    if first:
        lines.append("First divergence: " + ", ".join(f"turn {turn}: {count:,}" for turn, count in first.items()))
    diverged = [r for r in sessions.results if r.diverged_at is not None][:SHOWN_SESSIONS]
    for result in diverged:
        how_far = f"; {result.answered} of {result.turns} turns answered" if sessions.mode == "closed_loop" else ""
        lines.append(f"Session {quote(clip(result.session, 80))} diverged at turn {result.diverged_at}:"
                     f" {quote(result.reason or '')}{how_far}")  # fmt: skip
    return lines


# --- the sample's traffic mix (runs sampled by time, strata or dedupe) ------------------------------


def sample_text(sample: dict[str, Any]) -> str:
    """The header's ``Sample``: rate, max and seed, and the time window, strata and dedupe when set."""
    max_part = f", max {sample.get('max')}" if sample.get("max") else ""
    text = f"rate {sample.get('rate', 1)}{max_part}, seed {sample.get('seed', 0)}"
    if sample.get("since"):
        text += f", since {sample['since']}"
    if sample.get("until"):
        text += f", until {sample['until']}"
    if sample.get("stratify_by"):
        text += f", stratified by {', '.join(sample['stratify_by'])} (at least {sample.get('min_per_stratum', 1)} each)"
    if sample.get("dedupe"):
        text += ", deduplicated"
    return text


def _share(count: int, total: int) -> str:
    return f"{count / total * 100:.1f}%" if total else "—"


def mix_lines(mix: dict[str, Any]) -> list[str]:
    """The time ranges of the log and the sample, what the window left out, the floor per stratum
    and the dedupe summary: one line each, as every report format prints them."""
    def span(part: dict[str, Any]) -> str:
        return f"{part['first']} to {part['last']}" if part.get("first") else "no timestamps"

    lines = [f"Log: {mix['records']:,} records, {span(mix['log_range'])}",
             f"Sample: {mix['sampled']:,} records, {span(mix['sample_range'])}"]  # fmt: skip
    if mix.get("since") or mix.get("until"):
        window = f"from {mix.get('since') or 'the start'} until {mix.get('until') or 'now'}"
        lines.append(f"Window {window}: {mix['outside_window']:,} records outside it and {mix['without_timestamp']:,}"
                     " without a timestamp left out")  # fmt: skip
    if mix.get("stratify_by"):
        lines.append(f"Strata by {', '.join(mix['stratify_by'])}: the sample shared in proportion to the log's"
                     f" records (largest remainders), at least {mix['min_per_stratum']} per stratum"
                     " (or all it has); the floor over-represents the smallest strata")  # fmt: skip
    if mix.get("dedupe"):
        lines.append(f"Dedupe: {mix['replayed']:,} distinct requests replayed stood for {mix['sampled']:,} sampled"
                     " records, each counted with its weight (its copies) in every metric")  # fmt: skip
    return lines


def mix_tables(mix: dict[str, Any]) -> list[tuple[str, list[dict[str, str]]]]:
    """Per key (the strata, else the segment keys): each value's count and share in the log and
    in the sample (values and keys come from the log: the renderers escape them)."""
    tables = []
    for table in mix.get("tables", ()):
        rows = [{"value": str(row["value"]), "log": f"{row['log']:,}", "log_share": _share(row["log"], table["log_total"]),
                 "sample": f"{row['sample']:,}", "sample_share": _share(row["sample"], table["sample_total"])}
                for row in table["values"]]  # fmt: skip
        tables.append((str(table["key"]), rows))
    return tables


MIX_HEADERS = ("Log", "Log share", "Sample", "Sample share")
MIX_CELLS = ("log", "log_share", "sample", "sample_share")
