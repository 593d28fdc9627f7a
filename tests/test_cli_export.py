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


def _jsonl_rows(store):
    import json

    result = invoke("export", "latest", "--store", store)
    assert result.exit_code == 0
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_parquet_holds_the_jsonl_rows_with_typed_columns(tmp_path, store):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    target = tmp_path / "x.parquet"
    result = invoke("export", "latest", "--format", "parquet", "-o", target, "--store", store)
    assert (result.exit_code, result.stderr) == (0, f"wrote 24 rows to {target}\n")
    table = pq.read_table(target)
    expected = _jsonl_rows(store)
    assert table.column_names == list(expected[0])
    types = dict(zip(table.schema.names, table.schema.types))
    assert (types["latency_ms"], types["prompt_tokens"], types["tokens_estimated"], types["metadata"]) == (
        pa.float64(), pa.int64(), pa.bool_(), pa.string())
    assert types["completed_at"] == pa.timestamp("us", tz="UTC")
    rows = table.to_pylist()
    for row in rows:
        for key in ("tool_calls", "attempts", "params", "metadata"):
            row[key] = None if row[key] is None else json.loads(row[key])
        row["completed_at"] = row["completed_at"].timestamp()
    for row, want in zip(rows, expected, strict=True):
        assert row["completed_at"] == pytest.approx(want.pop("completed_at"), abs=1e-6)  # microseconds kept
        del row["completed_at"]
        assert row == want


def test_parquet_is_written_a_batch_at_a_time(tmp_path, store, monkeypatch):
    import pyarrow.parquet as pq

    import replay.export

    monkeypatch.setattr(replay.export, "PARQUET_BATCH_ROWS", 5)
    target = tmp_path / "x.parquet"
    assert invoke("export", "latest", "--format", "parquet", "-o", target, "--store", store).exit_code == 0
    meta = pq.ParquetFile(target).metadata
    assert (meta.num_rows, meta.num_row_groups) == (24, 5)  # 4 batches of 5 and the last 4


def test_a_run_without_results_is_a_parquet_file_of_the_columns(tmp_path):
    import io

    import pyarrow.parquet as pq

    from replay.export import EXPORT_COLUMNS, write_parquet

    out = io.BytesIO()
    assert write_parquet(iter([]), out) == 0
    table = pq.read_table(io.BytesIO(out.getvalue()))
    assert (table.num_rows, table.column_names) == (0, list(EXPORT_COLUMNS))


def test_parquet_needs_an_output_file(store):
    result = invoke("export", "latest", "--format", "parquet", "--store", store)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "Error: --format parquet writes a binary file: name it with -o FILE.parquet\n"


def test_parquet_without_pyarrow_is_a_one_line_hint(tmp_path, store, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    target = tmp_path / "x.parquet"
    result = invoke("export", "latest", "--format", "parquet", "-o", target, "--store", store)
    assert result.exit_code == 2
    assert result.stderr == "Error: --format parquet needs pyarrow, which is not installed: pip install 'replay[parquet]'\n"
    assert not target.exists()


def test_a_parquet_export_that_fails_leaves_no_file(tmp_path, store, monkeypatch):
    import replay.export

    def broken(rows, handle):
        handle.write(b"PAR1")
        raise ValueError("a bug")

    monkeypatch.setattr(replay.export, "write_parquet", broken)
    with pytest.raises(ValueError, match="a bug"):  # a bug re-raises under pytest (users see one line)
        CliRunner().invoke(cli, ["export", "latest", "--format", "parquet", "-o", str(tmp_path / "x.parquet"),
                                 "--store", store], catch_exceptions=False)  # fmt: skip
    assert not any(path.name.startswith("x.parquet") for path in tmp_path.iterdir())
