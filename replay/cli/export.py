"""``replay export``: a stored run's results as JSON Lines, CSV or Parquet."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable

import click

from replay.cli.options import open_store, store_option


@click.command(name="export")
@click.argument("run_ref", metavar="RUN")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default="jsonl", show_default=True,
              help="parquet: typed columns, JSON-valued ones as JSON text; needs -o and pyarrow (replay[parquet]).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file instead of stdout.")
@store_option
def export_command(run_ref: str, fmt: str, output: str | None, store_path: str) -> None:
    """Export every stored outcome of RUN (an id, a prefix or 'latest').

    \b
    Examples:
      replay export latest --format csv -o results.csv
      replay export 20261123-101500-ab12cd | jq .latency_ms
      replay export latest --format parquet -o results.parquet
    """
    from replay.export import export_rows, write_csv, write_jsonl

    if fmt == "parquet":
        export_parquet(run_ref, output, store_path)
        return
    if output:
        check_output_path(output)
    store = open_store(store_path)
    run = store.get_run(run_ref)
    writer = write_csv if fmt == "csv" else write_jsonl
    if output:
        count = write_whole(output, lambda handle: writer(export_rows(store, run.id), handle))
        click.echo(f"wrote {count} rows to {output}", err=True)
    else:
        writer(export_rows(store, run.id), sys.stdout)


def export_parquet(run_ref: str, output: str | None, store_path: str) -> None:
    """Parquet is binary and ends with its index: always to a file (like DuckDB's ``COPY ... TO``
    and pandas' ``to_parquet``), written whole or not at all."""
    import importlib.util

    from replay.errors import InputError
    from replay.export import PARQUET_HINT, export_rows, write_parquet

    if not output:
        raise InputError("--format parquet writes a binary file: name it with -o FILE.parquet")
    if importlib.util.find_spec("pyarrow") is None:
        raise InputError(PARQUET_HINT)
    check_output_path(output)
    store = open_store(store_path)
    run = store.get_run(run_ref)
    count = write_whole(output, lambda handle: write_parquet(export_rows(store, run.id), handle), binary=True)
    click.echo(f"wrote {count} rows to {output}", err=True)


def check_output_path(path: str) -> None:
    """Fail before reading anything on a path that cannot be written."""
    from replay.errors import InputError

    if os.path.isdir(path):
        raise InputError(f"{path}: cannot write (it is a directory)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InputError(f"{path}: cannot write (no such directory: {parent})")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: cannot write ({parent} is not writable)")


def write_whole(path: str, write: Callable[[Any], int], binary: bool = False) -> int:
    """Write through a temporary file renamed into place: a failed export leaves no half file.
    ``write`` gets a text handle, or a binary one with ``binary``."""
    from replay.errors import InputError

    tmp = f"{path}.tmp"
    try:
        with (open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8", newline="")) as handle:
            count = write(handle)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:  # an interrupt or a bug: still no half file
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return count


COMMANDS = [export_command]
