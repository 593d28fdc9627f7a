"""A ``--gates`` file's ``on_inconclusive`` decides the exit code, as the scenario's key would."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from replay.cli import cli
from stored_runs import golden_run

RUN = "golden-run"
UNSETTLED = "gates:\n  - metric: error_rate\n    max_delta: 0.005\n"  # 120 pairs cannot settle it


def invoke(*args):
    return CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("line, code", [("", 1), ("on_inconclusive: pass\n", 0), ("on_inconclusive: fail\n", 1)])
def test_the_gates_files_on_inconclusive_sets_the_exit_code(tmp_path, line, code):
    golden_run(tmp_path / "s.db")
    gates = tmp_path / "gates.yaml"
    gates.write_text(UNSETTLED + line)
    for command in ("gate", "report"):
        result = invoke(command, RUN, "--store", tmp_path / "s.db", "--gates", gates, "--format", "json") \
            if command == "report" else invoke(command, RUN, "--store", tmp_path / "s.db", "--gates", gates)  # fmt: skip
        if command == "gate":
            assert result.exit_code == code
            assert f"on_inconclusive: {'pass' if code == 0 else 'fail'}" in result.stdout
        else:
            assert f'"exit_code": {code}' in result.stdout


def test_a_bad_on_inconclusive_in_a_gates_file_names_the_file_and_key(tmp_path):
    golden_run(tmp_path / "s.db")
    gates = tmp_path / "gates.yaml"
    gates.write_text(UNSETTLED + "on_inconclusive: maybe\n")
    result = invoke("gate", RUN, "--store", tmp_path / "s.db", "--gates", gates)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {gates}: on_inconclusive: expected 'fail' or 'pass', got 'maybe'\n"
