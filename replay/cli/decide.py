"""``replay report``, ``replay gate``, ``replay disagreements``, ``replay show``: decide on stored runs.

None of these sends a request: they read the store, compare (once; comparisons are
kept), aggregate and gate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from replay.cli.options import open_store, store_option
from replay.cli.reporting import FormatChoice, ReportCommand, console, print_renderables, write_reports


def print_terminal(evaluation: Any, top: int = 5) -> None:
    from replay.reports import render

    print_renderables(render("terminal", evaluation, top=top))


@dataclass(frozen=True)
class GatesFile:
    """What a ``--gates`` file decides with: its gates, and its ``on_inconclusive`` if it sets one."""

    gates: Any
    on_inconclusive: str | None = None


def load_gates_for_run(path: str | None, store: Any, run_ref: str) -> GatesFile:
    """:func:`load_gates_file`, with each gate's ``segment`` checked against the run's ``segment_by``."""
    if not path:
        return GatesFile(None)
    from replay.errors import ScenarioError
    from replay.evaluate import settings_for

    loaded = load_gates_file(path)
    gates = loaded.gates
    run = store.get_run(run_ref)
    segments = settings_for(run, gates).segments
    for index, gate in enumerate(gates if isinstance(gates, list) else ()):
        metric = str(gate.get("metric", "")) if isinstance(gate, dict) else ""
        if metric.startswith("semantic_similarity") and not run.scenario.get("embeddings"):
            raise ScenarioError(f"{path}: gates[{index}].metric: {metric} needs an embeddings endpoint, and run {run.id}"
                                " had none")  # fmt: skip
        if isinstance(gate, dict) and gate.get("segment") is not None:
            try:
                segments.resolve(str(gate["segment"]))
            except ValueError as exc:
                raise ScenarioError(f"{path}: gates[{index}].segment: {exc}") from None
    return loaded


def load_gates_file(path: str) -> GatesFile:
    """The ``gates:`` list of a YAML file (a scenario or a gates-only file), and its
    ``on_inconclusive``: both decide, so a file that sets it is obeyed, not half read."""
    from replay.scenario_file import load_scenario_data
    from replay.errors import ScenarioError
    from replay.gates import parse_gates

    data = load_scenario_data(path)
    _known_keys_only(path, data)
    if "gates" not in data:
        raise ScenarioError(f"{path}: gates: missing required key")
    gates = data["gates"]
    parse_gates(gates, lambda key, message: ScenarioError(f"{path}: {key}: {message}"))
    on_inconclusive = data.get("on_inconclusive")
    if on_inconclusive is not None and on_inconclusive not in ("fail", "pass"):
        raise ScenarioError(f"{path}: on_inconclusive: expected 'fail' or 'pass', got {on_inconclusive!r}")
    return GatesFile(gates, on_inconclusive)


def _known_keys_only(path: str, data: dict[str, Any]) -> None:
    """A gates file is a scenario or holds only ``gates:``; a key neither knows is a typo
    (``on_inconclusiv: pass`` silently ignored would change an exit code unseen)."""
    import difflib

    from replay.errors import ScenarioError
    from replay.scenario_file import scenario_keys

    known = scenario_keys()
    for key in data:
        if key not in known:
            hint = difflib.get_close_matches(str(key), sorted(known), n=1)
            raise ScenarioError(f"{path}: {key}: unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else ""))


@click.command(name="report", cls=ReportCommand)
@click.argument("run_ref", metavar="[RUN]", default="latest")
@click.option("--format", "fmt", type=FormatChoice(), default="terminal", show_default=True, help="Output format (to stdout).")
@click.option("--gates", "gates_file", type=click.Path(exists=True, dir_okay=False), help="Decide with the gates of this YAML file.")
@click.option("--top", type=click.IntRange(0), help="Disagreements to list [default: 5 in the terminal, 10 in Markdown, 20 in JSON].")
@store_option
def report_command(run_ref: str, fmt: str, gates_file: str | None, top: int | None, store_path: str,
                   report_files: dict[str, str]) -> None:  # fmt: skip
    """Render the report of a stored run (RUN: an id, a prefix or 'latest', the default).

    \b
    Examples:
      replay report latest
      replay report latest --format markdown > report.md
    """
    from replay.evaluate import evaluate
    from replay.reports import get_renderer, renderers

    store = open_store(store_path)
    gates = load_gates_for_run(gates_file, store, run_ref)
    listed = max((renderer.top or 0 for renderer in renderers()), default=0)
    evaluation = evaluate(store, run_ref, gates.gates, top=max(top or 0, listed), on_inconclusive=gates.on_inconclusive)
    renderer = get_renderer(fmt)
    output = renderer.render(evaluation, **({"top": top} if top is not None and renderer.top is not None else {}))
    if renderer.rich:
        print_renderables(output)
    else:
        click.echo(output, nl=False)
    write_reports(evaluation, report_files)


@click.command(name="gate", cls=ReportCommand)
@click.argument("run_ref", metavar="[RUN]", default="latest")
@click.option("--gates", "gates_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML file with a 'gates:' list (a scenario works too); default: the run's own gates.")  # fmt: skip
@store_option
@click.pass_context
def gate_command(ctx: click.Context, run_ref: str, gates_file: str | None, store_path: str,
                 report_files: dict[str, str]) -> None:  # fmt: skip
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
    from replay.reports.terminal import GATE_SECTIONS

    store = open_store(store_path)
    gates = load_gates_for_run(gates_file, store, run_ref)
    evaluation = evaluate(store, run_ref, gates.gates, on_inconclusive=gates.on_inconclusive)
    print_renderables(render("terminal", evaluation, sections=GATE_SECTIONS))
    write_reports(evaluation, report_files)
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
    from replay.evaluate import attach_judge, measure_table, noise_limit, settings_for, top_disagreements
    from replay.reports.escape import visible
    from replay.reports.format import judge_cell

    store = open_store(store_path)
    run = store.get_run(run_ref)
    settings = settings_for(run)
    pairs = measure_table(store, run, settings)
    limit = noise_limit(store, run, settings)
    judged = bool(attach_judge(store, run, pairs)) or bool(run.scenario.get("judge"))
    try:
        items = top_disagreements(pairs, settings.segments, top, segment, noise_limit=limit)
        key, value = settings.segments.resolve(segment) if segment else (None, None)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--segment") from None
    if as_json:
        for item in items:
            row = {"request_id": item.request_id, "divergence": item.divergence, "reasons": list(item.reasons),
                   "segment": item.segment}  # fmt: skip
            if item.beyond_noise is not None:
                row["beyond_noise"] = item.beyond_noise
            if judged:
                row["judge"], row["judge_reason"] = item.judge, item.judge_reason
            click.echo(json.dumps(row))
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
    for name in ("#", "Request", "Segment", "Score", "Why", *(["Beyond noise"] if limit is not None else []),
                 *(["Judge"] if judged else [])):  # fmt: skip
        table.add_column(name, justify="right" if name in ("#", "Score") else "left",
                         overflow="fold" if name in ("Request", "Segment") else "ellipsis")  # fmt: skip
    for rank, item in enumerate(items, 1):
        beyond = [] if item.beyond_noise is None else ["yes" if item.beyond_noise else "no"]
        table.add_row(str(rank), term(item.request_id), term(item.segment), f"{item.divergence:.2f}",
                      term("; ".join(item.reasons)), *beyond,
                      *([term(judge_cell(item.judge, item.judge_reason))] if judged else []))  # fmt: skip
    console().print(Trimmed(table))


@click.command(name="show")
@click.argument("run_ref", metavar="RUN")
@click.argument("request_id", required=False)
@click.option("--session", "session_id", metavar="ID", help="Show a whole conversation, turn by turn, instead of one request.")
@store_option
def show_command(run_ref: str, request_id: str | None, session_id: str | None, store_path: str) -> None:
    """Show one request and its two answers side by side, differences highlighted;
    or, with --session, a whole conversation turn by turn, both arms side by side.

    \b
    Examples:
      replay show latest sup-0042
      replay show latest --session 7f3a-support-chat
    """
    from replay.evaluate import compare_run, settings_for
    from replay.reports.show import render_pair
    from replay.errors import InputError

    if (request_id is None) == (session_id is None):
        raise click.UsageError("give a REQUEST_ID or --session ID (one of them)")
    store = open_store(store_path)
    run = store.get_run(run_ref)
    if session_id is not None:
        show_session(store, run, session_id)
        return
    assert request_id is not None
    case = store.case(run.id, request_id)
    if case is None:
        raise InputError(f"run {run.id} has no request {request_id!r} (see 'replay disagreements {run.id}')")
    measures = next((row for row in compare_run(store, run, settings_for(run)) if row["request_id"] == request_id), None)
    if measures is not None:
        measures = {**measures, **pair_semantic_similarity(store, run, request_id)}
    out = console()
    for renderable in render_pair(run, case[0], case[1], store.result_rows(run.id, request_id), measures,
                                  judge_verdict(store, run, request_id)):  # fmt: skip
        out.print(renderable)


def show_session(store: Any, run: Any, session_id: str) -> None:
    from replay.errors import InputError
    from replay.evaluate import baseline_arm
    from replay.reports.escape import visible
    from replay.reports.show import render_session
    from replay.session_metrics import session_key_of, sessions_of

    sessions = sessions_of(store, run.id, run.scenario, baseline_arm(run))
    found = next((s for s in sessions.results if s.session == session_id), None) if sessions is not None else None
    if found is None:
        key = session_key_of(run.scenario)
        known = "none" if sessions is None else ", ".join(visible(s.session) for s in sessions.results[:5])
        raise InputError(f"run {run.id} has no session {visible(session_id)!r} (metadata.{key}; sessions: {known})")
    ids = list(found.request_ids)
    cases = store.cases(run.id, only=ids)
    rows = {request_id: store.result_rows(run.id, request_id) for request_id in ids}
    out = console()
    for renderable in render_session(run, found, cases, rows):
        out.print(renderable)


def pair_semantic_similarity(store: Any, run: Any, request_id: str) -> dict[str, Any]:
    """The pair's stored cosine for ``replay show`` (sending nothing); a missing one is said on stderr."""
    from replay.evaluate import baseline_arm
    from replay.reports.escape import visible
    from replay.stages.embeddings import embeddings_model, semantic_similarities

    model = embeddings_model(run.scenario)
    if model is None:
        return {}
    (value,), notes = semantic_similarities(store, run.id, model, baseline_arm(run), [request_id])
    for note in notes:
        click.echo(f"note: {visible(note)}", err=True)
    return {} if value is None else {"semantic_similarity": value}


def judge_verdict(store: Any, run: Any, request_id: str) -> Any:
    """The judge's verdict on one pair (a :class:`replay.judge.summary.PairVerdict`), when it judged it."""
    from replay.judge.summary import pair_verdicts

    judge = run.scenario.get("judge")
    if not judge:
        return None
    rows = [row for row in store.judgements(run.id, request_id) if row[0] == request_id]
    return next(pair_verdicts(rows, 2 if judge.get("both_orders", True) else 1), None)


COMMANDS = [report_command, gate_command, disagreements_command, show_command]
