"""``replay plan`` in the terminal: the gates' needs against the sample, then the arms' spend.

Names from the scenario and the log (the scenario's name, models, segments) go in as
:func:`term` text: never parsed as markup, control characters shown as escapes.
"""

from __future__ import annotations

from typing import Any

from replay.metrics import METRICS
from replay.plan import Plan, SenderPlan
from replay.reports import format as fmt
from replay.reports.escape import term
from replay.reports.terminal import STATUS_STYLE, TABLE, Trimmed, hanging


def plan_renderables(plan: Plan) -> list[Any]:
    """The plan as rich renderables, every line without trailing spaces."""
    from rich.text import Text

    out = [_header(plan), Text(""), _gates(plan)]
    out += [hanging("  • ", line) for line in _lines(plan)]
    out += [Text(""), _senders(plan)]
    return [Trimmed(renderable) for renderable in out]


def _header(plan: Plan) -> Any:
    from rich.table import Table

    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    header.add_row("Plan", term(f"{plan.scenario} (nothing sent)"))
    invalid = f", {plan.invalid:,} invalid skipped" if plan.invalid else ""
    header.add_row("Log", f"{plan.records:,} records{invalid}; the sample picks {plan.sample:,}")
    header.add_row("Baseline", "logged answers" if plan.baseline_mode == "logged" else "production, asked again")
    levels = f"PASS at one-sided {_percent(plan.gates[0].pass_alpha) if plan.gates else '2.5%'} (the 95% interval)"
    if plan.tests > 1:
        levels += f"; FAIL at one-sided {_percent(plan.gates[0].fail_alpha)} (Holm's first step over {plan.tests} tests)"
    header.add_row("Levels", levels)
    return header


def _percent(alpha: float) -> str:
    return f"{alpha * 100:.3g}%"


def _gates(plan: Plan) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Gates (for a candidate equal to the baseline; 80% power to PASS)", box=box.SIMPLE_HEAD,
                  title_justify="left", **TABLE)  # fmt: skip
    table.add_column("Gate", overflow="fold", min_width=20)
    for name in ("Baseline", "Needs", "Sample", "P(PASS)"):
        table.add_column(name, justify="right")
    table.add_column("Expect", no_wrap=True)
    for gate in plan.gates:
        unit = METRICS[gate.gate.metric].unit
        needs = "—" if gate.needed is None else f"{gate.needed:,}"
        chance = "—" if gate.pass_chance is None else f"{gate.pass_chance * 100:.0f}%"
        table.add_row(term(gate.label), fmt.value(unit, gate.baseline), needs, f"{gate.sample:,}", chance,
                      Text(gate.expect, style=STATUS_STYLE.get(gate.expect, "")))  # fmt: skip
    return table


def _lines(plan: Plan) -> list[str]:
    """What to do about the gates the sample does not settle, and how each was modelled."""
    lines = plan.warnings()
    models = dict.fromkeys(gate.model for gate in plan.gates if gate.model)
    lines += [f"assumed: {model}" for model in models]
    return lines


def _senders(plan: Plan) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title="Requests to send (at the configured limits and prices)", box=box.SIMPLE_HEAD,
                  title_justify="left", **TABLE)  # fmt: skip
    table.add_column("Arm")
    table.add_column("Model", overflow="fold")
    for name in ("Requests", "Tokens in", "Tokens out", "Cost", "Duration"):
        table.add_column(name, justify="right")
    table.add_column("Paced by")
    for sender in plan.senders:
        table.add_row(*_sender_cells(sender))
    if len(plan.senders) > 1:
        table.add_row("total", "", "", "", "", _usd(plan.cost_usd), _duration(plan.duration_s), "")
    return table


def _sender_cells(sender: SenderPlan) -> list[Any]:
    return [term(sender.name), term(sender.model), f"{sender.requests:,}", f"{sender.prompt_tokens:,}",
            f"{sender.completion_tokens:,}", _usd(sender.cost_usd), _duration(sender.duration_s),
            sender.limited_by or "—"]  # fmt: skip


def _usd(amount: float | None) -> str:
    if amount is None:
        return "unknown (no price)"
    return f"${amount:.4f}" if amount < 10 else f"${amount:,.2f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
