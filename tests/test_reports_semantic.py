"""Reports of a run with an embeddings endpoint: the metric, its gate, its notes; never a call.

``embed_stored`` embeds a stored run (as ``replay run`` does while it replays); the
read-only commands afterwards send nothing, and say so when vectors are missing."""

import asyncio
import json
import os

import pytest
from click.testing import CliRunner

from replay.cli import cli
from replay.config import Arm, Embeddings, Limits
from replay.evaluate import evaluate
from replay.reports import render
from replay.stages.embeddings import embed_stored
from replay.store import Store
from stored_runs import golden_run
from test_reports import check_golden, terminal_text

GATES = [{"metric": "semantic_similarity", "min": 0.5}, {"metric": "semantic_similarity_p10", "min": 0.2}]


def embedded_run(tmp_path, server, embed=True, batch_size=16):
    path = tmp_path / "golden.db"
    config = {"base_url": server.base_url, "model": "mock-embed", "batch_size": batch_size}
    store = golden_run(path, embeddings=config, gates=GATES)
    if embed:
        endpoint = Embeddings(Arm(base_url=server.base_url, model="mock-embed", stream=False, limits=Limits()), batch_size)
        asyncio.run(embed_stored(store, "golden-run", "logged", endpoint))
    return str(path)


def test_embedding_a_stored_run_sends_each_distinct_text_once_in_full_batches(tmp_path, server):
    path = embedded_run(tmp_path, server)
    batches = server.stats.embedding_batches
    texts = sum(batches)
    assert all(size == 16 for size in batches[:-1]) and len(batches) == -(-texts // 16)
    assert len(batches) <= 2 * 119 / 16  # at most two texts a pair, and fewer: equal answers are one text
    asyncio.run(embed_stored(Store(path), "golden-run", "logged", Embeddings(Arm(server.base_url, "mock-embed"), 16)))
    assert server.stats.embedding_batches == batches  # every pair has its cosine: nothing to do


def test_the_reports_show_the_metric_and_its_gates_and_send_nothing(tmp_path, server, monkeypatch):
    path = embedded_run(tmp_path, server)
    calls = server.stats.embedding_calls
    evaluation = evaluate(Store(path), "golden-run")
    semantic = evaluation.metrics["semantic_similarity"]
    assert semantic.n == 119 and semantic.extra["missing"] == 0 and evaluation.notes == ()
    assert [result.status for result in evaluation.decision.results] == ["PASS", "PASS"]
    check_golden("report-semantic.md", render("markdown", evaluation))
    monkeypatch.setenv("NO_COLOR", "1")
    text = terminal_text(evaluation)
    assert "semantic_similarity " in text and "Semantic similarity (mock-embed): mean" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    data = json.loads(render("json", evaluation))
    assert data["embeddings"] == {"model": "mock-embed", "batch_size": 16, "embedded": 119, "missing": 0}
    assert data["metrics"]["semantic_similarity"]["p10"]["n"] == 119
    assert data["segments"]["category"]["billing"]["semantic_similarity"]["n"] == 40
    junit = render("junit", evaluation)
    assert 'name="semantic_similarity_p10"' in junit and "<failure" not in junit
    evaluate(Store(path), "golden-run")
    assert server.stats.embedding_calls == calls


def test_a_run_never_embedded_says_so_and_its_semantic_gates_are_inconclusive(tmp_path, server):
    path = embedded_run(tmp_path, server, embed=False)
    evaluation = evaluate(Store(path), "golden-run")
    assert server.stats.embedding_calls == 0
    # 91 pairs answered alike need no vector (cosine 1); the 28 that differ do
    assert evaluation.notes == ("semantic_similarity: 28 pair(s) have no embedding under mock-embed yet (the run"
                                " stopped before embedding them); its intervals allow for any similarity there",)  # fmt: skip
    semantic = evaluation.metrics["semantic_similarity"]
    assert (semantic.n, semantic.extra["missing"], semantic.candidate.value) == (91, 28, 1.0)
    assert semantic.candidate.low < 0.5  # as if the 28 were all -1: the gate cannot pass on the alike pairs alone
    assert [r.status for r in evaluation.decision.results] == ["INCONCLUSIVE"] * 2
    assert "over 91 pairs; 28 pair(s) not embedded yet" in render("markdown", evaluation)


def test_pairs_with_stored_vectors_but_no_cosine_get_one_without_a_call(tmp_path, server):
    path = embedded_run(tmp_path, server)
    store = Store(path)
    store.db.execute("DELETE FROM pair_similarities WHERE request_id >= 'req-060'")  # stopped between vectors and cosines
    calls = server.stats.embedding_calls
    evaluation = evaluate(store, "golden-run")
    assert evaluation.metrics["semantic_similarity"].n == 119 and evaluation.notes == ()
    assert server.stats.embedding_calls == calls
    assert len(store.pair_similarities("golden-run", "mock-embed")) == 120  # stored again (the errored pair as NULL)


def test_the_cli_report_notes_missing_vectors_on_stderr_and_gate_exits_on_them(tmp_path, server):
    path = embedded_run(tmp_path, server, embed=False)
    result = CliRunner().invoke(cli, ["gate", "golden-run", "--store", path])
    assert result.exit_code == 1
    assert "semantic_similarity: 28 pair(s) have no embedding under mock-embed yet" in result.stderr
    assert server.stats.embedding_calls == 0


def test_without_an_endpoint_the_reports_stay_as_they_were(tmp_path):
    evaluation = evaluate(golden_run(tmp_path / "plain.db"), "golden-run")
    assert "semantic_similarity" not in evaluation.metrics
    assert all("semantic_similarity" not in metrics for values in evaluation.segments.values() for metrics in values.values())
    assert "embeddings" not in json.loads(render("json", evaluation))


def test_show_gives_the_pairs_semantic_similarity_and_says_when_it_has_none(tmp_path, server):
    path = embedded_run(tmp_path, server)
    store = Store(path)
    (cosine,) = [value for request_id, value in store.pair_similarities("golden-run", "mock-embed").items() if request_id == "req-000"]
    shown = CliRunner().invoke(cli, ["show", "golden-run", "req-000", "--store", path])
    assert shown.exit_code == 0 and f"semantic similarity {cosine:.3f}" in shown.stdout and shown.stderr == ""
    store.db.execute("DELETE FROM pair_similarities WHERE request_id = 'req-000'")
    store.db.execute("DELETE FROM embeddings")
    calls = server.stats.embedding_calls
    shown = CliRunner().invoke(cli, ["show", "golden-run", "req-000", "--store", path])
    assert shown.exit_code == 0 and "semantic similarity" not in shown.stdout
    assert shown.stderr == ("note: semantic_similarity: 1 pair(s) have no embedding under mock-embed yet (the run stopped"
                            " before embedding them); its intervals allow for any similarity there\n")  # fmt: skip
    assert server.stats.embedding_calls == calls


def test_a_gates_file_with_a_semantic_gate_is_refused_for_a_run_without_embeddings(tmp_path):
    golden_run(tmp_path / "plain.db")
    gates = tmp_path / "gates.yaml"
    gates.write_text("gates:\n  - {metric: error_rate, max_delta: 0.1}\n  - {metric: semantic_similarity, min: 0.8}\n")
    result = CliRunner().invoke(cli, ["gate", "golden-run", "--store", str(tmp_path / "plain.db"), "--gates", str(gates)])
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {gates}: gates[1].metric: semantic_similarity needs an embeddings endpoint, and run"
                             " golden-run had none\n")  # fmt: skip


def test_vectors_of_two_lengths_under_one_model_name_are_one_clear_error(tmp_path, server):
    path = embedded_run(tmp_path, server)
    store = Store(path)
    store.db.execute("UPDATE embeddings SET vector = substr(vector, 1, 16), dims = 4 WHERE rowid = (SELECT MIN(rowid) FROM embeddings)")
    store.db.execute("DELETE FROM pair_similarities")
    result = CliRunner().invoke(cli, ["report", "golden-run", "--store", path])
    assert result.exit_code == 2
    assert result.stderr == ("Error: embeddings: the store holds vectors of different lengths under the model name"
                             " 'mock-embed' (two models served under one name?): give the endpoint's model another name\n")  # fmt: skip
