import bz2
import gzip
import json
import lzma
import tracemalloc

import pytest

from conftest import record, write_log
from replay.errors import InputError, LogFormatError
from replay.readers import ReadStats, iter_records, resolve_log_paths


def test_reads_records_in_order_with_all_fields(tmp_path):
    rec = record("a", ttft_ms=120, status=200, timestamp="2026-11-01T12:00:00Z", error=None)
    path = write_log(tmp_path / "log.jsonl", [rec, record("b")])
    records = list(iter_records([path]))
    assert [r.id for r in records] == ["a", "b"]
    first = records[0]
    assert first.request["messages"][0]["content"] == "hello"
    assert first.latency_ms == 400.0 and first.ttft_ms == 120.0 and first.status == 200
    assert first.timestamp == "2026-11-01T12:00:00Z"
    assert first.metadata == {"category": "a"}
    assert str(first.location) == f"{path}:1"


def test_reads_gzip(tmp_path):
    path = tmp_path / "log.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps(record("z")) + "\n")
    assert [r.id for r in iter_records([str(path)])] == ["z"]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{not json", "not valid JSON"),
        ("[" * 100_000, "not valid JSON (nested too deeply)"),
        ('{"a": ' * 100_000, "not valid JSON (nested too deeply)"),
        (json.dumps({**record("x"), "metadata": {"a": json.loads("[" * 900 + "]" * 900)}}), "nested more than 64 levels deep"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"request": {"messages": [{"role": "user"}]}}), "'id' is required"),
        (json.dumps({"id": "x"}), "'request' is required"),
        (json.dumps({"id": "x", "request": {"messages": []}}), "'request.messages' must be a non-empty list"),
        (json.dumps({**record("x"), "latency_ms": "fast"}), "'latency_ms' must be a finite, non-negative number"),
        (json.dumps({**record("x"), "ttft_ms": 3}).replace('"ttft_ms": 3', '"ttft_ms": 1e400'),
         "'ttft_ms' must be a finite, non-negative number"),
        (json.dumps({**record("x"), "timestamp": "yesterday"}), "'timestamp' must be an ISO 8601 string"),
        (json.dumps({**record("x"), "metadata": [1]}), "'metadata' must be an object"),
        (json.dumps({**record("x"), "status": "ok"}), "'status' must be an integer"),
    ],
)
def test_malformed_line_names_path_and_line(tmp_path, line, reason):
    path = write_log(tmp_path / "log.jsonl", [record("ok"), "", line])
    with pytest.raises(LogFormatError) as info:
        list(iter_records([path]))
    assert str(info.value).startswith(f"{path}:3: ")
    assert reason in str(info.value)


def test_a_gz_file_cut_short_is_one_input_error(tmp_path):
    path = tmp_path / "log.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        for i in range(2000):
            handle.write(json.dumps(record(f"r{i}")) + "\n")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(InputError) as info:
        list(iter_records([str(path)]))
    assert str(info.value).startswith(f"{path}:")
    assert "cannot read the file from here" in str(info.value)


def test_a_gz_name_on_plain_content_says_so(tmp_path):
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(b"not gzip at all\n")
    with pytest.raises(InputError) as info:
        list(iter_records([str(path)]))
    assert str(info.value) == f"{path}: not a gzip file (the name ends in .gz, the content is not gzip)"


@pytest.mark.parametrize("name, compress", [
    ("log.jsonl", lambda data: gzip.compress(data)),
    ("log.log", lambda data: bz2.compress(data)),
    ("log", lambda data: lzma.compress(data)),
])  # fmt: skip
def test_compressed_logs_are_read_by_content_whatever_the_name(tmp_path, name, compress):
    path = tmp_path / name
    path.write_bytes(compress((json.dumps(record("a")) + "\n" + json.dumps(record("b")) + "\n").encode()))
    assert [r.id for r in iter_records([str(path)])] == ["a", "b"]


@pytest.mark.parametrize("head, problem", [
    (b"\x28\xb5\x2f\xfd....", "compressed with zstd: decompress it first (zstd -d)"),
    (b"PK\x03\x04....", "a zip archive: extract the .jsonl file from it"),
    ('{"id": "a"}\n'.encode("utf-16"), "UTF-16 text: save it as UTF-8"),
])  # fmt: skip
def test_formats_we_cannot_read_are_named(tmp_path, head, problem):
    path = tmp_path / "log.jsonl"
    path.write_bytes(head)
    with pytest.raises(InputError) as info:
        list(iter_records([str(path)]))
    assert str(info.value) == f"{path}: {problem}"


def test_a_utf8_bom_is_not_an_error(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(record("a")).encode() + b"\n")
    assert [r.id for r in iter_records([str(path)])] == ["a"]


def test_duplicate_ids_name_both_lines(tmp_path):
    path = write_log(tmp_path / "log.jsonl", [record("a"), record("b"), record("a")])
    with pytest.raises(LogFormatError, match=rf"{path}:3: duplicate id 'a' \(first at {path}:1\)"):
        list(iter_records([path]))


def test_duplicates_across_files(tmp_path):
    one = write_log(tmp_path / "one.jsonl", [record("a")])
    two = write_log(tmp_path / "two.jsonl", [record("a")])
    with pytest.raises(LogFormatError, match="first at .*one.jsonl:1"):
        list(iter_records([one, two]))


def test_skip_invalid_counts_and_continues(tmp_path):
    path = write_log(tmp_path / "log.jsonl", [record("a"), "garbage", record("a"), record("b")])
    stats = ReadStats()
    seen = []
    ids = [r.id for r in iter_records([path], skip_invalid=True, stats=stats, on_invalid=seen.append)]
    assert ids == ["a", "b"]
    assert stats.invalid == 2 and stats.records == 2
    assert [e.line for e in seen] == [2, 3]


def test_resolve_globs_lists_and_missing(tmp_path):
    write_log(tmp_path / "b.jsonl", [record("b")])
    write_log(tmp_path / "a.jsonl", [record("a")])
    assert [p.rsplit("/", 1)[1] for p in resolve_log_paths("*.jsonl", [str(tmp_path)])] == ["a.jsonl", "b.jsonl"]
    assert len(resolve_log_paths(["a.jsonl", "b.jsonl"], [str(tmp_path)])) == 2
    twice = resolve_log_paths(["a.jsonl", "b.jsonl", "*.jsonl", str(tmp_path / "a.jsonl")], [str(tmp_path)])
    assert twice == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    with pytest.raises(InputError, match="no such file 'c.jsonl'"):
        resolve_log_paths("c.jsonl", [str(tmp_path)])
    with pytest.raises(InputError, match="no file matches"):
        resolve_log_paths("*.gz", [str(tmp_path)])


def test_reading_is_streaming(tmp_path):
    """The reader yields before the whole file is read: a bad last line surfaces only at the end."""
    path = write_log(tmp_path / "log.jsonl", [record(str(i)) for i in range(100)] + ["{bad"])
    iterator = iter_records([path])
    assert next(iterator).id == "0"
    with pytest.raises(LogFormatError, match=":101:"):
        list(iterator)


def _message(**fields):
    return {"role": "user", "content": "hi", **fields}


@pytest.mark.parametrize("request_fields, reason", [
    ({"messages": [_message(role="usr")]},
     "'request.messages[0].role' is 'usr': expected one of system, developer, user, assistant, tool, function"),
    ({"messages": [_message(content=5)]},
     "'request.messages[0].content' must be a string or a list of content parts, got a number"),
    ({"messages": [_message(content={"text": "hi"})]},
     "'request.messages[0].content' must be a string or a list of content parts, got an object"),
    ({"messages": [_message(content=["hi"])]},
     "'request.messages[0].content[0]' must be a content part such as {\"type\": \"text\", ...}"),
    ({"messages": [_message(content=None)]}, "'request.messages[0].content' is required in a user message"),
    ({"messages": [_message(name=3)]}, "'request.messages[0].name' must be a string"),
    ({"messages": [_message(), {"role": "assistant", "content": None, "tool_calls": "x"}]},
     "'request.messages[1].tool_calls' must be a list of objects"),
    ({"messages": [_message()], "max_tokens": "50"}, "'request.max_tokens' must be an integer, got '50'"),
    ({"messages": [_message()], "max_tokens": True}, "'request.max_tokens' must be an integer, got True"),
    ({"messages": [_message()], "temperature": "hot"}, "'request.temperature' must be a number, got 'hot'"),
    ({"messages": [_message()], "stream": "yes"}, "'request.stream' must be true or false, got 'yes'"),
    ({"messages": [_message()], "stop": [1]}, "'request.stop' must be a string or a list of strings, got list"),
    ({"messages": [_message()], "tools": "x"}, "'request.tools' must be a list of objects, got 'x'"),
    ({"messages": [_message()], "response_format": "json"}, "'request.response_format' must be an object, got 'json'"),
    ({"messages": [_message()], "model": 4}, "'request.model' must be a string, got 4"),
])  # fmt: skip
def test_a_request_an_endpoint_would_refuse_is_a_located_error(tmp_path, request_fields, reason):
    path = write_log(tmp_path / "log.jsonl", [record("ok"), {**record("bad"), "request": request_fields}])
    with pytest.raises(LogFormatError) as info:
        list(iter_records([path]))
    assert str(info.value) == f"{path}:2: {reason}"


def test_requests_the_api_accepts_are_read():
    from replay.readers.shadow import parse_record

    request = {"model": "m", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "developer", "content": [{"type": "text", "text": "x"}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:..."}}], "name": "dana"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {}}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
    ], "max_tokens": 5, "temperature": 0.2, "stop": ["\n"], "tools": [{"type": "function"}], "tool_choice": "auto",
        "seed": None, "response_format": {"type": "json_object"}}  # fmt: skip
    assert parse_record(json.dumps({"id": "x", "request": request})).request == request


@pytest.mark.parametrize("response, reason", [
    ("text", "'response' must be an object"),
    ({"choices": "x"}, "'response.choices' must be a list, got a string"),
    ({"choices": [5]}, "'response.choices[0]' must be an object, got a number"),
    ({"choices": [{"message": "x"}]}, "'response.choices[0].message' must be an object, got a string"),
    ({"choices": [{"message": {"content": 5}}]}, "'response.choices[0].message.content' must be a string, got a number"),
    ({"choices": [{"message": {"tool_calls": "x"}}]}, "'response.choices[0].message.tool_calls' must be a list of objects"),
    ({"choices": [{"message": {"tool_calls": [{"function": "f"}]}}]},
     "'response.choices[0].message.tool_calls[0].function' must be an object"),
    ({"choices": [{"message": {"tool_calls": [{"function": {"arguments": {}}}]}}]},
     "'response.choices[0].message.tool_calls[0].function.arguments' must be a string, got an object"),
    ({"choices": [{"finish_reason": 1}]}, "'response.choices[0].finish_reason' must be a string, got a number"),
    ({"choices": [], "usage": "x"}, "'response.usage' must be an object, got a string"),
    ({"usage": {"prompt_tokens": "5"}}, "'response.usage.prompt_tokens' must be a non-negative integer, got '5'"),
    ({"usage": {"completion_tokens": -1}}, "'response.usage.completion_tokens' must be a non-negative integer, got -1"),
    ({"model": ["m"]}, "'response.model' must be a string, got a list"),
])  # fmt: skip
def test_a_logged_answer_the_run_cannot_read_is_a_located_error(tmp_path, response, reason):
    path = write_log(tmp_path / "log.jsonl", [{**record("bad"), "response": response}])
    with pytest.raises(LogFormatError) as info:
        list(iter_records([path]))
    assert str(info.value) == f"{path}:1: {reason}"


def test_nan_anywhere_in_a_record_is_refused(tmp_path):
    path = write_log(tmp_path / "log.jsonl", [json.dumps(record("a")).replace('"max_tokens": 50', '"max_tokens": 50, "top_p": NaN'),
                                              json.dumps({**record("b"), "metadata": {"score": 1}}).replace("1}", "Infinity}")])  # fmt: skip
    errors = []
    assert list(iter_records([path], skip_invalid=True, on_invalid=errors.append)) == []
    assert [str(e) for e in errors] == [f"{path}:1: 'request.top_p' must be a number, got nan",
                                        f"{path}:2: 'metadata.score' is inf: JSON numbers must be finite"]  # fmt: skip


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_record_over_the_size_cap_is_located_and_never_read_whole(tmp_path, compressed):
    path = tmp_path / "log.jsonl"
    huge = {**record("huge"), "request": {"messages": [{"role": "user", "content": "x" * (20 << 20)}]}}
    write_log(path, [record("a"), huge, record("b")])
    if compressed:  # a gzip file under a .jsonl name: recognised by its content
        path.write_bytes(gzip.compress(path.read_bytes(), compresslevel=1))
    with pytest.raises(LogFormatError) as info:
        list(iter_records([str(path)], max_record_bytes=4 << 20))
    assert str(info.value) == (f"{path}:2: record is 20.0 MB, over the 4 MB limit"
                               " (raise max_record_mb or --max-record-mb to read it)")  # fmt: skip
    tracemalloc.start()
    stats = ReadStats()
    ids = [r.id for r in iter_records([str(path)], skip_invalid=True, stats=stats, max_record_bytes=4 << 20)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert ids == ["a", "b"] and stats.invalid == 1
    assert peak < 12 << 20  # the 20 MB line was skipped in chunks, never held whole


def test_a_line_exactly_at_the_cap_is_read(tmp_path):
    line = json.dumps(record("a")).encode()
    path = tmp_path / "log.jsonl"
    path.write_bytes(line + b"\n" + line.replace(b'"a"', b'"b"') + b"x\n")
    assert [r.id for r in iter_records([str(path)], max_record_bytes=len(line), skip_invalid=True)] == ["a"]


def test_a_directory_stands_for_its_jsonl_files(tmp_path):
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    write_log(logs / "b.jsonl", [record("b")])
    (logs / "a.jsonl.gz").write_bytes(gzip.compress((json.dumps(record("a")) + "\n").encode()))
    write_log(logs / "notes.txt", ["not a log"])
    write_log(logs / "sub" / "c.jsonl", [record("c")])
    assert resolve_log_paths("logs", [str(tmp_path)]) == [str(logs / "a.jsonl.gz"), str(logs / "b.jsonl")]
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError) as info:
        resolve_log_paths("none", [str(tmp_path)])
    assert str(info.value) == "logs: the directory 'none' has no *.jsonl or *.jsonl.gz file"


def test_empty_logs_are_named(tmp_path):
    from replay.readers import check_not_empty

    empty = write_log(tmp_path / "empty.jsonl", ["", "  "])
    stats = ReadStats()
    assert list(iter_records([empty], stats=stats)) == [] and stats.empty_files == [empty]
    with pytest.raises(InputError) as info:
        check_not_empty([empty], stats)
    assert str(info.value) == f"{empty}: the log is empty (no records)"
    bad = write_log(tmp_path / "bad.jsonl", ["{", "["])
    stats = ReadStats()
    list(iter_records([empty, bad], skip_invalid=True, stats=stats))
    with pytest.raises(InputError) as info:
        check_not_empty([empty, bad], stats)
    assert str(info.value) == f"{empty} and 1 more file(s): no valid record (all 2 line(s) invalid and skipped)"


def test_a_segment_key_no_record_has_is_named_with_a_suggestion(tmp_path):
    from replay.readers import check_segment_keys

    path = write_log(tmp_path / "log.jsonl", [record("a"), {**record("b"), "metadata": {"tenant": "t1"}}])
    stats = ReadStats()
    watched = {"categroy": "segment_by", "tenant": "critical_segments"}
    list(iter_records([path], stats=stats, watch_keys=watched))
    with pytest.raises(InputError) as info:
        check_segment_keys(watched, stats, "s.yaml")
    assert str(info.value) == "s.yaml: segment_by: no record has the metadata key 'categroy' (did you mean 'category'?)"
    with pytest.raises(InputError) as info:
        check_segment_keys({"zzz": "gates[0].segment"}, stats)
    assert str(info.value) == "gates[0].segment: no record has the metadata key 'zzz'; the records have 'category', 'tenant'"
    check_segment_keys({"category": "segment_by", "tenant": "segment_by"}, stats)  # both present: no error


def test_noted_metadata_keys_stay_bounded(tmp_path):
    from replay.readers.base import MAX_KEYS_NOTED

    path = write_log(tmp_path / "log.jsonl", [{**record(f"r{i}"), "metadata": {f"k{i}": 1, "wanted": i == 999}}
                                              for i in range(1000)])  # fmt: skip
    stats = ReadStats()
    list(iter_records([path], stats=stats, watch_keys=["wanted", "k999"]))
    assert "wanted" in stats.metadata_keys and "k999" in stats.metadata_keys
    assert len(stats.metadata_keys) <= MAX_KEYS_NOTED + 2


def test_a_pipe_is_not_taken_for_a_missing_file(tmp_path):
    import os

    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as info:
        resolve_log_paths(str(fifo))
    assert str(info.value) == f"logs: '{fifo}' is not a regular file (replay reads a log twice: give it a file)"


def test_log_text_in_messages_is_escaped(tmp_path):
    path = write_log(tmp_path / "log.jsonl", [record("\x1b[2Ja"), record("\x1b[2Ja"),
                                              {**record("b"), "request": {"messages": [{"role": "\x1b]0;x\x07"}]}}])  # fmt: skip
    errors = []
    list(iter_records([path], skip_invalid=True, on_invalid=errors.append))
    assert [e.reason for e in errors] == [
        f"duplicate id '\\x1b[2Ja' (first at {path}:1)",
        "'request.messages[0].role' is '\\x1b]0;x\\x07': expected one of system, developer, user, assistant, tool, function",
    ]
    assert not any("\x1b" in str(e) for e in errors)


@pytest.mark.parametrize("line, where", [
    ('{"id": "a", "request": {"messages": [{"role": "user", "content": "hi \\udc00 there"}]}}', "'request.messages[0].content'"),
    ('{"id": "a\\ud800", "request": {"messages": [{"role": "user", "content": "hi"}]}}', "'id'"),
])  # fmt: skip
def test_a_lone_surrogate_is_a_located_error(tmp_path, line, where):
    """json.loads accepts "\\udc00" without its pair; such a string can be neither sent nor stored
    (a run that met one hung)."""
    path = tmp_path / "log.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(iter_records([str(path)]))
    assert str(info.value) == (f"{path}:1: {where} holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without"
                               " its pair): it is not text and cannot be sent")  # fmt: skip
