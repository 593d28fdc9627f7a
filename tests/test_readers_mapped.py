"""``csv`` / ``jsonl`` with a ``mapping:``: home-grown logs read by naming their fields."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from conftest import ROOT
from replay.cli import cli
from replay.errors import InputError, LogFormatError
from replay.readers import ReadStats, iter_records
from replay.readers.mapped import mapped_format
from replay.scenario_file import build_scenario, scenario_from_snapshot

CSV = os.path.join(ROOT, "fixtures", "logs", "csv", "support.csv")
JSONL = os.path.join(ROOT, "fixtures", "logs", "jsonl", "app_log.jsonl")
CSV_MAPPING = {"id": "request_id", "messages": "payload.messages", "model": "payload.model", "response_text": "output",
               "latency_ms": "duration", "status": "status", "timestamp": "created_at", "metadata.category": "route"}  # fmt: skip
CANDIDATE = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}


def read(path, fmt, **kwargs):
    return list(iter_records([path], fmt=fmt, stats=ReadStats(), **kwargs))


def test_a_csv_log_is_read_through_the_issues_mapping():
    records = read(CSV, mapped_format("csv", CSV_MAPPING))
    assert [(r.id, str(r.location)) for r in records] == [("hx-1", f"{CSV}:2"), ("hx-2", f"{CSV}:3"), ("hx-3", f"{CSV}:5")]
    first = records[0]
    assert first.request == {"messages": [{"role": "user", "content": "Why was I charged twice?"}], "model": "gpt-4o-mini"}
    assert first.answer.text == "I'm sorry about that, I've flagged it for a refund."
    assert (first.latency_ms, first.status, first.timestamp) == (812.0, 200, "2026-12-01T09:00:00Z")
    assert first.metadata == {"category": "/support/billing"}
    assert records[1].answer.text == "Parcel 3471 is in transit,\nand should arrive within 3 business days."  # a quoted line break
    assert records[2].answer is None and records[2].status == 503  # an empty cell is no answer


def test_a_jsonl_log_maps_nested_keys_and_epoch_seconds():
    fmt = mapped_format("jsonl", {"id": "request_id", "request": "payload", "response_text": "output",
                                  "timestamp": "ts", "metadata.user": "user.id"})  # fmt: skip
    first = read(JSONL, fmt)[0]
    assert first.request["temperature"] == 0.3 and first.timestamp == "2026-12-01T09:00:00Z"
    assert first.metadata == {"user": "u-9"}


def test_a_missing_or_mistyped_field_names_the_line_and_source(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(open(CSV).read().replace(",812,", ",fast,"))
    with pytest.raises(LogFormatError) as info:
        read(str(path), mapped_format("csv", CSV_MAPPING))
    assert str(info.value) == f"{path}:2: 'duration' (mapped to latency_ms) must be a number, got 'fast'"
    with pytest.raises(LogFormatError) as info:
        read(CSV, mapped_format("csv", {**CSV_MAPPING, "latency_ms": "duration_ms"}))
    assert str(info.value) == f"{CSV}:2: 'duration_ms' (mapped to latency_ms) is missing"
    stats = ReadStats()
    assert len(list(iter_records([str(path)], fmt=mapped_format("csv", CSV_MAPPING), stats=stats, skip_invalid=True))) == 2
    assert stats.invalid == 1


def test_the_scenario_key_registers_the_reader_and_survives_a_resume():
    scenario = build_scenario({"logs": CSV, "format": "csv", "mapping": CSV_MAPPING, "candidate": CANDIDATE}, source="s.yaml")
    assert scenario.log_format.startswith("csv+mapping:") and scenario.log_mapping == CSV_MAPPING
    assert scenario_from_snapshot(scenario.snapshot()).log_format == scenario.log_format
    assert "log_mapping" not in build_scenario({"logs": CSV, "candidate": CANDIDATE}, source="s.yaml").snapshot()


@pytest.mark.parametrize("mapping, message", [
    ({"id": "a", "mesages": "b"}, "s.yaml: mapping.mesages: unknown target (did you mean 'messages'?)"),
    ({"messages": "b"}, "s.yaml: mapping.id: missing required target (the record's id)"),
    ({"id": "a"}, "s.yaml: mapping: map the request: request, messages or prompt"),
])  # fmt: skip
def test_a_bad_mapping_names_its_key(mapping, message):
    with pytest.raises(InputError) as info:
        build_scenario({"logs": CSV, "format": "csv", "mapping": mapping, "candidate": CANDIDATE}, source="s.yaml")
    assert str(info.value) == message


def test_csv_without_a_mapping_and_a_csv_under_auto_say_what_to_set():
    with pytest.raises(InputError) as info:
        read(CSV, "csv")
    assert str(info.value) == f"{CSV}: format csv or jsonl needs a mapping: of its fields (see the README's 'Log formats')"
    with pytest.raises(InputError) as info:
        read(CSV, "auto")
    assert str(info.value) == f"{CSV}: a CSV file: set format: csv and a mapping: of its columns"


def test_logs_validate_takes_the_mapping_as_flags():
    flags = [arg for target, source in CSV_MAPPING.items() for arg in ("--mapping", f"{target}={source}")]
    result = CliRunner().invoke(cli, ["logs", "validate", CSV, "--format", "csv", *flags])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "ok: 3 records in 1 file(s)\n", "")
    result = CliRunner().invoke(cli, ["logs", "validate", CSV, "--format", "csv", "--mapping", "id"])
    assert (result.exit_code, result.stderr) == (2, "Error: --mapping: expected TARGET=FIELD, got 'id'\n")


def test_reading_a_csv_log_leaves_the_csv_modules_cell_limit_as_it_was():
    import csv

    before = csv.field_size_limit()
    read(CSV, mapped_format("csv", CSV_MAPPING))
    records = iter_records([CSV], fmt=mapped_format("csv", CSV_MAPPING))
    next(records)  # a reader left waiting (a stopped run) must not leave the limit raised either
    assert csv.field_size_limit() == before
