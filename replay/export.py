"""Exports of a run's stored results as JSON Lines or CSV, one row per request and arm."""

from __future__ import annotations

import csv
import json
from typing import IO, Any, Iterator

from replay.store import Store

JSON_COLUMNS = ("tool_calls_json", "attempts_json", "params_json", "metadata_json")


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
