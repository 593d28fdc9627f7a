"""``replay logs validate``: check shadow logs before a run."""

from __future__ import annotations

import click

MAX_SHOWN = 20


@click.group(name="logs")
def logs_group() -> None:
    """Inspect shadow logs."""


@logs_group.command(name="validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", default="shadow", show_default=True, help="Log format.")
def validate_command(files: tuple[str, ...], fmt: str) -> None:
    """Check that every line of FILES is a valid record, with unique ids.

    Prints each bad line as PATH:LINE: reason (the first 20) and exits 2 if any.

    \b
    Example:
      replay logs validate fixtures/logs/support.jsonl
    """
    from replay.errors import InputError
    from replay.readers import ReadStats, iter_records, resolve_log_paths

    paths = resolve_log_paths(list(files))
    stats = ReadStats()

    def show(error: Exception) -> None:
        if stats.invalid <= MAX_SHOWN:
            click.echo(str(error), err=True)

    for _ in iter_records(paths, fmt=fmt, skip_invalid=True, stats=stats, on_invalid=show):
        pass
    if stats.invalid:
        raise InputError(f"{stats.invalid} invalid line(s), {stats.records} valid record(s)")
    click.echo(f"ok: {stats.records} records in {len(paths)} file(s)")


COMMANDS = [logs_group]
