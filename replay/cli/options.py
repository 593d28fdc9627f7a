"""Option bundles shared by several commands."""

from __future__ import annotations

import math
from typing import Any, Callable

import click

from replay.store import DEFAULT_STORE

F = Callable[..., Any]


def store_option(func: F) -> F:
    return click.option(
        "--store",
        "store_path",
        default=DEFAULT_STORE,
        show_default=True,
        envvar="REPLAY_STORE",
        type=click.Path(dir_okay=False),
        help="SQLite file holding runs and results.",
    )(func)


def open_store(path: str, create: bool = False) -> Any:
    """The store at ``path``; only commands that record runs create it (``create``), the others
    say that a missing store is missing, and read one they cannot write read-only."""
    from replay.store import Store

    return Store(path, create=create)


class _FiniteFloatRange(click.FloatRange):
    """click's FloatRange lets ``nan`` through (every comparison with NaN is false)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class _IntRange(click.IntRange):
    """An IntRange whose 64-bit bound (the store's limit, not a choice) reads as 2**63 in help and errors."""

    def _describe_range(self) -> str:
        from replay.config import INT64

        if self.max == INT64:
            return f"{'-2**63' if self.min == -INT64 - 1 else self.min}<=x<2**63"
        return super()._describe_range()


def number_type(key: str) -> click.ParamType:
    """The click type of the flag overriding the numeric scenario ``key`` (same range)."""
    from replay.config import RANGES

    limits = RANGES[key]
    if limits.integer:
        return _IntRange(int(limits.low), int(limits.high))
    return _FiniteFloatRange(limits.low, limits.high, min_open=limits.low_open)


def finite_float(low: float | None = None, high: float | None = None, min_open: bool = False) -> click.ParamType:
    return _FiniteFloatRange(low, high, min_open=min_open)


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
    "max_record_mb": "max_record_mb",
    "noise_floor": "noise_floor.sample",
    "redact": "redact",
    "since": "sample.since",
    "until": "sample.until",
    "dedupe": "sample.dedupe",
}
"""Flag name -> the dotted scenario key it overrides (``replay run`` and ``replay plan``)."""


def scenario_options(func: F) -> F:
    """The flags that override a scenario's keys (:data:`OVERRIDES`): one list for every
    command that loads a scenario, so ``replay plan`` plans exactly what ``replay run`` sends."""
    options = [
        click.option("--logs", multiple=True, help="Shadow log file or glob (repeatable); overrides the scenario's logs."),
        click.option("--name", help="Run name (default: the scenario's name)."),
        click.option("--format", "log_format", help="Log format (default: auto, detected per file)."),
        click.option("--baseline", type=click.Choice(["logged", "fresh"]),
                     help="Compare against the logged answers or re-ask production."),
        click.option("--candidate-url", help="Candidate base URL, e.g. http://127.0.0.1:8000/v1."),
        click.option("--candidate-model", help="Candidate model name."),
        click.option("--candidate-key-env", help="Environment variable holding the candidate's API key."),
        click.option("--production-url", help="Production base URL (for --baseline fresh)."),
        click.option("--production-model", help="Production model name."),
        click.option("--production-key-env", help="Environment variable holding production's API key."),
        click.option("--sample", type=number_type("sample.rate"), help="Sampling rate in (0, 1]."),
        click.option("--max", "max_records", type=number_type("sample.max"), help="At most this many requests."),
        click.option("--seed", type=number_type("sample.seed"), help="Sampling seed."),
        click.option("--concurrency", type=number_type("limits.concurrency"), help="Requests in flight per arm."),
        click.option("--rpm", type=number_type("limits.rpm"), help="Requests per minute per arm."),
        click.option("--tpm", type=number_type("limits.tpm"), help="Tokens per minute per arm."),
        click.option("--timeout", type=number_type("limits.timeout_s"), help="Seconds per attempt."),
        click.option("--max-attempts", type=number_type("limits.max_attempts"), help="Attempts per request, retries included."),
        click.option("--budget", type=number_type("limits.budget_usd"), help="Stop dispatching before spending more USD."),
        click.option("--max-record-mb", type=number_type("max_record_mb"),
                     help="Longest log line to read, in MB [default: 8]; a longer one is an error (or skipped)."),
        click.option("--noise-floor", type=number_type("noise_floor.sample"), metavar="N",
                     help="Ask production a second time for N of the sampled requests, to measure its own noise."),
        click.option("--redact", is_flag=True, default=None,
                     help="Redact personal data and keys before storing anything (as 'redact: true'; a scenario's own 'redact:' mapping stands)."),
        click.option("--since", metavar="TIME", help="Sample records from this time on: ISO 8601 (no zone: UTC) or 7d, 12h, 30m, 2w ago."),
        click.option("--until", metavar="TIME", help="Sample records before this time (as --since)."),
        click.option("--dedupe/--no-dedupe", default=None,
                     help="Replay identical requests once, weighted by their copies in every metric."),
    ]  # fmt: skip
    for option in reversed(options):  # decorators apply bottom-up: keep the listed order in --help
        func = option(func)
    return func


def scenario_overrides(flags: dict[str, Any]) -> dict[str, Any]:
    """The dotted scenario keys the given flags set (those left out set nothing)."""
    overrides = {OVERRIDES[key]: value for key, value in flags.items() if key in OVERRIDES and value not in (None, ())}
    if "logs" in overrides:
        overrides["logs"] = list(overrides["logs"])
    return overrides
