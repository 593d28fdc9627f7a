"""``replay run``: read the logs, replay the sample, store every outcome."""

from __future__ import annotations

import dataclasses
import shlex
import threading
from typing import Any

import click

from replay.cli.decide import print_terminal
from replay.cli.options import open_store, scenario_options, scenario_overrides, store_option
from replay.cli.reporting import ReportCommand, check_report_paths, write_reports
from replay.pipeline import AnsweredPair, PairStage, StageServices
from replay.reports.escape import visible
from replay.store import DEFAULT_STORE

@click.command(name="run", cls=ReportCommand)
@click.argument("scenario", required=False, type=click.Path(dir_okay=False))
@scenario_options
@click.option("--no-stream", is_flag=True, help="Use non-streaming requests on every arm.")
@click.option("--resume", "resume", metavar="RUN_ID", help="Finish an interrupted run (RUN_ID or 'latest').")
@click.option("--resend-changed", is_flag=True,
              help="With --resume: re-send the records whose request changed in the log and drop those gone from it, instead of refusing.")
@click.option("--skip-invalid", is_flag=True, help="Skip malformed log lines (counted and reported) instead of stopping.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--gates", "gates_file", type=click.Path(exists=True, dir_okay=False),
              help="Decide with the gates of this YAML file (a 'gates:' list) instead of the scenario's.")
@click.option("--on-inconclusive", type=click.Choice(["fail", "pass"]), help="Exit code of an INCONCLUSIVE verdict: 1 (fail) or 0 (pass).")
@store_option
@click.pass_context
def run_command(ctx: click.Context, scenario: str | None, resume: str | None, resend_changed: bool,
                skip_invalid: bool, quiet: bool,
                store_path: str, no_stream: bool, gates_file: str | None, on_inconclusive: str | None,
                report_files: dict[str, str], **flags: Any) -> None:  # fmt: skip
    """Replay a sample of logged requests against the candidate, store every outcome, and decide.

    Ends with the report and the gates' verdict: exit code 0 for PASS, 1 for FAIL
    (and for INCONCLUSIVE unless on_inconclusive: pass), 2 for bad input, 3 when the
    run did not complete.

    \b
    Examples:
      replay run scenarios/demo.yaml
      replay run --logs prod.jsonl --candidate-url http://127.0.0.1:8000/v1 --candidate-model m
      replay run --resume latest
    """
    from replay.cli.decide import load_gates_file
    from replay.scenario_file import load_scenario, scenario_from_snapshot
    from replay.progress import make_reporter
    from replay.runner import Engine

    overrides = scenario_overrides(flags)
    gates_from = load_gates_file(gates_file) if gates_file else None
    gates = gates_from.gates if gates_from else None
    if on_inconclusive is None and gates_from is not None:
        on_inconclusive = gates_from.on_inconclusive
    check_report_paths(report_files)
    store = open_store(store_path, create=not resume)
    if resume:
        budget = overrides.pop("limits.budget_usd", None)
        if scenario or overrides:
            raise click.UsageError("--resume takes no scenario and no override flags but --budget: the run keeps its own")
        row = store.get_run(resume)
        config, run_id = scenario_from_snapshot(row.scenario), row.id
        if budget is not None:  # a run stopped by its budget is finished with a larger one
            config = dataclasses.replace(config, budget_usd=budget)
    else:
        if resend_changed:
            raise click.UsageError("--resend-changed goes with --resume")
        decision = {"gates": gates, "on_inconclusive": on_inconclusive}
        config, run_id = load_scenario(scenario, {**overrides, **decision}), None
        if no_stream:
            config = config.without_streaming()
    from replay.settings import decision_from
    from replay.stages import run_stages

    preparing = PrepareReport()
    stages = [*run_stages(config, decision_from(dict(config.decision))), preparing]
    observer = None if resume else warn_before_sending(config)
    engine = Engine(config, store, run_id=run_id, skip_invalid=skip_invalid, reporter=make_reporter(quiet),
                    resend_changed=resend_changed, stages=stages, observer=observer)  # fmt: skip
    from replay.errors import RunIncomplete

    try:
        summary = engine.run()
    except RunIncomplete as exc:
        click.echo(resume_hint(exc.run_id, exc.status, store_path), err=True)
        raise
    if summary.invalid_lines:
        click.echo(f"skipped {summary.invalid_lines} invalid log line(s)", err=True)
    if summary.read is not None:
        from replay.cli.logs import skipped_notes

        for line in skipped_notes(summary.read):
            click.echo(line, err=True)
    click.echo(summary_text(store, summary, store_path, config), err=True)
    preparing.wait()
    ctx.exit(decide_and_report(store, summary.run_id, report_files, gates, on_inconclusive))


class PrepareReport(PairStage):
    """While the replay waits on the network, do in a second thread what the report after the
    last answer would otherwise begin with: import its modules, draw the bootstrap's resample
    counts for the run's number of pairs, and render a table once (rich builds its caches on
    first use). The report then starts warm; with the GIL, this thread takes the CPU only
    while the engine waits on its sockets."""

    name = "prepare-report"

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    def start(self, services: StageServices) -> None:
        self._thread = threading.Thread(target=_prepare_report, args=(services.planned,), name="replay-prepare-report",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def offer(self, pair: AnsweredPair) -> None:
        pass

    def wait(self) -> None:
        """Let the preparation finish (at most a few seconds): redoing it would cost more."""
        if self._thread is not None:
            self._thread.join(PREPARE_WAIT_S)


PREPARE_WAIT_S = 5.0


def _prepare_report(pairs: int) -> None:
    import io

    from rich.console import Console
    from rich.table import Table

    from replay.evaluate import prepare_evaluation
    from replay.reports import renderers

    renderers()
    prepare_evaluation(pairs)
    table = Table("gate", "verdict")
    table.add_row("error_rate", "PASS")
    Console(file=io.StringIO(), width=80, highlight=False, soft_wrap=False).print(table)


def warn_before_sending(config: Any) -> Any:
    """A tally fed by the run's own first pass (no second read of the log) that, once the
    sample is picked and before anything is sent, warns on stderr, one line per gate, where
    the sample cannot settle a gate for a candidate equal to the baseline (``replay plan``'s
    lines, measured on a uniform sample of at most RUN_KEEP records). None without gates:
    nothing to tally."""
    from replay.plan import RUN_KEEP, build_plan, tally_for

    def warn(tally: Any) -> None:
        for line in build_plan(config, tally).warnings():
            click.echo(f"warning: {visible(line)}", err=True)

    tally = tally_for(config, on_scanned=warn, keep=RUN_KEEP)
    return tally if tally.settings.gates else None


def decide_and_report(store: Any, run_id: str, report_files: dict[str, str], gates: Any = None,
                      on_inconclusive: str | None = None) -> int:  # fmt: skip
    """Print the terminal report, write the report files; the verdict's exit code."""
    from replay.evaluate import evaluate

    evaluation = evaluate(store, run_id, gates, on_inconclusive=on_inconclusive)
    print_terminal(evaluation)
    write_reports(evaluation, report_files)
    return evaluation.decision.exit_code


def resume_hint(run_id: str | None, status: str, store_path: str) -> str:
    """Two lines: what happened, then the command on a line of its own, so that neither a
    narrow terminal nor a triple-click breaks the run id or the command."""
    command = f"replay run --resume {run_id}"
    if store_path != DEFAULT_STORE:
        command += f" --store {shlex.quote(store_path)}"
    if status == "budget_exhausted":
        command += " --budget USD"  # the same budget would stop it again
    return f"run {run_id}: {status}; resume with:\n  {command}"


def summary_text(store: Any, summary: Any, store_path: str, scenario: Any) -> str:
    counts = store.counts(summary.run_id)
    estimated = store.estimated_counts(summary.run_id)
    lines = [f"run {summary.run_id}: {summary.status}", f"  sampled requests: {summary.planned}"]
    for arm in sorted(counts):
        ok, errors = counts[arm].get("ok", 0), counts[arm].get("error", 0)
        lines.append(f"  {arm}: {ok} ok, {errors} errors" + estimated_note(arm, estimated.get(arm, 0)))
    unpriced = unpriced_models(scenario, store.priced_arms(summary.run_id))
    lines.append(f"  spent: {spent_text(summary.spent_usd, unpriced)}")
    if getattr(scenario, "judge", None) is not None:
        lines.append(f"  of which the judge: ${store.judge_spent(summary.run_id):.4f}")
    lines.append(f"  store: {store_path}")
    return visible("\n".join(lines), multiline=True)


def estimated_note(arm: str, n: int) -> str:
    """What the summary adds to an arm some of whose answers came without usage."""
    if not n:
        return ""
    source = "the log has" if arm == "logged" else "the endpoint sent"
    return f" (tokens of {n} counted locally: {source} no usage)"


def unpriced_models(scenario: Any, priced: set[str] | None = None) -> list[str]:
    """The models replay sends to that have no price (the run warned about each): their
    cost is unknown, not $0. An arm in ``priced`` had every answer's cost (its endpoint reported it)."""
    from replay.pricing import PriceTable

    prices = PriceTable(scenario.prices)
    arms = [] if priced is not None and "candidate" in priced else [scenario.candidate]
    if scenario.baseline == "fresh" and scenario.production is not None and not (priced and "production" in priced):
        arms.append(scenario.production)
    if getattr(scenario, "judge", None) is not None:
        arms.append(scenario.judge.arm)
    return sorted({arm.model for arm in arms if prices.lookup(arm.model) is None})


def spent_text(spent_usd: float, unpriced: list[str]) -> str:
    if not unpriced:
        return f"${spent_usd:.4f}"
    names = ", ".join(f"'{model}'" for model in unpriced)
    if spent_usd:
        return f"${spent_usd:.4f}, plus an unknown amount for {names} (no price)"
    return f"unknown (no price for {names})"


COMMANDS = [run_command]
