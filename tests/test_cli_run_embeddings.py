"""``replay run`` with an ``embeddings`` endpoint: pairs embedded while the run goes on, in full
batches, cached across runs and reports; a dead endpoint ends the run in one line, exit 3."""

import os
import socket
import sqlite3

from click.testing import CliRunner

from conftest import record, write_log
from replay.cli import cli
from replay.evaluate import evaluate
from replay.store import Store
from replay.stages import run_stages
from replay.stages.embeddings import EmbeddingsStage

GATES = "gates: [{metric: semantic_similarity, min: -1.0}]\non_inconclusive: pass\n"  # the exit code is the run's


def scenario(tmp_path, log, chat_url, embed_url, *, batch_size=8, extra="", top=""):
    """``extra``: more keys of the embeddings mapping; ``top``: more top-level lines."""
    path = tmp_path / "scenario.yaml"
    path.write_text(
        f"name: sem\nlogs: {log}\ncandidate: {{base_url: '{chat_url}', model: cand-1}}\n"
        f"embeddings: {{base_url: '{embed_url}', model: mock-embed, batch_size: {batch_size}{extra}}}\n{GATES}{top}"
    )
    return str(path)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def log_of(tmp_path, n=20):
    return write_log(tmp_path / "log.jsonl", [record(f"r{i:02d}", f"question {i}") for i in range(n)])


def cosines(store_path):
    db = sqlite3.connect(store_path)
    return db.execute("SELECT request_id, cosine FROM pair_similarities ORDER BY request_id").fetchall()


def test_a_run_embeds_every_pair_in_full_batches_and_the_report_reads_them(server, tmp_path, store_path):
    path = scenario(tmp_path, log_of(tmp_path), server.base_url, server.base_url)
    result = run("run", path, "--store", store_path, "--quiet")
    assert result.exit_code == 0, result.output
    # 20 logged answers and 20 candidate answers, all different: 40 texts in batches of 8
    assert server.stats.embedding_batches == [8] * 5
    rows = cosines(store_path)
    assert len(rows) == 20 and all(0 < cosine < 1 for _, cosine in rows)
    calls = server.stats.embedding_calls
    report = run("report", "latest", "--store", store_path, "--format", "markdown")
    assert report.exit_code == 0 and "| semantic_similarity | 20 |" in report.output
    assert server.stats.embedding_calls == calls  # the report sends nothing


def test_a_second_run_over_the_same_answers_sends_nothing(server, tmp_path, store_path):
    path = scenario(tmp_path, log_of(tmp_path, 10), server.base_url, server.base_url)
    assert run("run", path, "--store", store_path, "--quiet").exit_code == 0
    calls = server.stats.embedding_calls
    assert run("run", path, "--store", store_path, "--quiet").exit_code == 0
    assert server.stats.embedding_calls == calls  # the mock answers alike: every text is in the store
    db = sqlite3.connect(store_path)
    assert db.execute("SELECT COUNT(DISTINCT run_id), COUNT(*) FROM pair_similarities").fetchone() == (2, 20)


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_embeddings_endpoint_ends_the_run_in_one_line_with_exit_3_and_the_answers_kept(server, tmp_path, store_path):
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    path = scenario(tmp_path, log_of(tmp_path, 6), server.base_url, dead, batch_size=2,
                    extra=", limits: {max_attempts: 1}")  # fmt: skip
    result = run("run", path, "--store", store_path, "--quiet")
    assert result.exit_code == 3
    run_id, status = sqlite3.connect(store_path).execute("SELECT id, status FROM runs").fetchone()
    *_, hint, command, last = result.stderr.splitlines()
    assert (hint, command) == (f"run {run_id}: failed; resume with:", f"  replay run --resume {run_id} --store {store_path}")
    assert last.startswith(f"Error: embeddings endpoint {dead} is unreachable: "), result.stderr
    assert last.endswith("; every answer is stored, and 6 pair(s) have no semantic similarity until the run is resumed")
    assert status == "failed"
    db = sqlite3.connect(store_path)
    assert db.execute("SELECT COUNT(*) FROM results WHERE arm = 'candidate' AND status = 'ok'").fetchone() == (6,)
    assert cosines(store_path) == []


def test_a_resume_embeds_the_stored_pairs_left_without_a_vector(server, tmp_path, store_path):
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    log = log_of(tmp_path, 6)
    path = scenario(tmp_path, log, server.base_url, dead, batch_size=4, extra=", limits: {max_attempts: 1}")
    assert run("run", path, "--store", store_path, "--quiet").exit_code == 3
    run_id = sqlite3.connect(store_path).execute("SELECT id FROM runs").fetchone()[0]
    db = sqlite3.connect(store_path)  # the endpoint is back, where the scenario snapshot says it is not: move it
    db.execute("UPDATE runs SET scenario_json = replace(scenario_json, ?, ?)", (dead, server.base_url))
    db.commit()
    result = run("run", "--resume", run_id, "--store", store_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert len(cosines(store_path)) == 6 and server.stats.embedding_batches == [4, 4, 4]


def test_a_missing_key_is_refused_before_the_run_exists(server, tmp_path, store_path):
    path = scenario(tmp_path, log_of(tmp_path, 2), server.base_url, server.base_url, extra=", api_key_env: NO_SUCH_KEY_ENV")
    result = run("run", path, "--store", store_path, "--quiet")
    assert result.exit_code == 2
    assert result.stderr == "Error: embeddings.api_key_env: the environment variable NO_SUCH_KEY_ENV is not set\n"
    assert not os.path.exists(store_path) or sqlite3.connect(store_path).execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)


def test_run_stages_add_the_embeddings_stage_only_with_an_endpoint(tmp_path):
    from replay.scenario_file import load_scenario
    from replay.settings import decision_from

    with_endpoint = load_scenario(scenario(tmp_path, "log.jsonl", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"))
    stages = run_stages(with_endpoint, decision_from(dict(with_endpoint.decision)))
    assert [type(stage) for stage in stages][-1] is EmbeddingsStage and stages[-1].base_arm == "logged"
    plain = load_scenario(str(write_scenario(tmp_path)))
    assert not any(isinstance(stage, EmbeddingsStage) for stage in run_stages(plain, decision_from(dict(plain.decision))))


def write_scenario(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("name: p\nlogs: log.jsonl\ncandidate: {base_url: 'http://127.0.0.1:9/v1', model: m}\n")
    return path


def test_a_batch_that_keeps_failing_costs_a_warning_and_its_pairs_are_counted_in_the_report(server, tmp_path, store_path):
    records = [record(f"r{i:02d}", f"question {i}") for i in range(5)]
    records[4]["response"]["choices"][0]["message"]["content"] = "a logged answer [mock:500*99]"  # only its embedding fails
    log = write_log(tmp_path / "log.jsonl", records)
    path = scenario(tmp_path, log, server.base_url, server.base_url, batch_size=1, extra=", limits: {max_attempts: 1}")
    result = run("run", path, "--store", store_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert ("warning: embeddings: 1 text(s) were not embedded (the last error: scripted 500); 1 pair(s) have no"
            " semantic similarity until the run is resumed") in result.stderr  # fmt: skip
    assert len(cosines(store_path)) == 4
    report = run("report", "latest", "--store", store_path, "--format", "json")
    assert '"missing": 1' in report.stdout


def test_a_pair_whose_candidate_failed_is_not_embedded(server, tmp_path, store_path):
    records = [record(f"r{i:02d}", f"question {i}") for i in range(3)] + [record("r99", "broken [mock:500*99]")]
    path = scenario(tmp_path, write_log(tmp_path / "log.jsonl", records), server.base_url, server.base_url, batch_size=2,
                    top="limits: {max_attempts: 1}\n")  # fmt: skip
    assert run("run", path, "--store", store_path, "--quiet").exit_code == 0
    assert sum(server.stats.embedding_batches) == 2 * 3  # the logged answer of r99 has nothing to be compared with
    assert dict(cosines(store_path))["r99"] is None


def test_the_noise_floors_pairs_are_embedded_too_and_reported_beside_the_candidates(server, tmp_path, store_path):
    path = scenario(tmp_path, log_of(tmp_path, 12), server.base_url, server.base_url,
                    top=f"production: {{base_url: '{server.base_url}', model: prod-1}}\nnoise_floor: {{sample: 5}}\n")  # fmt: skip
    assert run("run", path, "--store", store_path, "--quiet").exit_code == 0
    db = sqlite3.connect(store_path)
    assert db.execute("SELECT kind, COUNT(*) FROM pair_similarities GROUP BY kind ORDER BY kind").fetchall() == [
        ("candidate", 12), ("noise", 5)]  # fmt: skip
    calls = server.stats.embedding_calls
    evaluation = evaluate(Store(store_path), "latest")
    assert evaluation.metrics["semantic_similarity"].n == 12 and evaluation.noise.metrics["semantic_similarity"].n == 5
    assert evaluation.notes == () and server.stats.embedding_calls == calls
