"""``replay logs validate``: what the run would refuse, named before the run."""

import json

from click.testing import CliRunner

from conftest import record, write_log
from replay.cli import cli


def validate(*args):
    return CliRunner().invoke(cli, ["logs", "validate", *map(str, args)])


def test_an_empty_log_is_named(tmp_path):
    empty = write_log(tmp_path / "empty.jsonl", [])
    result = validate(empty)
    assert result.exit_code == 2
    assert result.stdout == "" and result.stderr == f"Error: {empty}: the log is empty (no records)\n"


def test_an_empty_file_beside_good_ones_is_a_note(tmp_path):
    empty = write_log(tmp_path / "empty.jsonl", [""])
    good = write_log(tmp_path / "good.jsonl", [record("a")])
    result = validate(empty, good)
    assert result.exit_code == 0
    assert result.stderr == f"note: {empty}: the log is empty (no records)\n"
    assert result.stdout == "ok: 1 records in 2 file(s)\n"


def test_what_the_run_would_reject_is_listed(tmp_path):
    log = write_log(tmp_path / "log.jsonl", [
        record("a"),
        {**record("b"), "request": {"messages": [{"role": "usr", "content": "hi"}]}},
        {**record("c"), "request": {"messages": [{"role": "user", "content": 5}]}},
        {**record("d"), "request": {**record("d")["request"], "max_tokens": "50"}},
        {**record("e"), "response": {"choices": [{"message": {"content": 5}}]}},
    ])  # fmt: skip
    result = validate(log)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{log}:2: 'request.messages[0].role' is 'usr': expected one of system, developer, user, assistant, tool, function",
        f"{log}:3: 'request.messages[0].content' must be a string or a list of content parts, got a number",
        f"{log}:4: 'request.max_tokens' must be an integer, got '50'",
        f"{log}:5: 'response.choices[0].message.content' must be a string, got a number",
        "Error: 4 invalid line(s), 1 valid record(s)",
    ]


def test_a_line_over_the_cap_is_named_and_the_cap_can_be_raised(tmp_path):
    big = {**record("big"), "request": {"messages": [{"role": "user", "content": "x" * (3 << 20)}]}}
    log = write_log(tmp_path / "log.jsonl", [record("a"), big])
    result = validate(log, "--max-record-mb", 2)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{log}:2: record is 3.0 MB, over the 2 MB limit (raise max_record_mb or --max-record-mb to read it)",
        "Error: 1 invalid line(s), 1 valid record(s)",
    ]
    assert validate(log, "--max-record-mb", 4).stdout == "ok: 2 records in 1 file(s)\n"


def test_a_directory_and_a_gzip_file_without_the_suffix(tmp_path):
    import gzip

    logs = tmp_path / "logs"
    logs.mkdir()
    write_log(logs / "a.jsonl", [record("a")])
    (logs / "c.jsonl.gz").write_bytes(gzip.compress((json.dumps(record("c")) + "\n").encode()))
    result = validate(logs)
    assert result.exit_code == 0 and result.stdout == "ok: 2 records in 2 file(s)\n"
    plain_name = tmp_path / "b.jsonl"
    plain_name.write_bytes(gzip.compress((json.dumps(record("b")) + "\n").encode()))
    result = validate(plain_name)
    assert result.exit_code == 0 and result.stdout == "ok: 1 records in 1 file(s)\n"


def test_a_directory_without_logs_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    result = validate(tmp_path / "empty")
    assert result.exit_code == 2
    assert result.stderr == f"Error: logs: the directory '{tmp_path / 'empty'}' has no *.jsonl or *.jsonl.gz file\n"
