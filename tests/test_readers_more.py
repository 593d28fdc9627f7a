"""``anthropic-batch``, ``helicone``, ``langsmith`` and ``openai-responses`` on their fixtures."""

from __future__ import annotations

import json
import os

import pytest

from conftest import ROOT
from replay.errors import InputError, LogFormatError
from replay.readers import ReadStats, iter_records, resolve_log_paths

LOGS = os.path.join(ROOT, "fixtures", "logs")
SYSTEM = "You are Acme's support assistant. Be brief and polite."


def read(spec, fmt, stats=None, **kwargs):
    records = iter_records(resolve_log_paths(os.path.join(LOGS, spec)), fmt=fmt, stats=stats or ReadStats(), **kwargs)
    return {record.id: record for record in records}


def test_message_batches_requests_are_joined_with_their_results():
    records = read("anthropic-batch", "anthropic-batch")
    assert list(records) == ["msg-1", "msg-2", "msg-3", "msg-4"]
    ok = records["msg-1"]
    assert ok.request["system"] == SYSTEM and ok.request["max_tokens"] == 300  # kept as a Messages request
    assert ok.answer.text == "Yes, we ship to Norway within 5 business days." and ok.answer.finish_reason == "stop"
    assert (ok.answer.usage.prompt_tokens, ok.answer.model) == (31, "claude-sonnet-4-5-20250929")
    assert ok.metadata == {"batch_result": "succeeded", "user": "customer-1"}
    assert records["msg-3"].error == {"type": "expired"} and records["msg-3"].answer is None
    assert records["msg-4"].error["error"]["type"] == "invalid_request_error"


def test_message_batches_results_alone_ask_for_the_requests():
    path = os.path.join(LOGS, "anthropic-batch", "results.jsonl")
    with pytest.raises(LogFormatError) as info:
        list(iter_records([path], fmt="anthropic-batch"))
    assert str(info.value) == (f"{path}: Message Batches results without the requests file"
                               " (give both: logs: {input: requests.jsonl, output: results.jsonl})")  # fmt: skip


def test_a_helicone_export_maps_bodies_timing_and_properties():
    records = read("helicone", "helicone")
    first = records["8f2c1a4e-0000-4000-8000-000000000001"]
    assert first.request["messages"][1] == {"role": "user", "content": "Can you ship to Norway?"}
    assert (first.latency_ms, first.ttft_ms, first.status, first.timestamp) == (1100.0, None, 200, "2026-12-01T08:01:00.000Z")
    assert first.metadata == {"user": "customer-1", "provider": "OPENAI", "model": "gpt-4o-mini-2024-07-18",
                              "cost_usd": 0.0000128, "category": "support", "environment": "prod"}  # fmt: skip
    assert records["8f2c1a4e-0000-4000-8000-000000000002"].ttft_ms == 380.0
    failed = records["8f2c1a4e-0000-4000-8000-000000000004"]
    assert failed.status == 500 and failed.answer is None and failed.error["type"] == "server_error"


def test_a_helicone_row_without_bodies_says_to_export_them(tmp_path):
    row = json.loads(open(os.path.join(LOGS, "helicone", "export.jsonl")).readline())
    row = {**row, "request_body": None, "signed_body_url": "https://s3.example/body?sig=x"}
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(LogFormatError) as info:
        list(iter_records([str(path)], fmt="helicone"))
    assert str(info.value) == (f"{path}:1: 'request_body' is not in the export (the bodies are behind signed_body_url:"
                               " export with --include-body)")  # fmt: skip


def test_langsmith_llm_runs_read_openai_kwargs_and_langchain_messages():
    stats = ReadStats()
    records = read("langsmith", "langsmith", stats)
    wrapped, chain = records["0c6e1b3a-5a1f-4f0e-9d3e-1a2b3c4d5e01"], records["0c6e1b3a-5a1f-4f0e-9d3e-1a2b3c4d5e02"]
    assert wrapped.request["messages"] == [{"role": "system", "content": SYSTEM},
                                           {"role": "user", "content": "Can you ship to Norway?"}]  # fmt: skip
    assert wrapped.latency_ms == 1250.0 and wrapped.answer.usage.prompt_tokens == 25
    assert chain.request["messages"] == [{"role": "system", "content": SYSTEM},
                                         {"role": "user", "content": "Where is my parcel 3471?"}]  # fmt: skip
    assert (chain.request["model"], chain.request["max_tokens"], chain.request["temperature"]) == ("gpt-4o-mini", 200, 0.7)
    assert (chain.ttft_ms, chain.answer.usage.completion_tokens) == (200.0, 17)
    assert chain.answer.text.startswith("Parcel 3471") and chain.metadata["user"] == "customer-2"
    assert dict(stats.skipped[os.path.join(LOGS, "langsmith", "runs.jsonl")]) == {"chain run (only llm runs are requests)": 1}


def test_responses_pairs_become_chat_requests_and_say_what_is_lost():
    records = read("openai-responses", "openai-responses")
    simple, tools = records["resp-1"], records["resp-2"]
    assert simple.request == {"model": "gpt-4.1-mini", "temperature": 0.2, "max_tokens": 200, "messages": [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": "Can you ship to Norway?"}]}  # fmt: skip
    assert simple.answer.text == "Yes, we ship to Norway within 5 business days." and simple.answer.finish_reason == "stop"
    assert simple.metadata == {"category": "shipping"}
    assert [m["role"] for m in tools.request["messages"]] == ["user", "assistant", "tool"]
    assert tools.request["tools"][0]["function"]["name"] == "track_parcel"
    assert tools.request["response_format"]["json_schema"]["name"] == "answer"
    assert tools.answer.finish_reason == "length"  # incomplete: max_output_tokens
    assert tools.metadata["lost"] == ["previous_response_id", "tool web_search"]


def test_a_malformed_responses_input_names_the_field(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "x", "request": {"model": "m", "input": 5}}) + "\n")
    with pytest.raises(LogFormatError) as info:
        list(iter_records([str(path)], fmt="openai-responses"))
    assert str(info.value) == f"{path}:1: 'request.input' must be a string or a list of input items"


def test_a_malformed_langsmith_run_names_its_inputs_field(tmp_path):
    run = json.loads(open(os.path.join(LOGS, "langsmith", "runs.jsonl")).readline())
    run["inputs"]["messages"][1] = {"role": "user", "content": {"text": "hi"}}
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(run) + "\n" + "[1, 2]\n")
    with pytest.raises(LogFormatError) as info:
        list(iter_records([str(path)], fmt="langsmith"))
    assert str(info.value) == f"{path}:1: 'inputs.messages[1].content' must be a string or a list of content parts, got an object"
    errors = []
    stats = ReadStats()
    assert list(iter_records([str(path)], fmt="langsmith", stats=stats, skip_invalid=True, on_invalid=errors.append)) == []
    assert [str(error) for error in errors][1] == f"{path}:2: expected a JSON object, got list"
    assert stats.invalid_per_file == {str(path): 2}


def test_a_malformed_message_batches_request_names_its_params_field(tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    lines = open(os.path.join(LOGS, "anthropic-batch", "requests.jsonl")).read().splitlines()
    bad = json.loads(lines[0])
    bad["params"]["messages"] = []
    (folder / "requests.jsonl").write_text("\n".join([json.dumps(bad), *lines[1:]]) + "\n")
    (folder / "results.jsonl").write_text(open(os.path.join(LOGS, "anthropic-batch", "results.jsonl")).read())
    with pytest.raises(LogFormatError) as info:
        read(str(folder), "anthropic-batch")
    assert str(info.value) == f"{folder / 'requests.jsonl'}:1: 'params.messages' must be a non-empty list"
    assert list(read(str(folder), "anthropic-batch", skip_invalid=True)) == ["msg-2", "msg-3", "msg-4"]


def test_the_langsmith_parquet_export_is_read_by_row_and_detected():
    pytest.importorskip("pyarrow")
    from replay.readers.detect import detect_format

    path = os.path.join(LOGS, "langsmith", "runs.parquet")
    assert detect_format(path) == "langsmith"
    stats = ReadStats()
    records = list(iter_records([path], fmt="langsmith", stats=stats))
    assert [(r.id[-2:], str(r.location)) for r in records] == [("01", f"{path}[0]"), ("02", f"{path}[1]")]
    assert (records[1].latency_ms, records[1].ttft_ms, records[1].timestamp) == (900.0, 200.0, "2026-12-01T07:01:00Z")
    assert records[1].request["messages"][1] == {"role": "user", "content": "Where is my parcel 3471?"}
    assert dict(stats.skipped[path]) == {"chain run (only llm runs are requests)": 1}


def test_without_pyarrow_a_parquet_file_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails as if not installed
    path = os.path.join(LOGS, "langsmith", "runs.parquet")
    with pytest.raises(InputError) as info:
        list(iter_records([path], fmt="langsmith"))
    assert str(info.value) == f"{path}: a Parquet file: reading it needs pyarrow (pip install 'replay[parquet]')"
