"""``format: auto``: each fixture is detected as its source, and said on stderr."""

from __future__ import annotations

import os

import pytest

from conftest import ROOT, record, write_log
from replay.errors import InputError
from replay.readers import ReadStats, iter_records
from replay.readers.detect import detect_format

LOGS = os.path.join(ROOT, "fixtures", "logs")
FIXTURES = sorted(
    (os.path.relpath(os.path.join(folder, name), LOGS), os.path.basename(folder) if folder != LOGS else "shadow")
    for folder, _, names in os.walk(LOGS) for name in names
    if name.endswith(".jsonl") and os.path.basename(folder) not in ("csv", "jsonl")  # these need a mapping:
)  # fmt: skip


@pytest.mark.parametrize("name, expected", FIXTURES)
def test_every_fixture_is_detected_as_its_folder(name, expected):
    assert detect_format(os.path.join(LOGS, name)) == expected


def test_the_detected_format_is_said_once_per_file_on_the_first_pass(capsys):
    path = os.path.join(LOGS, "langfuse", "observations_v1.jsonl")
    list(iter_records([path, os.path.join(LOGS, "support.jsonl")], stats=ReadStats()))
    assert capsys.readouterr().err == f"note: {path}: format detected as langfuse\n"  # shadow is read silently
    list(iter_records([path]))  # a re-read (no stats kept) says nothing
    assert capsys.readouterr().err == ""


def test_an_unknown_source_is_an_error_that_asks_for_format(tmp_path):
    path = write_log(tmp_path / "odd.jsonl", [{"when": 1, "prompt": "hi"}])
    with pytest.raises(InputError) as info:
        detect_format(path)
    assert str(info.value) == (f"{path}: cannot detect the log format from the first 1 record(s) (set format: or"
                               " --format to one of shadow, openai-responses, anthropic-batch, openai-batch, otel-genai, langfuse,"
                               " langsmith, helicone, litellm; or jsonl with a mapping:)")  # fmt: skip


def test_a_home_grown_jsonl_log_is_not_guessed():
    with pytest.raises(InputError) as info:
        detect_format(os.path.join(LOGS, "jsonl", "app_log.jsonl"))
    assert "cannot detect the log format from the first 2 record(s)" in str(info.value)


def test_a_broken_shadow_line_gets_the_shadow_readers_message(tmp_path):
    path = write_log(tmp_path / "log.jsonl", ["{oops", record("a")])
    assert detect_format(path) == "shadow"
    assert detect_format(write_log(tmp_path / "b.jsonl", [{"id": "x"}])) == "shadow"
