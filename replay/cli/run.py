"""``replay run``: read the logs, replay the sample, store every outcome."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from replay.cli.options import open_store, store_option
from replay.store import DEFAULT_STORE

# flag name -> dotted scenario key it overrides
OVERRIDES = {
    "logs": "logs",
    "name": "name",
    "log_format": "format",
    "baseline": "baseline",
    "candidate_url": "candidate.base_url",
    "candidate_model": "candidate.model",
    "candidate_key_env": "candidate.api_key_env",
    "production_url": "production.base_url",
    "production_model": "production.model",
    "production_key_env": "production.api_key_env",
    "sample": "sample.rate",
    "max_records": "sample.max",
    "seed": "sample.seed",
    "concurrency": "limits.concurrency",
    "rpm": "limits.rpm",
    "tpm": "limits.tpm",
    "timeout": "limits.timeout_s",
    "max_attempts": "limits.max_attempts",
    "budget": "limits.budget_usd",
}


@click.command(name="run")
@click.argument("scenario", required=False, type=click.Path(dir_okay=False))
@click.option("--logs", multiple=True, help="Shadow log file or glob (repeatable); overrides the scenario's logs.")
@click.option("--name", help="Run name (default: the scenario's name).")
@click.option("--format", "log_format", help="Log format (default: shadow).")
@click.option("--baseline", type=click.Choice(["logged", "fresh"]), help="Compare against the logged answers or re-ask production.")
@click.option("--candidate-url", help="Candidate base URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--candidate-model", help="Candidate model name.")
@click.option("--candidate-key-env", help="Environment variable holding the candidate's API key.")
@click.option("--production-url", help="Production base URL (for --baseline fresh).")
@click.option("--production-model", help="Production model name.")
@click.option("--production-key-env", help="Environment variable holding production's API key.")
@click.option("--sample", type=click.FloatRange(0, 1, min_open=True), help="Sampling rate in (0, 1].")
@click.option("--max", "max_records", type=click.IntRange(1), help="At most this many requests.")
@click.option("--seed", type=int, help="Sampling seed.")
@click.option("--concurrency", type=click.IntRange(1), help="Requests in flight per arm.")
@click.option("--rpm", type=click.FloatRange(0, min_open=True), help="Requests per minute per arm.")
@click.option("--tpm", type=click.FloatRange(0, min_open=True), help="Tokens per minute per arm.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), help="Seconds per attempt.")
@click.option("--max-attempts", type=click.IntRange(1), help="Attempts per request, retries included.")
@click.option("--budget", type=click.FloatRange(0, min_open=True), help="Stop dispatching before spending more USD.")
@click.option("--no-stream", is_flag=True, help="Use non-streaming requests on every arm.")
@click.option("--resume", "resume", metavar="RUN_ID", help="Finish an interrupted run (RUN_ID or 'latest').")
@click.option("--skip-invalid", is_flag=True, help="Skip malformed log lines (counted and reported) instead of stopping.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@store_option
def run_command(scenario: str | None, resume: str | None, skip_invalid: bool, quiet: bool, store_path: str,
                no_stream: bool, **flags: Any) -> None:  # fmt: skip
    """Replay a sample of logged requests against the candidate and store every outcome.

    \b
    Examples:
      replay run scenarios/demo.yaml
      replay run --logs prod.jsonl --candidate-url http://127.0.0.1:8000/v1 --candidate-model m
      replay run --resume latest
    """
    from replay.config import load_scenario, scenario_from_snapshot
    from replay.progress import make_reporter
    from replay.runner import Engine

    overrides = {OVERRIDES[key]: value for key, value in flags.items() if value not in (None, ())}
    if "logs" in overrides:
        overrides["logs"] = list(overrides["logs"])
    store = open_store(store_path)
    if resume:
        if scenario or overrides:
            raise click.UsageError("--resume takes no scenario and no override flags: the run keeps its own")
        row = store.get_run(resume)
        config, run_id = scenario_from_snapshot(row.scenario), row.id
    else:
        config, run_id = load_scenario(scenario, overrides), None
        if no_stream:
            config = config.without_streaming()
    engine = Engine(config, store, run_id=run_id, skip_invalid=skip_invalid, reporter=make_reporter(quiet))
    from replay.errors import RunIncomplete

    try:
        summary = engine.run()
    except RunIncomplete as exc:
        resume_cmd = f"replay run --resume {exc.run_id}"
        if store_path != DEFAULT_STORE:
            resume_cmd += f" --store {shlex.quote(store_path)}"
        click.echo(f"run {exc.run_id}: {exc.status}; resume with: {resume_cmd}", err=True)
        raise
    if summary.invalid_lines:
        click.echo(f"skipped {summary.invalid_lines} invalid log line(s)", err=True)
    click.echo(_summary_text(store, summary, store_path))


def _summary_text(store: Any, summary: Any, store_path: str) -> str:
    counts = store.counts(summary.run_id)
    lines = [f"run {summary.run_id}: {summary.status}", f"  sampled requests: {summary.planned}"]
    for arm in sorted(counts):
        ok, errors = counts[arm].get("ok", 0), counts[arm].get("error", 0)
        lines.append(f"  {arm}: {ok} ok, {errors} errors")
    lines.append(f"  spent: ${summary.spent_usd:.4f}")
    lines.append(f"  store: {store_path}")
    return "\n".join(lines)


COMMANDS = [run_command]
