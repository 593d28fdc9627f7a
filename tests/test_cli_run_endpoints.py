"""``replay run`` against servers that refuse a parameter (``seed``, ``stream_options``), as vLLM,
Azure and others do: one hint per arm and parameter naming the patch that drops it; with that
patch the run succeeds, and an endpoint that then sends no usage has it counted locally."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, record, write_log
from replay.cli import cli
from replay.mockserver import MockServer, ServerConfig

VLLM = ("[{'type': 'extra_forbidden', 'loc': ('body', 'stream_options'), 'msg': 'Extra inputs are not permitted',"
        " 'input': {'include_usage': True}}]")  # fmt: skip
OPENAI = "Unrecognized request argument supplied: seed"


class StrictServer(MockServer):
    """The mock server, except that a body carrying one of ``rejects`` gets a 400 in that server's words."""

    def __init__(self, rejects: dict[str, str]) -> None:
        super().__init__(ServerConfig(latency_ms=5))
        self.rejects = rejects
        self.refused = 0

    async def _handle(self, method, path, headers, raw, writer):
        if method == "POST" and path.endswith("/chat/completions"):
            body = json.loads(raw)
            for key, message in self.rejects.items():
                if key in body:
                    self.refused += 1
                    error = {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": 400}
                    await self._send_json(writer, 400, error)
                    return True
        return await super()._handle(method, path, headers, raw, writer)


@pytest.fixture
def strict():
    servers = []

    def make(rejects):
        servers.append(StrictServer(rejects).start())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def run(tmp_path, store_path, server, transform=""):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"Where is parcel {i}?") for i in range(3)])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: t\nlogs: {log}\ncandidate: {{base_url: '{server.base_url}', model: local{transform}}}\n")
    return CliRunner().invoke(cli, ["run", str(scenario), "--store", store_path, "--quiet", "--gates", NO_GATES])


def candidate_rows(store_path):
    db = sqlite3.connect(store_path)
    return db.execute("SELECT status, http_status, tokens_estimated, prompt_tokens, completion_tokens FROM results"
                      " WHERE arm = 'candidate' ORDER BY request_id").fetchall()  # fmt: skip


def test_a_server_refusing_stream_options_gets_one_hint_and_the_patch_makes_usage_local(tmp_path, store_path, strict):
    server = strict({"stream_options": VLLM})
    refused = run(tmp_path, store_path, server)
    hints = [line for line in refused.stderr.splitlines() if line.startswith("warning: candidate: the endpoint rejects")]
    assert hints == [
        "warning: candidate: the endpoint rejects the parameter 'stream_options' (400: [{'type': 'extra_forbidden', 'loc':"
        " ('body', 'stream_options'), 'msg': 'Extra inputs are not permitted', 'input': {'i...); stop sending it with"
        " candidate.transform.patch: [{op: remove, path: /stream_options}] (usage is then counted locally and marked estimated)"
    ]  # fmt: skip
    assert "candidate: 0 ok, 3 errors" in refused.output and server.refused == 3

    store_path = str(tmp_path / "patched.db")
    patched = run(tmp_path, store_path, server, ", transform: {patch: [{op: remove, path: /stream_options}]}")
    assert patched.exit_code == 0, patched.output
    assert "rejects" not in patched.stderr and "candidate: 3 ok, 0 errors" in patched.output
    assert all(body["stream"] is True and "stream_options" not in body for body in server.stats.bodies)
    rows = candidate_rows(store_path)
    assert [row[:3] for row in rows] == [("ok", 200, 1)] * 3  # the stream had no usage: counted here, marked estimated
    assert all(row[3] > 0 and row[4] > 0 for row in rows)


def test_a_server_refusing_seed_gets_the_hint_for_seed(tmp_path, store_path, strict):
    server = strict({"seed": OPENAI})
    refused = run(tmp_path, store_path, server)
    assert ("warning: candidate: the endpoint rejects the parameter 'seed' (400: Unrecognized request argument supplied: seed);"
            " stop sending it with candidate.transform.patch: [{op: remove, path: /seed}]\n") in refused.stderr  # fmt: skip
    assert refused.stderr.count("rejects the parameter") == 1
    patched = run(tmp_path, str(tmp_path / "patched.db"), server, ", transform: {patch: [{op: remove, path: /seed}]}")
    assert "candidate: 3 ok, 0 errors" in patched.output and server.refused == 3
