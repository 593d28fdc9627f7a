"""``replay runs``: list the runs in the store (``replay runs delete RUN`` removes one: :mod:`replay.cli.purge`)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click

from replay.cli.options import open_store, store_option


@click.group(name="runs", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines instead of a table.")
@store_option
@click.pass_context
def runs_command(ctx: click.Context, as_json: bool, store_path: str) -> None:
    """List the runs in the store, newest first.

    The table fits the terminal (or COLUMNS) and never cuts a run id: the name folds, and
    the started and seconds columns are left out when there is no room (--json has all).

    A status of 'running' means a live process owns the run; 'abandoned' means the run was
    left running by a process that died (killed, crashed, machine restarted): finish it
    with 'replay run --resume RUN_ID'.

    \b
    Examples:
      replay runs --store .replay/replay.db
      replay runs delete 20261123-101500-ab12cd
    """
    if ctx.invoked_subcommand is not None:
        return
    store = open_store(store_path)
    rows = []
    for run in store.runs():
        counts = store.counts(run.id)
        outcomes = sum(sum(by_status.values()) for arm, by_status in counts.items() if arm != "logged")
        errors = sum(by_status.get("error", 0) for arm, by_status in counts.items() if arm != "logged")
        rows.append({
            "id": run.id, "name": run.name, "status": run.status, "planned": run.planned,
            "outcomes": outcomes, "errors": errors,
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started_at)),
            "seconds": None if run.ended_at is None else round(run.ended_at - run.started_at, 1),
            "message": run.message,
        })  # fmt: skip
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo(f"no runs in {store_path}", err=True)
        return
    print_table(rows, _console())


COLUMNS = ("id", "name", "status", "planned", "outcomes", "errors", "started", "seconds")
NUMERIC = ("planned", "outcomes", "errors", "seconds")
GAP = 2
NAME_ROOM = 16
OPTIONAL = ("started", "seconds")
"""Below NAME_ROOM columns for the name these go, in this order: the run id, which starts
with the date and time, still says when, and ``--json`` has every field."""


def print_table(rows: list[dict[str, Any]], console: Any) -> None:
    """Runs as a table that keeps every run id whole (the one thing users copy) and fits the
    console where it can: the name folds, ``started`` and ``seconds`` show when there is room."""
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    from replay.reports.escape import visible
    from replay.reports.terminal import Trimmed

    cells = [{key: "-" if row[key] is None else visible(row[key]) for key in COLUMNS} for row in rows]
    natural = {key: max(cell_len(header(key)), *(cell_len(row[key]) for row in cells)) for key in COLUMNS}

    def fixed(columns: list[str]) -> int:
        return sum(natural[key] for key in columns if key != "name") + GAP * (len(columns) - 1)

    columns = list(COLUMNS)
    for optional in OPTIONAL:
        if fixed(columns) + min(natural["name"], NAME_ROOM) > console.width:
            columns.remove(optional)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, GAP - 1, 0, 0))
    for key in columns:
        table.add_column(header(key), justify="right" if key in NUMERIC else "left", no_wrap=key != "name",
                         overflow="fold")  # fmt: skip
    for row in cells:
        table.add_row(*(Text(row[key]) for key in columns))
    needed = fixed(columns) + min(natural["name"], 4)
    if needed > console.width:  # narrower than the columns that never wrap: wider lines, not a cropped id
        console = _console(needed)
    console.print(Trimmed(table))


def header(key: str) -> str:
    return "run" if key == "id" else key


def _console(width: int | None = None) -> Any:
    """A console as wide as the terminal, or as ``COLUMNS`` says; piped without ``COLUMNS``,
    wide enough for one line per run."""
    from rich.console import Console

    if width is None and "COLUMNS" not in os.environ and not Console().is_terminal:
        width = 1_000
    return Console(highlight=False, soft_wrap=False, width=width)


def _add_subcommands() -> None:
    from replay.cli.purge import delete_command

    runs_command.add_command(delete_command)


_add_subcommands()
COMMANDS = [runs_command]
