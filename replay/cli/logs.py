"""``replay logs validate``: check shadow logs before a run."""

from __future__ import annotations

import click

from replay.cli.options import number_type
from replay.readers.base import DEFAULT_MAX_RECORD_MB

MAX_SHOWN = 20


@click.group(name="logs")
def logs_group() -> None:
    """Inspect shadow logs."""


@logs_group.command(name="validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", default="auto", show_default=True, help="Log format (auto: detected per file).")
@click.option("--max-record-mb", type=number_type("max_record_mb"), default=DEFAULT_MAX_RECORD_MB, show_default=True,
              help="Longest line to read, in MB; a longer one is reported.")  # fmt: skip
def validate_command(files: tuple[str, ...], fmt: str, max_record_mb: float) -> None:
    """Check that every line of FILES (files, globs or directories of *.jsonl) is a
    record the run can use, with unique ids: the request as an endpoint checks it
    (roles, content, parameter types) and the logged answer as the run reads it.

    Prints each bad line as PATH:LINE: reason (the first 20) and exits 2 if any, or if
    there is no record at all.

    \b
    Example:
      replay logs validate fixtures/logs/support.jsonl
    """
    from replay.errors import InputError
    from replay.readers import ReadStats, check_not_empty, iter_records, resolve_log_paths

    paths = resolve_log_paths(list(files))
    stats = ReadStats()

    def show(error: Exception) -> None:
        if stats.invalid <= MAX_SHOWN:
            click.echo(str(error), err=True)

    records = iter_records(paths, fmt=fmt, skip_invalid=True, stats=stats, on_invalid=show,
                           max_record_bytes=int(max_record_mb * 2**20))  # fmt: skip
    for _ in records:
        pass
    if stats.invalid:
        raise InputError(f"{stats.invalid} invalid line(s), {stats.records} valid record(s)")
    check_not_empty(paths, stats)
    for path in stats.empty_files:
        click.echo(f"note: {path}: the log is empty (no records)", err=True)
    click.echo(f"ok: {stats.records} records in {len(paths)} file(s)")


COMMANDS = [logs_group]
