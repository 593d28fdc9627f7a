"""Exports of a run's stored results as JSON Lines, CSV or Parquet, one row per request and arm."""

from __future__ import annotations

import csv
import json
from typing import IO, Any, Iterator

from replay.store import RESULT_COLUMNS, Store

JSON_COLUMNS = ("tool_calls_json", "attempts_json", "params_json", "metadata_json")
EXPORT_COLUMNS = tuple(dict.fromkeys(["run_id", *(name.removesuffix("_json") for name in (*RESULT_COLUMNS, "seq", "metadata_json"))]))
"""The columns of every export, in order (a JSON column named without its ``_json``; ``attempts``
is the list of attempts, which replaces their count)."""


def export_rows(store: Store, run_id: str) -> Iterator[dict[str, Any]]:
    for row in store.results(run_id):
        out: dict[str, Any] = {"run_id": run_id}
        for key, value in row.items():
            if key in JSON_COLUMNS:
                out[key[: -len("_json")]] = json.loads(value) if value else None
            else:
                out[key] = value
        out["tokens_estimated"] = bool(out["tokens_estimated"])
        yield out


def write_jsonl(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    writer: csv.DictWriter[str] | None = None
    count = 0
    for row in rows:
        flat = {key: json.dumps(value) if isinstance(value, (dict, list)) else value for key, value in row.items()}
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(flat))
            writer.writeheader()
        writer.writerow(flat)
        count += 1
    return count


PARQUET_BATCH_ROWS = 4096
"""Rows converted and written at a time: the export's memory, whatever the run's size."""
PARQUET_HINT = "--format parquet needs pyarrow, which is not installed: pip install 'replay[parquet]'"


def parquet_schema(names: list[str]) -> Any:
    """Typed columns, in the JSON Lines export's order; JSON-valued columns (``tool_calls``,
    ``attempts``, ``params``, ``metadata``) as JSON text, which any reader (DuckDB's ``json``
    functions, ``json.loads``) opens whatever keys each row has; ``completed_at`` as a UTC time.
    A column this list does not know is text."""
    import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]

    types = {
        "http_status": pa.int64(), "latency_ms": pa.float64(), "ttft_ms": pa.float64(),
        "prompt_tokens": pa.int64(), "completion_tokens": pa.int64(), "tokens_estimated": pa.bool_(),
        "cost_usd": pa.float64(), "completed_at": pa.timestamp("us", tz="UTC"), "seq": pa.int64(),
    }  # fmt: skip
    return pa.schema([pa.field(name, types.get(name, pa.string())) for name in names])


def _parquet_row(row: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime, timezone

    typed: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        elif key == "completed_at" and value is not None:
            value = datetime.fromtimestamp(value, tz=timezone.utc)
        typed[key] = value
    return typed


def write_parquet(rows: Iterator[dict[str, Any]], out: IO[bytes]) -> int:
    """The rows as one Parquet file, written :data:`PARQUET_BATCH_ROWS` at a time."""
    import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]

    count = 0
    writer: Any = None
    batch: list[dict[str, Any]] = []
    try:
        for row in rows:
            if writer is None:
                schema = parquet_schema([name for name in row])
                writer = pq.ParquetWriter(out, schema, compression="zstd")
            batch.append(_parquet_row(row))
            if len(batch) == PARQUET_BATCH_ROWS:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
                count += len(batch)
                batch.clear()
        if writer is None:  # a run without results: the columns, no rows
            writer = pq.ParquetWriter(out, parquet_schema(list(EXPORT_COLUMNS)), compression="zstd")
        elif batch:
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
            count += len(batch)
    finally:
        if writer is not None:
            writer.close()
    return count
