"""``replay purge --older-than 30d`` and ``replay runs delete RUN``: remove runs, their results,
and the cached verdicts and vectors only they used, then compact the store so the deleted text
is gone from the file and its WAL. For CI as much as for people: nothing is asked on stdin
(naming the runs, or the age, is the confirmation), ``--dry-run`` says what would go, and what
was removed is said on stderr."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import click

from replay.cli.options import open_store, store_option
from replay.store import DEFAULT_STORE

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")


class Duration(click.ParamType):
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s``: seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)):
            return float(value)
        match = _DURATION.fullmatch(str(value))
        if match is None or float(match.group(1)) <= 0:
            self.fail(f"{value!r} is not a duration such as 30d, 12h, 2w, 90m or 45s", param, ctx)
        return float(match.group(1)) * UNITS[match.group(2)]


@click.command(name="purge")
@click.option("--older-than", "older_than", type=Duration(), required=True, metavar="DURATION",
              help="Remove the runs started longer ago than this: 30d, 12h, 2w, 90m, 45s.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@store_option
def purge_command(older_than: float, dry_run: bool, store_path: str) -> None:
    """Remove the runs started longer ago than --older-than, with every row of theirs, then
    VACUUM the store (and truncate its WAL) so the removed text is gone from its bytes.

    A run a live process is still running is kept (and said so). Nothing is asked: this is
    meant for a scheduled job as much as for a person; --dry-run shows what would go.

    \b
    Examples:
      replay purge --older-than 30d
      replay purge --older-than 12h --dry-run --store .replay/replay.db
    """
    store = open_store(store_path)
    cutoff = time.time() - older_than
    since = f"started before {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(cutoff))}"
    runs = store.runs_started_before(cutoff)
    live = [run for run in runs if store.owner(run.id) is not None]
    for run in live:
        click.echo(f"kept run {run.id}: a live process is running it", err=True)
    runs = [run for run in runs if run not in live]
    if not runs:
        click.echo(f"no run {since} in {store_path}", err=True)
        return
    _remove(store, runs, dry_run, f"{len(runs)} run(s) {since}")


@click.command(name="delete")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@store_option
@click.pass_context
def delete_command(ctx: click.Context, run_refs: tuple[str, ...], dry_run: bool, store_path: str) -> None:
    """Remove the named runs (ids, unique prefixes or 'latest') with every row of theirs, then
    VACUUM the store (and truncate its WAL) so the removed text is gone from its bytes.

    A run a live process is running is refused. Nothing is asked: naming the runs is the
    confirmation; --dry-run shows what would go.

    \b
    Example:
      replay runs delete 20261123-101500-ab12cd
    """
    parent = ctx.parent.params.get("store_path") if ctx.parent is not None else None
    if store_path == DEFAULT_STORE and parent:  # ``replay runs --store X delete RUN``
        store_path = parent
    store = open_store(store_path)
    runs = list({run.id: run for run in (store.get_run(ref) for ref in run_refs)}.values())
    _remove(store, runs, dry_run, f"{len(runs)} run(s)")


def _remove(store: Any, runs: list[Any], dry_run: bool, what: str) -> None:
    from replay.errors import RunInUse
    from replay.reports.escape import visible

    ids = [run.id for run in runs]
    for run in runs:
        if store.owner(run.id) is not None:
            raise RunInUse(f"run {run.id} is being run by a live process: stop it first (nothing was removed)")
    counts = store.run_rows(ids) if dry_run else store.delete_runs(ids)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {what}: {_rows(counts)}", err=True)
    for run in runs:
        click.echo(visible(f"  {run.id}  {run.name}  {run.status}"), err=True)
    if dry_run:
        return
    before = _size(store.path)
    complete = store.compact()
    said = f"store compacted: {_megabytes(before)} -> {_megabytes(_size(store.path))}"
    if not complete:
        said += ("; another process has it open, so its WAL (which may still hold removed text) could not be"
                 " truncated: run this again once that process is done")
    click.echo(said, err=True)


def _rows(counts: dict[str, int]) -> str:
    """``60 cases, 120 results, 60 comparisons``: the tables with rows removed (the run itself and its lease aside)."""
    parts = [f"{n:,} {table}" for table, n in counts.items() if n and table not in ("runs", "run_owners")]
    return ", ".join(parts) or "no results"


def _size(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


COMMANDS = [purge_command]
