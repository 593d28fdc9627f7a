"""``openai-batch``: a Batch input file joined with its output and error files by ``custom_id``."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import ROOT
from replay.errors import InputError, LogFormatError
from replay.readers import ReadStats, iter_records, resolve_log_paths
from replay.scenario_file import build_scenario

BATCH = os.path.join(ROOT, "fixtures", "logs", "openai-batch")


def read(paths, **kwargs):
    stats = ReadStats()
    return list(iter_records(paths, fmt="openai-batch", stats=stats, **kwargs)), stats


def test_a_folder_holding_input_output_and_errors_is_joined_by_custom_id():
    records, stats = read(resolve_log_paths(BATCH))
    assert [r.id for r in records] == ["req-1", "req-2", "req-3", "req-4"]  # the input's order, not the output's
    first = records[0]
    assert first.request["messages"][1] == {"role": "user", "content": "Can you ship to Norway?"}
    assert first.request["max_completion_tokens"] == 200
    assert first.status == 200 and first.error is None and first.latency_ms is None
    assert first.answer.text == "Yes, we ship to Norway within 5 business days."
    assert (first.answer.usage.prompt_tokens, first.answer.model) == (25, "gpt-4o-mini-2024-07-18")
    assert first.metadata == {"request_id": "req_" + "0" * 31 + "1", "batch_request_id": "batch_req_0001",
                              "category": "shipping"}  # fmt: skip
    failed = records[3]
    assert failed.status == 400 and failed.answer is None
    assert failed.error["code"] == "context_length_exceeded"
    assert stats.per_file == {os.path.join(BATCH, "batch_in.jsonl"): 4}


def test_the_scenario_names_the_files_with_input_output_error():
    scenario = build_scenario({"logs": {"input": "in.jsonl", "output": "out.jsonl", "error": "err.jsonl"},
                               "candidate": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}, source="s.yaml")  # fmt: skip
    assert scenario.logs == ("in.jsonl", "out.jsonl", "err.jsonl") and scenario.log_format == "auto"


@pytest.mark.parametrize("logs, message", [
    ({"output": "out.jsonl"}, "s.yaml: logs.input: missing required key (the Batch input file)"),
    ({"input": "in.jsonl", "outptu": "out.jsonl"}, "s.yaml: logs.outptu: unknown key (expected input, output, error)"),
    ({"input": 5}, "s.yaml: logs.input: expected a path"),
])  # fmt: skip
def test_a_bad_logs_mapping_names_its_key(logs, message):
    with pytest.raises(InputError) as info:
        build_scenario({"logs": logs, "candidate": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}, source="s.yaml")
    assert str(info.value) == message


def test_an_input_without_its_output_reads_requests_without_answers():
    records, _ = read([os.path.join(BATCH, "batch_in.jsonl")])
    assert len(records) == 4 and all(r.answer is None and r.status is None for r in records)
    assert records[0].metadata["batch_answer"] == "missing"


def test_an_output_file_alone_is_an_error_that_asks_for_the_input():
    out = os.path.join(BATCH, "batch_out.jsonl")
    with pytest.raises(LogFormatError) as info:
        read([out])
    assert str(info.value) == f"{out}: an OpenAI Batch output file without its input file (give both: logs: {{input: ..., output: ...}})"


def test_a_malformed_input_line_names_file_line_and_field(tmp_path):
    folder = tmp_path / "batch"
    shutil.copytree(BATCH, folder)
    lines = (folder / "batch_in.jsonl").read_text().splitlines()
    bad = json.loads(lines[1])
    bad["body"]["messages"][0]["role"] = "usr"
    lines[1] = json.dumps(bad)
    lines[2] = "{not json"
    (folder / "batch_in.jsonl").write_text("\n".join(lines) + "\n")
    path = str(folder / "batch_in.jsonl")
    with pytest.raises(LogFormatError) as info:
        read(resolve_log_paths(str(folder)))
    assert str(info.value) == (f"{path}:2: 'body.messages[0].role' is 'usr':"
                               " expected one of system, developer, user, assistant, tool, function")  # fmt: skip
    errors = []
    records, stats = read(resolve_log_paths(str(folder)), skip_invalid=True, on_invalid=errors.append)
    assert [r.id for r in records] == ["req-1", "req-4"] and stats.invalid == 2
    assert [str(e).split(": ")[0] for e in errors] == [f"{path}:2", f"{path}:3"]
    assert stats.invalid_per_file == {path: 2}


def test_requests_to_other_endpoints_are_skipped_and_counted(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"custom_id": "e1", "method": "POST", "url": "/v1/embeddings",
                                "body": {"model": "text-embedding-3-small", "input": "hi"}}) + "\n"
                    + open(os.path.join(BATCH, "batch_in.jsonl")).readline())  # fmt: skip
    records, stats = read([str(path)])
    assert [r.id for r in records] == ["req-1"]
    assert dict(stats.skipped[str(path)]) == {"not a chat completion ('/v1/embeddings')": 1}
