"""Candidate transforms, record by record: the system prompt in both dialects and every mode, the
model map, the JSON Patch on the body as sent, the hook, and each failure as a TransformFailed."""

from __future__ import annotations

import copy
import hashlib
import json
import sys

import pytest

from replay.config import SystemPrompt, Transform
from replay.providers.openai_compat import OpenAICompatProvider
from replay.transforms import (
    Rewriter,
    SpecError,
    TransformFailed,
    check_patch,
    describe,
    load_hook,
    read_system_prompt,
    with_system_prompt,
)
from replay.types import LogRecord

CHAT = {"model": "gpt-4o", "seed": 7, "messages": [
    {"role": "system", "content": "Old prompt."}, {"role": "user", "content": "Hi"}, {"role": "system", "content": "Later note."}]}  # fmt: skip


def provider(**extra):
    return OpenAICompatProvider(base_url="http://127.0.0.1:9/v1", model="gpt-4o-mini", params={"temperature": 0}, **extra)


def rewriter(tmp_path=None, **fields):
    return Rewriter(Transform(**fields), (str(tmp_path),) if tmp_path else (".",))


def prompt(text="New prompt.", mode="replace"):
    return SystemPrompt("prompts/v2.txt", text, "1a2b3c4d" + "0" * 56, mode)


@pytest.mark.parametrize("mode, expected", [
    ("replace", "New prompt."), ("prepend", "New prompt.\n\nOld prompt."), ("append", "Old prompt.\n\nNew prompt.")])  # fmt: skip
def test_the_first_system_message_is_replaced_or_extended_and_the_log_untouched(mode, expected):
    logged = copy.deepcopy(CHAT)
    out = with_system_prompt(logged, "New prompt.", mode)
    assert [m["content"] for m in out["messages"]] == [expected, "Hi", "Later note."]
    assert logged == CHAT


def test_a_developer_message_keeps_its_role_and_a_request_without_one_gets_a_system_message():
    developer = {"messages": [{"role": "developer", "content": "Old."}, {"role": "user", "content": "Hi"}]}
    assert with_system_prompt(developer, "New.", "replace")["messages"][0] == {"role": "developer", "content": "New."}
    bare = {"messages": [{"role": "user", "content": "Hi"}]}
    for mode in ("replace", "prepend", "append"):
        assert with_system_prompt(bare, "New.", mode)["messages"] == [{"role": "system", "content": "New."}, {"role": "user", "content": "Hi"}]


def test_content_blocks_get_a_text_block_and_keep_theirs():
    blocks = [{"type": "text", "text": "Old.", "cache_control": {"type": "ephemeral"}}]
    request = {"model": "claude", "system": blocks, "messages": [{"role": "user", "content": "Hi"}]}
    assert with_system_prompt(request, "New.", "prepend")["system"] == [{"type": "text", "text": "New."}, *blocks]
    assert with_system_prompt(request, "New.", "append")["system"] == [*blocks, {"type": "text", "text": "New."}]
    assert with_system_prompt(request, "New.", "replace")["system"] == "New."
    assert request["system"] == blocks


def test_the_body_sent_has_the_prompt_the_mapped_model_and_the_patch_after_the_arms_params():
    transform = rewriter(system_prompt=prompt(), model_map={"gpt-4o": "gpt-4.1"},
                         patch=({"op": "remove", "path": "/seed"}, {"op": "remove", "path": "/stream_options"}))  # fmt: skip
    record = LogRecord("r1", copy.deepcopy(CHAT))
    body = transform.body(record, provider(stream=True).build_body)
    assert body["model"] == "gpt-4.1" and body["temperature"] == 0 and body["stream"] is True
    assert "seed" not in body and "stream_options" not in body
    assert body["messages"][0] == {"role": "system", "content": "New prompt."}
    assert record.request == CHAT


def test_an_unmapped_model_is_sent_as_the_arms_model():
    body = rewriter(model_map={"gpt-3.5": "x"}).body(LogRecord("r1", CHAT), provider().build_body)
    assert body["model"] == "gpt-4o-mini"


def test_a_patch_keeps_what_adapting_a_messages_request_lost():
    anthropic = {"model": "claude", "system": "Be terse.", "max_tokens": 10, "top_k": 5, "stop_sequences": ["x"],
                 "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    build = provider().build_body
    plain = build(anthropic)
    patched = rewriter(patch=({"op": "add", "path": "/user", "value": "u1"},)).body(LogRecord("r1", anthropic), build)
    assert patched["user"] == "u1" and patched.lossy == plain.lossy != ()


def test_a_patch_that_does_not_apply_fails_the_record():
    transform = rewriter(patch=({"op": "remove", "path": "/logit_bias"},))
    with pytest.raises(TransformFailed, match=r"^transform.patch: can't remove a non-existent object 'logit_bias'$"):
        transform.body(LogRecord("r1", CHAT), provider().build_body)
    failing_test = rewriter(patch=({"op": "test", "path": "/seed", "value": 8},))
    with pytest.raises(TransformFailed, match="^transform.patch: "):
        failing_test.body(LogRecord("r1", CHAT), provider().build_body)


@pytest.fixture
def hooks(tmp_path, monkeypatch):
    (tmp_path / "myhooks.py").write_text(
        "def shorter(request, record):\n    request['messages'][1]['content'] += ' (' + record.id + ')'\n    return request\n"
        "def boom(request, record):\n    raise ValueError('no such tenant')\n"
        "def nothing(request, record):\n    return None\n"
        "def unsendable(request, record):\n    return {'messages': [], 'when': object()}\n"
        "def nan(request, record):\n    return {**request, 'temperature': float('nan')}\n"
        "value = 3\n")  # fmt: skip
    yield tmp_path
    sys.modules.pop("myhooks", None)


def test_the_hook_gets_a_copy_of_the_request_and_the_record(hooks):
    record = LogRecord("r9", copy.deepcopy(CHAT))
    body = rewriter(hooks, hook="myhooks:shorter").body(record, provider().build_body)
    assert body["messages"][1]["content"] == "Hi (r9)" and record.request == CHAT
    assert str(hooks) not in sys.path


@pytest.mark.parametrize("hook, message", [
    ("myhooks:boom", "hook myhooks:boom raised ValueError: no such tenant"),
    ("myhooks:nothing", "hook myhooks:nothing returned NoneType, not a request mapping"),
    ("myhooks:unsendable", "hook myhooks:unsendable returned a request that is not JSON: "),
    ("myhooks:nan", "hook myhooks:nan returned a request that is not JSON: Out of range float values"),
])  # fmt: skip
def test_a_hook_that_fails_fails_the_record(hooks, hook, message):
    with pytest.raises(TransformFailed) as caught:
        rewriter(hooks, hook=hook).body(LogRecord("r1", CHAT), provider().build_body)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("spec, message", [
    ("myhooks", "expected module:callable such as mypkg.rewrite:request, got 'myhooks'"),
    ("nosuchmodule_xyz:f", "cannot import nosuchmodule_xyz: ModuleNotFoundError: No module named 'nosuchmodule_xyz'"),
    ("myhooks:missing", "myhooks has no missing"),
    ("myhooks:value", "myhooks:value is not callable"),
])  # fmt: skip
def test_a_hook_that_cannot_be_loaded_is_named(hooks, spec, message):
    with pytest.raises(SpecError) as caught:
        load_hook(spec, (str(hooks),))
    assert (caught.value.key, str(caught.value)) == ("hook", message)


@pytest.mark.parametrize("ops, key, message", [
    ({"op": "remove"}, "patch", "expected a list of operations such as {op: remove, path: /seed}"),
    (["remove /seed"], "patch[0]", "expected an operation such as {op: remove, path: /seed}"),
    ([{"op": "remove", "path": "/a"}, {"op": "delete", "path": "/b"}], "patch[1].op",
     "expected one of add, remove, replace, move, copy, test, got 'delete'"),
    ([{"op": "add", "path": "/a"}], "patch[0].value", "missing: 'add' needs it"),
    ([{"op": "move", "path": "/a"}], "patch[0].from", "missing: 'move' needs it"),
    ([{"op": "remove", "path": "seed"}], "patch[0].path", "expected a JSON Pointer such as /seed, got 'seed'"),
    ([{"op": "remove", "path": 3}], "patch[0].path", "expected a JSON Pointer such as /seed, got 3"),
])  # fmt: skip
def test_an_invalid_patch_is_named_by_its_operation(ops, key, message):
    with pytest.raises(SpecError) as caught:
        check_patch(ops)
    assert (caught.value.key, str(caught.value)) == (key, message)


def test_the_prompt_file_is_read_with_its_hash(tmp_path):
    (tmp_path / "p.txt").write_bytes("Sé bref.\n".encode())
    read = read_system_prompt("p.txt", "append", ("/nonexistent", str(tmp_path)))
    assert (read.file, read.text, read.mode) == ("p.txt", "Sé bref.\n", "append")
    assert read.sha256 == hashlib.sha256("Sé bref.\n".encode()).hexdigest()


@pytest.mark.parametrize("content, message", [
    (None, "no such file: p.txt"), (b"\xff\xfe", "p.txt: not UTF-8 text (byte 0)"), (b"  \n", "p.txt: is empty"),
    (b"x" * (1 << 20 + 1), "p.txt: larger than 1 MB")])  # fmt: skip
def test_a_prompt_file_that_cannot_serve_is_named(tmp_path, content, message):
    if content is not None:
        (tmp_path / "p.txt").write_bytes(content)
    with pytest.raises(SpecError) as caught:
        read_system_prompt("p.txt", "replace", (str(tmp_path),))
    assert (caught.value.key, str(caught.value)) == ("system_prompt_file", message)


def test_a_stored_transform_in_a_reports_words():
    stored = json.loads(json.dumps({"system_prompt": prompt().__dict__, "model_map": {"gpt-4o": "gpt-4o-mini"},
                                    "patch": [{"op": "remove", "path": "/seed"}], "hook": "m:f"}))  # fmt: skip
    assert describe(stored) == ("system prompt from prompts/v2.txt (sha256 1a2b3c4d), models gpt-4o -> gpt-4o-mini,"
                                " patch remove /seed, hook m:f")  # fmt: skip
    assert describe({"system_prompt": {**stored["system_prompt"], "mode": "prepend"}}).startswith("system prompt prepended from")
    assert describe(None) == ""
