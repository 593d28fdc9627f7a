import json
import os
import sys

import pytest

from replay.mockserver import MockServer, ServerConfig
from scripted_provider import scripted_endpoint

sys._called_from_test = True  # the CLI re-raises unexpected errors under tests
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUPPORT_LOG = os.path.join(ROOT, "fixtures", "logs", "support.jsonl")
NO_GATES = os.path.join(ROOT, "tests", "data", "no-gates.yaml")
"""Engine tests pass this so the exit code reflects the replay, not a verdict on tiny samples."""


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    for name in ("OPENAI_API_KEY", "CANDIDATE_API_KEY", "REPLAY_STORE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with MockServer(ServerConfig(latency_ms=20)) as srv:
        yield srv


@pytest.fixture
def scripted():
    """An in-process endpoint (provider ``scripted``) whose answers the test scripts: no HTTP."""
    with scripted_endpoint() as script:
        yield script


@pytest.fixture
def make_server():
    servers = []

    def make(**kwargs):
        srv = MockServer(ServerConfig(**kwargs)).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "store" / "replay.db")


def write_log(path, records):
    """Write shadow-log records; a dict becomes a JSON line, a str is written as is."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write((record if isinstance(record, str) else json.dumps(record)) + "\n")
    return str(path)


def record(record_id, text="hello", **extra):
    rec = {
        "id": record_id,
        "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "max_tokens": 50},
        "response": {
            "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer to {text}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        },
        "latency_ms": 400,
        "metadata": {"category": "a"},
    }
    rec.update(extra)
    return rec
