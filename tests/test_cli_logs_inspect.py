"""``replay logs inspect`` and ``replay logs convert``: whole outputs and exit codes."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from conftest import ROOT, record, write_log
from replay.cli import cli

LOGS = os.path.join(ROOT, "fixtures", "logs")
LANGFUSE_V1 = os.path.join(LOGS, "langfuse", "observations_v1.jsonl")
LITELLM = os.path.join(LOGS, "litellm", "standard_logging.jsonl")


def logs(*args):
    return CliRunner().invoke(cli, ["logs", *map(str, args)])


def test_inspect_describes_each_file_and_the_whole():
    result = logs("inspect", LANGFUSE_V1, LITELLM)
    assert result.exit_code == 0
    assert result.stderr == (f"note: {LANGFUSE_V1}: format detected as langfuse\n"
                             f"note: {LITELLM}: format detected as litellm\n")  # fmt: skip
    assert result.stdout.splitlines() == [
        "files:",
        f"  {LANGFUSE_V1} (langfuse): 3 records, 1 skipped: SPAN observation (only GENERATION is a request)",
        f"  {LITELLM} (litellm): 4 records",
        "records: 7",
        "formats: langfuse 1, litellm 1",
        "models: support-model 4, gpt-4o-mini 3",
        "date range: 2025-12-01T12:01:00Z to 2026-12-01T10:03:00.000Z",
        "segments:",
        "  trace: trace-1 1, trace-2 1, trace-3 1",
        "  name: support-answer 3",
        "  category: support 3",
        "  model: gpt-4o-mini 4",
        "  provider: openai 4",
        "  user: customer-1 2, customer-2 1, customer-3 1",
        "  session_id: trace-1 2, trace-2 1, trace-3 1",
        "  team: team-support 4",
        "  cache_hit: False 4",
        "tokens: 150 prompt, 90 completion (logged answers)",
        "errors: 1 (14.3%)",
        "without a response: 0",
        "duplicate requests: 1",
    ]


def test_inspect_json_counts_what_the_text_shows(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [
        {**record("a"), "metadata": {"category": "billing"}, "timestamp": "2026-11-01T10:00:00+02:00"},
        {**record("b"), "metadata": {"category": "billing"}, "timestamp": "2026-11-01T09:00:00Z"},
        {**record("c"), "error": "timeout", "status": 504, "response": None},
        {**record("d"), "response": None},
    ])  # fmt: skip
    result = logs("inspect", log, "--json")
    assert result.exit_code == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    assert data["files"] == [{"path": log, "format": "shadow", "records": 4, "invalid": 0, "skipped": {}}]
    assert data["date_range"] == {"first": "2026-11-01T10:00:00+02:00", "last": "2026-11-01T09:00:00Z"}  # by instant
    assert data["segments"] == {"category": {"billing": 2, "a": 2}}
    assert (data["errors"], data["error_share"], data["without_response"]) == (1, 0.25, 1)
    assert data["duplicate_requests"] == 3  # record() sends the same request each time


def test_inspect_stops_on_a_malformed_record_unless_told_to_skip(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record("a"), {"id": "b", "request": {"messages": []}}])
    result = logs("inspect", log)
    assert result.exit_code == 2
    assert result.stdout == "" and result.stderr == f"Error: {log}:2: 'request.messages' must be a non-empty list\n"
    result = logs("inspect", log, "--skip-invalid", "--json")
    assert result.exit_code == 0
    assert result.stderr == f"{log}:2: 'request.messages' must be a non-empty list\n"
    assert json.loads(result.stdout)["invalid"] == 1


def test_escape_sequences_from_the_log_are_shown_inert(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [{**record("a"), "metadata": {"team": "\x1b[2J[bold]x"}}])
    result = logs("inspect", log)
    assert "  team: \\x1b[2J[bold]x 1" in result.stdout.splitlines() and "\x1b" not in result.stdout


def test_convert_writes_a_shadow_log_the_run_reads(tmp_path):
    out = tmp_path / "batch.jsonl"
    result = logs("convert", os.path.join(LOGS, "openai-batch"), "--to", "shadow", "-o", out)
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == f"wrote 4 records to {out}"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["req-1", "req-2", "req-3", "req-4"]
    assert lines[0]["response"]["choices"][0]["message"]["content"] == "Yes, we ship to Norway within 5 business days."
    assert lines[3]["status"] == 400 and "response" not in lines[3]
    again = logs("validate", out)
    assert (again.exit_code, again.stdout) == (0, "ok: 4 records in 1 file(s)\n")


def test_convert_refuses_to_overwrite_an_input_and_leaves_no_partial_file(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [record("a")])
    result = logs("convert", log, "-o", log)
    assert result.exit_code == 2 and result.stderr == f"Error: -o: '{log}' is one of the inputs: write to another file\n"
    bad = write_log(tmp_path / "bad.jsonl", [record("a"), "{oops"])
    out = tmp_path / "out.jsonl"
    result = logs("convert", bad, "-o", out)
    assert result.exit_code == 2 and not out.exists() and not (tmp_path / "out.jsonl.partial").exists()
