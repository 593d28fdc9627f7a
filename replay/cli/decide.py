"""``replay report``, ``replay gate``, ``replay disagreements``, ``replay show``: decide on stored runs.

None of these sends a request: they read the store, compare (once; comparisons are
kept), aggregate and gate.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import click

from replay.cli.options import open_store, store_option

F = Callable[..., Any]


def report_file_options(func: F) -> F:
    for flag, help_text in reversed((
        ("--report-json", "Write the JSON report here."),
        ("--report-md", "Write the Markdown report here."),
        ("--report-junit", "Write a JUnit XML file (one test case per gate) here."),
    )):  # fmt: skip
        func = click.option(flag, type=click.Path(dir_okay=False, writable=True), help=help_text)(func)
    return func


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def write_reports(evaluation: Any, report_json: str | None, report_md: str | None, report_junit: str | None) -> None:
    """Write the requested report files, and the Markdown to $GITHUB_STEP_SUMMARY when set;
    say the evaluation's notes on stderr."""
    from replay.reports import render

    from replay.reports.escape import visible

    for note in evaluation.notes:
        click.echo(f"note: {visible(note)}", err=True)
    for path, name in ((report_json, "json"), (report_md, "markdown"), (report_junit, "junit")):
        if path:
            _write(path, render(name, evaluation))
            click.echo(f"wrote {visible(path)}", err=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(render("markdown", evaluation))


def check_report_paths(*paths: str | None) -> None:
    """Fail now, not after the run, on a report path that can never be written."""
    from replay.errors import InputError

    for path in filter(None, paths):
        if os.path.isdir(path):
            raise InputError(f"{path}: cannot write the report (it is a directory)")
        parent = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(parent):  # missing folders are created when the report is written
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise InputError(f"{path}: cannot write the report ({parent} is not a directory)")
        if not os.access(parent, os.W_OK):
            raise InputError(f"{path}: cannot write the report ({parent} is not writable)")


def _write(path: str, text: str) -> None:
    """Write whole or not at all (a temporary file renamed into place)."""
    from replay.errors import InputError

    tmp = f"{path}.tmp"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror or exc})") from None


def print_terminal(evaluation: Any, top: int = 5) -> None:
    from replay.reports import render

    out = console()
    for renderable in render("terminal", evaluation, top=top):
        out.print(renderable)


def load_gates_for_run(path: str | None, store: Any, run_ref: str) -> Any:
    """:func:`load_gates_file`, with each gate's ``segment`` checked against the run's ``segment_by``."""
    if not path:
        return None
    from replay.errors import ScenarioError
    from replay.evaluate import settings_for

    gates = load_gates_file(path)
    segments = settings_for(store.get_run(run_ref), gates).segments
    for index, gate in enumerate(gates if isinstance(gates, list) else ()):
        if isinstance(gate, dict) and gate.get("segment") is not None:
            try:
                segments.resolve(str(gate["segment"]))
            except ValueError as exc:
                raise ScenarioError(f"{path}: gates[{index}].segment: {exc}") from None
    return gates


def load_gates_file(path: str) -> Any:
    """The ``gates:`` list of a YAML file (a scenario or a gates-only file)."""
    from replay.scenario_file import load_scenario_data
    from replay.errors import ScenarioError
    from replay.gates import parse_gates

    data = load_scenario_data(path)
    if "gates" not in data:
        raise ScenarioError(f"{path}: gates: missing required key")
    gates = data["gates"]
    parse_gates(gates, lambda key, message: ScenarioError(f"{path}: {key}: {message}"))
    return gates


@click.command(name="report")
@click.argument("run_ref", metavar="[RUN]", default="latest")
@click.option("--format", "fmt", type=click.Choice(["terminal", "markdown", "json", "junit"]), default="terminal",
              show_default=True, help="Output format (to stdout).")  # fmt: skip
@click.option("--gates", "gates_file", type=click.Path(exists=True, dir_okay=False), help="Decide with the gates of this YAML file.")
@click.option("--top", type=click.IntRange(0), help="Disagreements to list [default: 5 in the terminal, 10 in Markdown, 20 in JSON].")
@report_file_options
@store_option
def report_command(run_ref: str, fmt: str, gates_file: str | None, top: int | None, store_path: str,
                   **files: Any) -> None:  # fmt: skip
    """Render the report of a stored run (RUN: an id, a prefix or 'latest', the default).

    \b
    Examples:
      replay report latest
      replay report latest --format markdown > report.md
    """
    from replay.evaluate import evaluate
    from replay.reports import render

    store = open_store(store_path)
    gates = load_gates_for_run(gates_file, store, run_ref)
    evaluation = evaluate(store, run_ref, gates, top=max(top or 0, 20))
    if fmt == "terminal":
        print_terminal(evaluation, 5 if top is None else top)
    else:
        options = {"top": top} if top is not None and fmt in ("markdown", "json") else {}
        click.echo(render(fmt, evaluation, **options), nl=False)
    write_reports(evaluation, files["report_json"], files["report_md"], files["report_junit"])


@click.command(name="gate")
@click.argument("run_ref", metavar="[RUN]", default="latest")
@click.option("--gates", "gates_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with a 'gates:' list (a scenario works too); default: the run's own gates.")  # fmt: skip
@report_file_options
@store_option
@click.pass_context
def gate_command(ctx: click.Context, run_ref: str, gates_file: str | None, store_path: str, **files: Any) -> None:
    """Re-decide a stored run (RUN: an id, a prefix or 'latest', the default) against gates,
    without a single API call.

    Exit code 0 for PASS, 1 for FAIL, and for INCONCLUSIVE what on_inconclusive says
    (default: 1).

    \b
    Examples:
      replay gate latest
      replay gate latest --gates release-gates.yaml --report-junit gates.xml
    """
    from replay.evaluate import evaluate
    from replay.reports import render

    store = open_store(store_path)
    gates = load_gates_for_run(gates_file, store, run_ref)
    evaluation = evaluate(store, run_ref, gates)
    out = console()
    for renderable in render("terminal", evaluation, gates_only=True):
        out.print(renderable)
    write_reports(evaluation, files["report_json"], files["report_md"], files["report_junit"])
    ctx.exit(evaluation.decision.exit_code)


@click.command(name="disagreements")
@click.argument("run_ref", metavar="[RUN]", default="latest")
@click.option("--top", type=click.IntRange(1), default=20, show_default=True)
@click.option("--segment", help="Only this segment: key=value, or a value of the run's segment_by key.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines instead of a table.")
@store_option
def disagreements_command(run_ref: str, top: int, segment: str | None, as_json: bool, store_path: str) -> None:
    """List the pairs of a stored run (RUN: an id, a prefix or 'latest', the default) that
    diverge most sharply, most divergent first.

    \b
    Examples:
      replay disagreements latest --top 10
      replay disagreements latest --segment category=billing
    """
    from replay.evaluate import measure_table, settings_for, top_disagreements
    from replay.reports.escape import visible

    store = open_store(store_path)
    run = store.get_run(run_ref)
    settings = settings_for(run)
    pairs = measure_table(store, run, settings)
    try:
        items = top_disagreements(pairs, settings.segments, top, segment)
        key, value = settings.segments.resolve(segment) if segment else (None, None)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--segment") from None
    if as_json:
        for item in items:
            click.echo(json.dumps({"request_id": item.request_id, "divergence": item.divergence,
                                   "reasons": list(item.reasons), "segment": item.segment}))  # fmt: skip
        return
    if not items:
        if not len(pairs):
            message = "no pairs compared: the run has no request answered on both arms"
        elif segment and not any(str((m or {}).get(key)) == value for m in pairs.values("metadata")):
            message = f"no request has segment {key}={value}"
        else:
            message = "no disagreements: every compared pair" + (f" in {key}={value}" if segment else "") + " matches"
        click.echo(visible(message), err=True)
        return
    from rich import box
    from rich.table import Table

    from replay.reports.escape import term
    from replay.reports.terminal import Trimmed

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("#", "Request", "Segment", "Score", "Why"):
        table.add_column(name, justify="right" if name in ("#", "Score") else "left",
                         overflow="fold" if name in ("Request", "Segment") else "ellipsis")  # fmt: skip
    for rank, item in enumerate(items, 1):
        table.add_row(str(rank), term(item.request_id), term(item.segment), f"{item.divergence:.2f}",
                      term("; ".join(item.reasons)))  # fmt: skip
    console().print(Trimmed(table))


@click.command(name="show")
@click.argument("run_ref", metavar="RUN")
@click.argument("request_id")
@store_option
def show_command(run_ref: str, request_id: str, store_path: str) -> None:
    """Show one request and its two answers side by side, differences highlighted.

    \b
    Example:
      replay show latest sup-0042
    """
    from replay.evaluate import compare_run, settings_for
    from replay.reports.show import render_pair
    from replay.errors import InputError

    store = open_store(store_path)
    run = store.get_run(run_ref)
    case = store.case(run.id, request_id)
    if case is None:
        raise InputError(f"run {run.id} has no request {request_id!r} (see 'replay disagreements {run.id}')")
    measures = next((row for row in compare_run(store, run, settings_for(run)) if row["request_id"] == request_id), None)
    out = console()
    for renderable in render_pair(run, case[0], case[1], store.result_rows(run.id, request_id), measures):
        out.print(renderable)


COMMANDS = [report_command, gate_command, disagreements_command, show_command]
