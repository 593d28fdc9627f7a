import gzip
import json

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
    assert first.source == f"{path}:1"


def test_reads_gzip(tmp_path):
    path = tmp_path / "log.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps(record("z")) + "\n")
    assert [r.id for r in iter_records([str(path)])] == ["z"]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{not json", "not valid JSON"),
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


@pytest.mark.parametrize("content", [b"not gzip at all\n", None], ids=["not-gzip", "cut-short"])
def test_a_gz_file_that_cannot_be_read_is_one_input_error(tmp_path, content):
    from replay.errors import InputError

    path = tmp_path / "log.jsonl.gz"
    if content is None:  # a real gzip file, cut in the middle
        with gzip.open(path, "wt") as handle:
            for i in range(2000):
                handle.write(json.dumps(record(f"r{i}")) + "\n")
        path.write_bytes(path.read_bytes()[:-200])
    else:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        list(iter_records([str(path)]))
    assert str(info.value).startswith(f"{path}:")
    assert "cannot read the file from here" in str(info.value)


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
