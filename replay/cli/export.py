"""``replay export``: a stored run's results as JSON Lines or CSV."""

from __future__ import annotations

import sys

import click

from replay.cli.options import open_store, store_option


@click.command(name="export")
@click.argument("run_ref", metavar="RUN")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file instead of stdout.")
@store_option
def export_command(run_ref: str, fmt: str, output: str | None, store_path: str) -> None:
    """Export every stored outcome of RUN (an id, a prefix or 'latest').

    \b
    Examples:
      replay export latest --format csv -o results.csv
      replay export 20261123-101500-ab12cd | jq .latency_ms
    """
    from replay.export import export_rows, write_csv, write_jsonl

    store = open_store(store_path)
    run = store.get_run(run_ref)
    writer = write_csv if fmt == "csv" else write_jsonl
    if output:
        with open(output, "w", encoding="utf-8", newline="") as handle:
            count = writer(export_rows(store, run.id), handle)
        click.echo(f"wrote {count} rows to {output}", err=True)
    else:
        writer(export_rows(store, run.id), sys.stdout)


COMMANDS = [export_command]
