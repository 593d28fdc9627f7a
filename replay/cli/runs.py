"""``replay runs``: list the runs in the store."""

from __future__ import annotations

import json
import time

import click

from replay.cli.options import open_store, store_option


@click.command(name="runs")
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines instead of a table.")
@store_option
def runs_command(as_json: bool, store_path: str) -> None:
    """List the runs in the store, newest first.

    A status of 'running' means a live process owns the run; 'abandoned' means the run was
    left running by a process that died (killed, crashed, machine restarted): finish it
    with 'replay run --resume RUN_ID'.

    \b
    Example:
      replay runs --store .replay/replay.db
    """
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
    from rich.console import Console
    from rich.table import Table

    table = Table("run", "name", "status", "planned", "outcomes", "errors", "started", "seconds")
    for row in rows:
        table.add_row(*(str(row[key]) if row[key] is not None else "-" for key in
                        ("id", "name", "status", "planned", "outcomes", "errors", "started", "seconds")))  # fmt: skip
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)


COMMANDS = [runs_command]
