"""``replay export``: a path that cannot be written is one line and exit 2, and no half file."""

import pytest
from click.testing import CliRunner

from replay.cli import cli
from stored_runs import golden_run


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "replay.db"
    golden_run(path, n=12)
    return str(path)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_export_to_a_missing_folder_is_a_located_error(tmp_path, store):
    target = tmp_path / "nonexistent" / "dir" / "x.csv"
    result = invoke("export", "latest", "--format", "csv", "-o", target, "--store", store)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {target}: cannot write (no such directory: {target.parent})\n"
    assert not (tmp_path / "nonexistent").exists()


def test_export_to_a_read_only_folder_is_a_located_error(tmp_path, store, monkeypatch):
    import os

    folder = tmp_path / "ro"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(folder) else real_access(path, mode))
    result = invoke("export", "latest", "-o", folder / "x.jsonl", "--store", store)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {folder / 'x.jsonl'}: cannot write ({folder} is not writable)\n"


def test_a_failed_write_leaves_no_half_file(tmp_path, store, monkeypatch):
    import replay.export

    def broken(rows, handle):
        handle.write("partial\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(replay.export, "write_jsonl", broken)
    target = tmp_path / "x.jsonl"
    result = invoke("export", "latest", "-o", target, "--store", store)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {target}: cannot write (No space left on device)\n"
    assert not any(p.name.startswith("x.jsonl") for p in tmp_path.iterdir())


def test_export_to_a_file_writes_every_row(tmp_path, store):
    target = tmp_path / "x.jsonl"
    result = invoke("export", "latest", "-o", target, "--store", store)
    assert result.exit_code == 0
    assert result.stderr == f"wrote 24 rows to {target}\n"
    assert len(target.read_text().splitlines()) == 24
