"""A run stopped by an unexpected exception (a bug) is marked failed in the store, not left running."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, record, write_log
from replay.cli import cli
from replay.runner import Engine


def test_an_unexpected_exception_marks_the_run_failed_and_says_how_to_resume(server, tmp_path, store_path, monkeypatch):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}") for i in range(3)])

    async def broken(self, state, record):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Engine, "_replay", broken)
    with pytest.raises(RuntimeError, match="a bug"):  # under pytest the traceback surfaces
        CliRunner().invoke(cli, ["run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "m",
                                 "--store", store_path, "--quiet", "--gates", NO_GATES], catch_exceptions=False)  # fmt: skip
    run_id, status, message = sqlite3.connect(store_path).execute("SELECT id, status, message FROM runs").fetchone()
    assert status == "failed"
    assert message == f"stopped by an unexpected RuntimeError; resume with: replay run --resume {run_id}"
    monkeypatch.undo()
    resumed = CliRunner().invoke(cli, ["run", "--resume", run_id, "--store", store_path, "--quiet", "--gates", NO_GATES],
                                 catch_exceptions=False)  # fmt: skip
    assert resumed.exit_code == 0, resumed.output
    assert sqlite3.connect(store_path).execute("SELECT status FROM runs").fetchone()[0] == "completed"
