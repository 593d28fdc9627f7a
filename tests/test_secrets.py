"""Secrets an endpoint echoes back never reach the store, exports, ``show`` or the terminal."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, record, write_log
from fault_server import FaultServer
from replay.cli import cli
from replay.secrets import REDACTED, Scrubber, scrub_shapes
from replay.types import Completion, ToolCall

KEY = "sk-proj-" + "Qx7" * 20
GATEWAY = "gwtoken-" + "9d2e" * 6


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Incorrect API key provided: Bearer abcdefgh12345678.", f"Incorrect API key provided: {REDACTED}."),
        ("authorization: bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", f"authorization: {REDACTED}"),
        ("key sk-ant-api03-" + "a" * 30 + " rejected", f"key {REDACTED} rejected"),
        ("masked sk-proj-****************abcd", f"masked {REDACTED}"),
        ("a Bearer token is sent in the Authorization header", "a Bearer token is sent in the Authorization header"),
        ("the sk-learn library", "the sk-learn library"),
        ("use Bearer authentication-schemes", "use Bearer authentication-schemes"),
        ("an sk-learn-style-naming rule", "an sk-learn-style-naming rule"),  # long as a key, but no digit
    ],
    ids=["bearer", "lowercase-bearer-jwt", "anthropic-key", "masked-openai-key", "prose-bearer", "prose-sk",
         "long-prose-bearer", "long-prose-sk"],
)
def test_secret_shapes_are_scrubbed_and_prose_is_not(text, expected):
    assert scrub_shapes(text) == expected


def test_configured_secrets_are_scrubbed_longest_first_and_short_values_are_left():
    scrubber = Scrubber(["abcdefgh", "abcdefgh-longer", "t1", None])
    assert scrubber.text("got abcdefgh-longer and abcdefgh for tenant t1") == f"got {REDACTED} and {REDACTED} for tenant t1"


def test_an_answer_is_scrubbed_in_every_text_field_and_left_alone_when_clean():
    scrubber = Scrubber([GATEWAY])
    clean = Completion(text="fine", tool_calls=(ToolCall(id="c1", name="f", arguments="{}"),))
    assert scrubber.completion(clean) is clean
    dirty = Completion(text=f"x {GATEWAY}", refusal=GATEWAY, response_id=GATEWAY,
                       tool_calls=(ToolCall(id="c1", name="f", arguments=f'{{"k": "{GATEWAY}"}}'),))  # fmt: skip
    scrubbed = scrubber.completion(dirty)
    assert scrubbed.text == f"x {REDACTED}" and scrubbed.refusal == REDACTED and scrubbed.response_id == REDACTED
    assert scrubbed.tool_calls[0].arguments == f'{{"k": "{REDACTED}"}}'


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(arg) for arg in args], env=env, catch_exceptions=False)


def run_against(server, fault, log, store, *extra):
    return invoke(
        "run", "--logs", log, "--candidate-url", server.url(fault), "--candidate-model", "m", "--candidate-key-env", "MY_KEY",
        "--max-attempts", 1, "--store", store, "--gates", NO_GATES, *extra, env={"MY_KEY": KEY},
    )  # fmt: skip


def stored_bytes(store: str) -> bytes:
    return b"".join(open(path, "rb").read() for path in (store, store + "-wal") if os.path.exists(path))


@pytest.mark.parametrize(
    "fault, extra, exit_code, echoed",
    [
        ("echo-500", (), 1, "Internal error while handling"),  # stored as each request's error; no pair answered
        ("echo-answer", ("--no-stream",), 0, f"authorization=Bearer {REDACTED}"),  # stored as the answer
        ("echo-401", (), 3, f"Incorrect API key provided: Bearer {REDACTED}."),  # the run's message, on stderr
    ],
)
def test_an_echoed_key_reaches_neither_the_store_nor_the_terminal(tmp_path, fault, extra, exit_code, echoed):
    log = write_log(tmp_path / "log.jsonl", [record("a", "hi"), record("b", "there")])
    store = str(tmp_path / "replay.db")
    with FaultServer() as server:
        result = run_against(server, fault, log, store, *extra)
        assert server.stats.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent, and echoed
    assert result.exit_code == exit_code, result.output
    outputs = [result.stdout, result.stderr]
    for command in (["export", "latest"], ["export", "latest", "--format", "csv"], ["show", "latest", "a"], ["runs", "--json"]):
        outputs.append(invoke(*command, "--store", store).output)
    everything = "\n".join(outputs)
    assert echoed in everything or echoed in stored_bytes(store).decode("utf-8", "replace")
    assert KEY not in everything and KEY[:16] not in everything
    assert KEY.encode() not in stored_bytes(store) and KEY[:16].encode() not in stored_bytes(store)


@pytest.mark.parametrize("fault, exit_code, echoed", [
    ("echo-500", 0, "(the last error: Internal error while handling"),  # a warning; the run completes
    ("echo-401", 3, f"Incorrect API key provided: Bearer {REDACTED}."),  # the run's one line
])  # fmt: skip
def test_a_key_echoed_by_the_embeddings_endpoint_reaches_neither_the_store_nor_the_terminal(server, tmp_path, fault,
                                                                                            exit_code, echoed):  # fmt: skip
    log = write_log(tmp_path / "log.jsonl", [record("a", "hi"), record("b", "there")])
    store = str(tmp_path / "replay.db")
    scenario = tmp_path / "s.yaml"
    with FaultServer() as faults:
        scenario.write_text(
            f"name: s\nlogs: {log}\ncandidate: {{base_url: '{server.base_url}', model: m}}\ngates: []\n"
            f"embeddings: {{base_url: '{faults.url(fault)}', model: e, api_key_env: MY_KEY, limits: {{max_attempts: 1}}}}\n"
        )
        result = invoke("run", str(scenario), "--store", store, env={"MY_KEY": KEY})
        assert faults.stats.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent, and echoed
    assert result.exit_code == exit_code, result.output
    assert echoed in result.stderr  # the endpoint's error is said, scrubbed
    assert KEY not in result.output and KEY[:16] not in result.output
    assert KEY.encode() not in stored_bytes(store) and KEY[:16].encode() not in stored_bytes(store)
