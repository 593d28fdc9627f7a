"""The terminal report: rich tables, legible with NO_COLOR and at 80 columns.

Text from the run (ids, segment values, reasons, names) goes in as :func:`term` text: never
parsed as markup, its control characters shown as escapes.
"""

from __future__ import annotations

from typing import Any

from replay.reports import format as fmt
from replay.reports import register_renderer
from replay.reports.escape import term

TABLE: dict[str, Any] = {"pad_edge": False, "padding": (0, 0), "show_edge": False}
"""Columns one space apart (the box's own separator), so the gate table fits 80 columns."""
STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "INCONCLUSIVE": "bold yellow", "SKIPPED": "dim"}
SEGMENT_METRICS = ("error_rate", "format_compliance", "similarity", "latency_p95_ms")


@register_renderer("terminal")
def render_terminal(evaluation: Any, top: int = 5) -> list[Any]:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = []
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    for label, text in fmt.header_items(evaluation):
        header.add_row(label, term(text))
    out.append(header)
    out.append(Text(""))
    verdict = Text("Verdict: ", style="bold")
    verdict.append(fmt.verdict_line(evaluation), style=STATUS_STYLE.get(evaluation.decision.verdict, ""))
    out.append(verdict)

    gates = Table(title="Gates", box=box.SIMPLE_HEAD, title_justify="left", **TABLE)
    gates.add_column("Gate (base → cand)", overflow="fold", min_width=20)
    for name in ("Δ", "95% CI", "Threshold", "n"):
        gates.add_column(name, justify="left" if name == "Threshold" else "right")
    gates.add_column("Status", no_wrap=True)
    for result in evaluation.decision.results:
        cells = fmt.gate_cells(result)
        label = term(cells["gate"]).append(f"\n{cells['baseline']} → {cells['candidate']}")
        gates.add_row(label, *[cells[k] for k in ("delta", "ci", "threshold", "n")],
                      Text(cells["status"], style=STATUS_STYLE.get(result.status, "")))  # fmt: skip
    out.append(gates)
    for note in fmt.gate_notes(evaluation):
        out.append(term(f"  • {note}"))

    metrics = Table(title="Metrics (candidate vs baseline)", box=box.SIMPLE_HEAD, title_justify="left", **TABLE)
    metrics.add_column("Metric", overflow="fold", min_width=20)
    for name in ("n", "Baseline", "Candidate", "Δ", "95% CI"):
        metrics.add_column(name, justify="right")
    for name, metric in evaluation.metrics.items():
        cells = fmt.metric_cells(name, metric)
        metrics.add_row(*[cells[k] for k in ("metric", "n", "baseline", "candidate", "delta", "ci")])
    out.append(metrics)
    for line in fmt.summary_lines(evaluation):
        out.append(term(f"  {line}"))

    for key, values in evaluation.segments.items():
        table = Table(title=term(f"Segments by {key} (Δ = candidate - baseline)"), box=box.SIMPLE_HEAD,
                      title_justify="left", **TABLE)  # fmt: skip
        table.add_column(term(key))
        table.add_column("n", justify="right")
        for name in SEGMENT_METRICS:
            table.add_column(fmt.SHORT_NAMES[name], justify="right")
        for value, metrics_by_name in values.items():
            table.add_row(term(value), f"{metrics_by_name['error_rate'].n:,}",
                          *[fmt.segment_cell(name, metrics_by_name[name]) for name in SEGMENT_METRICS])  # fmt: skip
        out.append(table)

    if evaluation.disagreements:
        table = Table(title="Top disagreements", box=box.SIMPLE_HEAD, title_justify="left", **TABLE)
        table.add_column("Request")
        table.add_column("Score", justify="right")
        table.add_column("Why")
        for item in evaluation.disagreements[:top]:
            table.add_row(term(item.request_id), f"{item.divergence:.2f}", term("; ".join(item.reasons)))
        out.append(table)
        out.append(term(f"  replay show {evaluation.run.id} REQUEST_ID  shows a pair side by side"))
    if evaluation.reviews is not None:
        out.append(term(f"  {fmt.review_line(evaluation)}"))
    return out
