"""Markdown for pull-request comments and ``$GITHUB_STEP_SUMMARY``.

Text from logs and endpoints (ids, segment values, reasons, names) is escaped, so that it
cannot end a table row, open HTML, or turn into links or emphasis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from replay.reports import format as fmt
from replay.reports import register_renderer
from replay.reports.escape import md, md_code

if TYPE_CHECKING:  # for the annotations only
    from replay.evaluate import Evaluation

ICONS = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️", "SKIPPED": "➖"}


def _table(headers: list[str], rows: list[list[str]], align: str) -> list[str]:
    """A GitHub table; cells come escaped (:func:`md`, :func:`md_code`) where they hold data."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


@register_renderer("markdown", suffix=".md", option="--report-md", help="Write the Markdown report here.",
                   step_summary=True, order=1)  # fmt: skip
def render_markdown(evaluation: Evaluation, top: int = 10) -> str:
    decision = evaluation.decision
    lines = [f"## replay: {ICONS.get(decision.verdict, '')} {fmt.verdict_line(evaluation)}", ""]
    lines += [f"**{label}:** {md(text)}  " for label, text in fmt.header_items(evaluation)]
    lines.append("")
    rows = []
    for result in decision.results:
        cells = fmt.gate_cells(result)
        rows.append([md_code(cells["gate"]), cells["baseline"], cells["candidate"], cells["delta"], cells["ci"],
                     cells["threshold"], cells["n"], f"{ICONS.get(result.status, '')} {result.status}"])  # fmt: skip
    lines += ["### Gates", ""]
    lines += _table(["Gate", "Baseline", "Candidate", "Δ", "95% CI", "Threshold", "n", "Status"], rows, "lrrrrlrl")
    notes = fmt.gate_notes(evaluation)
    if notes:
        lines.append("")
        lines += [f"- {md(note)}" for note in notes]
    lines += ["", "<details><summary>All metrics</summary>", ""]
    rows = []
    for name, metric in evaluation.metrics.items():
        cells = fmt.metric_cells(name, metric)
        rows.append([cells[k] for k in ("metric", "n", "baseline", "candidate", "delta", "ci")])
    lines += _table(["Metric", "n", "Baseline", "Candidate", "Δ", "95% CI"], rows, "lrrrrr")
    summary = fmt.summary_lines(evaluation, quote=md)
    drift = fmt.drift_line(evaluation)
    summary += [drift] if drift else []
    if summary:
        lines.append("")
        lines += [f"- {line}" for line in summary]
    lines += ["", "</details>"]
    noise = fmt.noise_rows(evaluation)
    if noise:
        lines += ["", f"### {fmt.noise_title(evaluation)}", ""]
        rows = [[row[k] for k in ("metric", "candidate", "noise", "n", "over", "ci")] for row in noise]
        lines += _table(["Metric", "Candidate", "Noise", "n", "Over noise", "95% CI"], rows, "lrrrrr")
    judge = fmt.judge_lines(evaluation, quote=md)
    if judge:
        lines += ["", "### Judge", ""] + [f"- {line}" for line in judge]
    sessions = fmt.session_lines(evaluation, quote=md)
    if sessions:
        lines += ["", "### Sessions", ""] + [f"- {line}" for line in sessions]
    if evaluation.mix is not None:
        lines += _mix(evaluation.mix)
    columns = fmt.segment_columns(evaluation)
    for key, values in evaluation.segments.items():
        lines += ["", f"### Segments by {md_code(key)}", ""]
        rows = [[md(value), f"{m['error_rate'].n:,}", *[fmt.segment_cell(name, m[name]) for name in columns]]
                for value, m in values.items()]  # fmt: skip
        lines += _table([md(key), "n", *[fmt.SHORT_NAMES[n] for n in columns]], rows, "lr" + "r" * len(columns))
    if evaluation.disagreements:
        lines += ["", "### Top disagreements", ""]
        beyond, judged = evaluation.noise is not None, evaluation.judge is not None
        rows = [[md_code(d.request_id), f"{d.divergence:.2f}", md("; ".join(d.reasons)),
                 *(["yes" if d.beyond_noise else "no"] if beyond else []),
                 *([md(fmt.judge_cell(d.judge, d.judge_reason))] if judged else [])]
                for d in evaluation.disagreements[:top]]  # fmt: skip
        headers = ["Request", "Score", "Why", *(["Beyond noise"] if beyond else []), *(["Judge"] if judged else [])]
        lines += _table(headers, rows, "lrl" + "l" * (len(headers) - 3))
    if evaluation.reviews is not None:
        lines += ["", fmt.review_line(evaluation)]
    return "\n".join(lines) + "\n"


def _mix(mix: dict[str, Any]) -> list[str]:
    """The sample's traffic mix next to the whole log's."""
    lines = ["", "### Traffic mix (log vs sample)", ""]
    for key, rows in fmt.mix_tables(mix):
        cells = [[md(row["value"]), *[row[cell] for cell in fmt.MIX_CELLS]] for row in rows]
        lines += _table([md(key), *fmt.MIX_HEADERS], cells, "lrrrr") + [""]
    return lines + [f"- {md(line)}" for line in fmt.mix_lines(mix)]
