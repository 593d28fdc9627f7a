"""The terminal report: rich tables, legible with NO_COLOR and at 80 columns.

Text from the run (ids, segment values, reasons, names) goes in as :func:`term` text: never
parsed as markup, its control characters shown as escapes. No line ends in spaces, and a
wrapped note continues under its text, not at column 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from replay.reports import format as fmt
from replay.reports import register_renderer
from replay.reports.escape import term

if TYPE_CHECKING:  # for the annotations only
    from replay.evaluate import Evaluation

TABLE: dict[str, Any] = {"pad_edge": False, "padding": (0, 0), "show_edge": False}
"""Columns one space apart (the box's own separator), so the gate table fits 80 columns."""
STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "INCONCLUSIVE": "bold yellow", "SKIPPED": "dim"}

Section = Callable[[Any, int], list[Any]]
"""A part of the terminal report: ``(evaluation, top)`` to rich renderables (none to leave it out)."""
SECTIONS: dict[str, Section] = {}
"""The parts of the terminal report by name, in report order."""
GATE_SECTIONS = ("header", "verdict", "gates")
"""What ``replay gate`` prints: the run, the verdict and the gates."""


def section(name: str) -> Callable[[Section], Section]:
    def decorate(part: Section) -> Section:
        SECTIONS[name] = part
        return part

    return decorate


@register_renderer("terminal", suffix=".txt", rich=True, order=0)
def render_terminal(evaluation: Evaluation, top: int = 5, sections: Iterable[str] | None = None) -> list[Any]:
    """The report as rich renderables: the named ``sections`` (default: all, see
    :data:`SECTIONS`), in the order given. Every line comes without trailing spaces."""
    out: list[Any] = []
    for name in SECTIONS if sections is None else sections:
        if name not in SECTIONS:
            raise ValueError(f"no terminal report section {name!r} (there are: {', '.join(SECTIONS)})")
        out += SECTIONS[name](evaluation, top)
    return [Trimmed(renderable) for renderable in out]


@section("header")
def _header(evaluation: Any, top: int) -> list[Any]:
    from rich.table import Table

    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    for label, text in fmt.header_items(evaluation):
        header.add_row(label, term(text))
    return [header]


@section("verdict")
def _verdict(evaluation: Any, top: int) -> list[Any]:
    from rich.text import Text

    verdict = Text("Verdict: ", style="bold")
    verdict.append(fmt.verdict_line(evaluation), style=STATUS_STYLE.get(evaluation.decision.verdict, ""))
    return [Text(""), verdict]


@section("gates")
def _gates(evaluation: Any, top: int) -> list[Any]:
    """The gate table, then the notes of the gates that did not pass."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

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
    return [gates] + [hanging("  • ", note) for note in fmt.gate_notes(evaluation)]


@section("metrics")
def _metrics(evaluation: Any, top: int) -> list[Any]:
    from rich import box
    from rich.table import Table

    metrics = Table(title="Metrics (candidate vs baseline)", box=box.SIMPLE_HEAD, title_justify="left", **TABLE)
    metrics.add_column("Metric", overflow="fold", min_width=20)
    for name in ("n", "Baseline", "Candidate", "Δ", "95% CI"):
        metrics.add_column(name, justify="right")
    for name, metric in evaluation.metrics.items():
        cells = fmt.metric_cells(name, metric)
        metrics.add_row(*[cells[k] for k in ("metric", "n", "baseline", "candidate", "delta", "ci")])
    return [metrics]


@section("noise")
def _noise(evaluation: Any, top: int) -> list[Any]:
    """The pairwise metrics next to production's own (with a noise floor)."""
    from rich import box
    from rich.table import Table

    rows = fmt.noise_rows(evaluation)
    if not rows:
        return []
    table = Table(title=fmt.noise_title(evaluation), box=box.SIMPLE_HEAD, title_justify="left", **TABLE)
    table.add_column("Metric", overflow="fold", min_width=20)
    for name in ("Candidate", "Noise", "n", "Over noise", "95% CI"):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*[row[k] for k in ("metric", "candidate", "noise", "n", "over", "ci")])
    return [table]


@section("summary")
def _summary(evaluation: Any, top: int) -> list[Any]:
    """One-line summaries of cost, similarity, flips, key fields and production's drift."""
    drift = fmt.drift_line(evaluation)
    return [hanging("  ", line) for line in [*fmt.summary_lines(evaluation), *([drift] if drift else [])]]


@section("judge")
def _judge(evaluation: Any, top: int) -> list[Any]:
    """The judge's verdicts, trust and spend, when the run has a judge."""
    return [hanging("  ", line) for line in fmt.judge_lines(evaluation)]


@section("sessions")
def _sessions(evaluation: Any, top: int) -> list[Any]:
    """Whole conversations, when the run's records name them."""
    return [hanging("  ", line) for line in fmt.session_lines(evaluation)]


@section("mix")
def _mix(evaluation: Any, top: int) -> list[Any]:
    """The sample's traffic mix next to the whole log's (a run sampled by time, strata or dedupe)."""
    from rich import box
    from rich.table import Table

    if evaluation.mix is None:
        return []
    out: list[Any] = []
    for key, rows in fmt.mix_tables(evaluation.mix):
        table = Table(title=term(f"Traffic mix by {key} (log vs sample)"), box=box.SIMPLE_HEAD, title_justify="left",
                      **TABLE)  # fmt: skip
        table.add_column(term(key), overflow="fold")
        for name in fmt.MIX_HEADERS:
            table.add_column(name, justify="right")
        for row in rows:
            table.add_row(term(row["value"]), *[row[cell] for cell in fmt.MIX_CELLS])
        out.append(table)
    return out + [hanging("  ", line) for line in fmt.mix_lines(evaluation.mix)]


@section("segments")
def _segments(evaluation: Any, top: int) -> list[Any]:
    from rich import box
    from rich.table import Table

    out: list[Any] = []
    for key, values in evaluation.segments.items():
        table = Table(title=term(f"Segments by {key} (Δ = candidate - baseline)"), box=box.SIMPLE_HEAD,
                      title_justify="left", **TABLE)  # fmt: skip
        table.add_column(term(key), overflow="fold")
        table.add_column("n", justify="right")
        columns = fmt.segment_columns(evaluation)
        for name in columns:
            table.add_column(fmt.SHORT_NAMES[name], justify="right")
        for value, metrics_by_name in values.items():
            table.add_row(term(value), f"{metrics_by_name['error_rate'].n:,}",
                          *[fmt.segment_cell(name, metrics_by_name[name]) for name in columns])  # fmt: skip
        out.append(table)
    return out


@section("disagreements")
def _disagreements(evaluation: Any, top: int) -> list[Any]:
    """The ``top`` most divergent pairs, and how to see one."""
    from rich import box
    from rich.table import Table

    if not evaluation.disagreements:
        return []
    table = Table(title="Top disagreements", box=box.SIMPLE_HEAD, title_justify="left", **TABLE)
    table.add_column("Request", overflow="fold")
    table.add_column("Score", justify="right")
    table.add_column("Why")
    noise, judged = evaluation.noise is not None, evaluation.judge is not None
    if noise:
        table.add_column("Beyond noise")
    if judged:
        table.add_column("Judge")
    for item in evaluation.disagreements[:top]:
        beyond = ["yes" if item.beyond_noise else "no"] if noise else []
        judge = [term(fmt.judge_cell(item.judge, item.judge_reason))] if judged else []
        table.add_row(term(item.request_id), f"{item.divergence:.2f}", term("; ".join(item.reasons)), *beyond, *judge)
    return [table, hanging("  ", f"replay show {evaluation.run.id} REQUEST_ID  shows a pair side by side")]


@section("review")
def _review(evaluation: Any, top: int) -> list[Any]:
    """The human reviews' verdict, when the run has reviews."""
    return [] if evaluation.reviews is None else [hanging("  ", fmt.review_line(evaluation))]


def hanging(prefix: str, text: str) -> Any:
    """``prefix`` then ``text``, its continuation lines indented under the text, not at column 0."""
    from rich.table import Table

    grid = Table.grid()
    grid.add_column(no_wrap=True)
    grid.add_column()
    grid.add_row(prefix, term(text))
    return grid


class Trimmed:
    """A renderable whose lines end without the spaces rich pads them with (a table pads
    every line to its width): nothing trails in a pipe, a file or a copied selection."""

    def __init__(self, renderable: Any) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        for line in console.render_lines(self.renderable, options, pad=False):
            yield from _rstrip(line)
            yield Segment.line()

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        return Measurement.get(console, options, self.renderable)


def _rstrip(line: list[Any]) -> list[Any]:
    from rich.segment import Segment

    line = list(line)
    while line and not line[-1].control and not line[-1].text.rstrip():
        line.pop()
    if line and not line[-1].control:
        last = line[-1]
        line[-1] = Segment(last.text.rstrip(), last.style, last.control)
    return line
