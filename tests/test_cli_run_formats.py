"""``replay run`` on other tools' logs: the format detected once, every record replayed."""

from __future__ import annotations

import os
import sqlite3

from click.testing import CliRunner

from conftest import NO_GATES, ROOT
from replay.cli import cli

BATCH = os.path.join(ROOT, "fixtures", "logs", "openai-batch")


def arms(store_path):
    db = sqlite3.connect(store_path)
    return sorted(db.execute("SELECT arm, request_id, status FROM results").fetchall())


def test_a_batch_named_by_input_output_error_is_replayed(server, tmp_path, store_path):
    files = {part: os.path.join(BATCH, f"batch_{name}.jsonl") for part, name in
             (("input", "in"), ("output", "out"), ("error", "err"))}  # fmt: skip
    scenario = tmp_path / "batch.yaml"
    scenario.write_text(f"logs: {{input: {files['input']}, output: {files['output']}, error: {files['error']}}}\n"
                        f"candidate: {{base_url: '{server.base_url}', model: cand-1}}\n")  # fmt: skip
    result = CliRunner().invoke(cli, ["run", str(scenario), "--store", store_path, "--quiet", "--gates", NO_GATES],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: {files[part]}: format detected as openai-batch" for part in ("input", "output", "error")]
    assert arms(store_path) == [
        *[("candidate", f"req-{i}", "ok") for i in range(1, 5)],
        *[("logged", f"req-{i}", "ok") for i in range(1, 4)], ("logged", "req-4", "error"),
    ]  # fmt: skip


def test_a_run_says_per_file_what_it_read_and_what_it_skipped(server, tmp_path, store_path):
    log = os.path.join(ROOT, "fixtures", "logs", "langfuse", "observations_v1.jsonl")
    result = CliRunner().invoke(cli, ["run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model",
                                      "cand-1", "--store", store_path, "--quiet", "--gates", NO_GATES],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: {log}: format detected as langfuse",
                     f"note: {log}: 3 records read, skipped (not requests): 1 SPAN observation (only GENERATION is a request)"]  # fmt: skip
    assert len([row for row in arms(store_path) if row[0] == "candidate"]) == 3
