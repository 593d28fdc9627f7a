"""``replay run`` with arm transforms, end to end against local mock servers: the prompt-change
test (scenarios/prompt-change.yaml: production fresh with the logged prompt, the candidate with
the new one), the transform in every report's header, and a transform failing on some records."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, ROOT, record, write_log
from replay.cli import cli
from replay.mockserver import messages_key

SCENARIO = os.path.join(ROOT, "scenarios", "prompt-change.yaml")
with open(os.path.join(ROOT, "scenarios", "prompts", "support-v2.txt"), encoding="utf-8") as _handle:
    NEW_PROMPT = _handle.read()
OLD_PROMPT = "You are Acme's support assistant. Be brief and polite."


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def support_record(i):
    messages = [{"role": "system", "content": OLD_PROMPT}, {"role": "user", "content": f"Where is parcel {i}?"}]
    return record(f"r{i}", request={"model": "gpt-4o", "temperature": 0, "messages": messages})


def results(store_path, arm):
    db = sqlite3.connect(store_path)
    db.row_factory = sqlite3.Row
    return {row["request_id"]: dict(row) for row in db.execute("SELECT * FROM results WHERE arm = ?", (arm,))}


@pytest.fixture
def prompt_change(tmp_path, store_path, make_server, monkeypatch):
    """The shipped scenario run over six requests; the new prompt changes the answer to three of them."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    log = write_log(tmp_path / "support.jsonl", [support_record(i) for i in range(6)])
    changed = {}
    for i in range(3):
        messages = [{"role": "system", "content": NEW_PROMPT}, {"role": "user", "content": f"Where is parcel {i}?"}]
        changed[messages_key({"messages": messages})] = f"Parcel {i} left the depot today; track it at acme.example/t."
    production, candidate = make_server(latency_ms=5), make_server(latency_ms=5, answers=changed)
    result = invoke("run", SCENARIO, "--store", store_path, "--quiet", "--gates", NO_GATES, "--logs", log,
                    "--production-url", production.base_url, "--candidate-url", candidate.base_url)  # fmt: skip
    assert result.exit_code == 0, result.output
    return production, candidate


def test_production_keeps_the_logged_prompt_and_the_candidate_sends_the_new_one(prompt_change, store_path):
    production, candidate = prompt_change
    assert {body["messages"][0]["content"] for body in production.stats.bodies} == {OLD_PROMPT}
    assert {body["messages"][0]["content"] for body in candidate.stats.bodies} == {NEW_PROMPT}
    assert len(candidate.stats.bodies) == 6 and {body["model"] for body in candidate.stats.bodies} == {"gpt-4o"}
    texts = {request_id: row["text"] for request_id, row in results(store_path, "candidate").items()}
    assert texts["r0"] == "Parcel 0 left the depot today; track it at acme.example/t."
    assert texts["r4"] == results(store_path, "production")["r4"]["text"]


def test_the_report_names_the_prompt_and_shows_the_change(prompt_change, store_path):
    sha = "5a21ec43"
    report = json.loads(invoke("report", "--store", store_path, "--format", "json").stdout)
    transform = report["run"]["candidate_transform"]
    assert transform["summary"] == f"system prompt from prompts/support-v2.txt (sha256 {sha})"
    assert transform["system_prompt"]["file"] == "prompts/support-v2.txt" and transform["system_prompt"]["sha256"].startswith(sha)
    assert "production_transform" not in report["run"] and report["run"]["baseline"] == "production"
    assert report["metrics"]["similarity"]["exact_match"]["value"] == pytest.approx(0.5)  # three answers of six changed
    text = invoke("report", "--store", store_path).stdout
    assert f"Candidate  gpt-4o, system prompt from prompts/support-v2.txt (sha256 {sha})" in text
    assert "Baseline   fresh: gpt-4o\n" in text
    markdown = invoke("report", "--store", store_path, "--format", "markdown").stdout
    assert f"**Candidate:** gpt-4o, system prompt from prompts/support-v2.txt (sha256 {sha})" in markdown


def test_a_transform_failing_on_some_records_stores_them_as_transform_errors(tmp_path, store_path, server):
    records = [record("r0", logit_bias=None), record("r1"), record("r2")]
    records[0]["request"]["logit_bias"] = {"50256": -100}
    log = write_log(tmp_path / "log.jsonl", records)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: t\nlogs: {log}\ncandidate: {{base_url: '{server.base_url}', model: gpt-4o-mini,"
                        " transform: {patch: [{op: remove, path: /logit_bias}]}}\n")  # fmt: skip
    result = invoke("run", str(scenario), "--store", store_path, "--quiet", "--gates", NO_GATES)
    assert result.exit_code == 0, result.output
    assert "candidate: 1 ok, 2 errors" in result.output
    rows = results(store_path, "candidate")
    assert rows["r0"]["status"] == "ok" and len(server.stats.bodies) == 1 and "logit_bias" not in server.stats.bodies[0]
    for request_id in ("r1", "r2"):
        row = rows[request_id]
        assert (row["status"], row["error_class"], row["attempts"]) == ("error", "transform_error", 0)
        assert row["error_message"] == "transform.patch: can't remove a non-existent object 'logit_bias'"


def test_a_transformed_production_answers_the_noise_floor_the_same_way_and_a_mapped_model_is_priced(tmp_path, store_path, make_server):
    (tmp_path / "note.txt").write_text("Reply in English.")
    log = write_log(tmp_path / "log.jsonl", [support_record(i) for i in range(4)])
    production, candidate = make_server(latency_ms=5), make_server(latency_ms=5)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"name: t\nlogs: {log}\nbaseline: fresh\nnoise_floor: {{sample: 2}}\n"
        f"production: {{base_url: '{production.base_url}', model: gpt-4o, transform: {{system_prompt_file: note.txt, mode: append}}}}\n"
        f"candidate: {{base_url: '{candidate.base_url}', model: fallback, transform: {{model_map: {{gpt-4o: gpt-4o-mini}}}}}}\n"
        "prices: {gpt-4o-mini: {input: 1000000, output: 0}}\n")  # fmt: skip
    result = invoke("run", str(scenario), "--store", store_path, "--quiet", "--gates", NO_GATES)
    assert result.exit_code == 0, result.output
    assert len(production.stats.bodies) == 6  # four for the baseline, two for the noise floor
    assert {body["messages"][0]["content"] for body in production.stats.bodies} == {f"{OLD_PROMPT}\n\nReply in English."}
    assert {body["model"] for body in candidate.stats.bodies} == {"gpt-4o-mini"}
    for row in results(store_path, "candidate").values():
        assert row["cost_usd"] == pytest.approx(row["prompt_tokens"])  # $1 a token: priced as gpt-4o-mini
    text = invoke("report", "--store", store_path).stdout
    assert "Candidate  fallback, models gpt-4o -> gpt-4o-mini\n" in text
    sha = hashlib.sha256(b"Reply in English.").hexdigest()[:8]
    assert f"Baseline   fresh: gpt-4o, system prompt appended from note.txt (sha256 {sha})\n" in text
