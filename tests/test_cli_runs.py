"""``replay runs``: a table a person can read at 80 columns, whose run ids are never cut."""

import re

import pytest
from click.testing import CliRunner

from replay.cli import cli
from stored_runs import golden_run, hostile_run

IDS = ("20261201-101010-ffee00", "20261201-090512-a1b2c3")


def invoke(*args, columns):
    """``columns`` None: piped with no COLUMNS set."""
    result = CliRunner(env={"COLUMNS": columns, "NO_COLOR": "1"}).invoke(cli, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "replay.db"
    golden_run(path, run_id=IDS[1], n=60)
    store = golden_run(path, run_id=IDS[0], n=60)
    store.db.execute("UPDATE runs SET name = 'support-canary-gpt-4o-mini', status = 'budget_exhausted' WHERE id = ?",
                     (IDS[0],))  # fmt: skip
    return str(path)


def test_at_80_columns_every_run_id_is_whole_and_the_name_folds(store):
    result = invoke("runs", "--store", store, columns="80")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == (
        "run                     name         status            planned  outcomes  errors\n"
        + "─" * 80 + "\n"
        "20261201-101010-ffee00  support-can  budget_exhausted       60        60       1\n"
        "                        ary-gpt-4o-\n"
        "                        mini\n"
        "20261201-090512-a1b2c3  golden       completed              60        60       1\n"
    )


def test_columns_is_honoured_when_piped(store):
    wide = invoke("runs", "--store", store, columns="100").stdout
    assert max(len(line) for line in wide.splitlines()) <= 100
    assert wide.splitlines()[0].split() == ["run", "name", "status", "planned", "outcomes", "errors", "seconds"]
    assert "20261201-101010-ffee00  support-canary-gpt-4o-  budget_exhausted       60        60       1     60.0\n" in wide


def test_piped_without_columns_is_one_line_per_run_with_every_column(store):
    result = invoke("runs", "--store", store, columns=None)
    lines = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<started>", result.stdout).splitlines()
    assert lines == [
        "run                     name                        status            planned  outcomes  errors  started"
        "              seconds",
        "─" * 125,
        "20261201-101010-ffee00  support-canary-gpt-4o-mini  budget_exhausted       60        60       1  <started>"
        "     60.0",
        "20261201-090512-a1b2c3  golden                      completed              60        60       1  <started>"
        "     60.0",
    ]


def test_narrower_than_the_ids_the_lines_grow_rather_than_cut_an_id(store):
    lines = invoke("runs", "--store", store, columns="40").stdout.splitlines()
    assert [line.split()[0] for line in lines if line.startswith("2026")] == list(IDS)


def test_no_line_ends_in_spaces(store):
    for columns in ("80", "100", None):
        assert not [line for line in invoke("runs", "--store", store, columns=columns).stdout.splitlines()
                    if line != line.rstrip()]  # fmt: skip


def test_a_hostile_run_name_is_printed_as_text(tmp_path):
    hostile_run(tmp_path / "h.db")
    result = invoke("runs", "--store", tmp_path / "h.db", columns="80")
    assert result.stdout == (
        "run          name             status     planned  outcomes  errors  seconds\n"
        + "─" * 75 + "\n"
        "hostile-run  [bold]nm\\x1b[5m  completed        3         3       1     60.0\n"
    )
