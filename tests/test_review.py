"""``replay review export`` and ``replay review import`` through the CLI, on a stored golden run.

The golden run's candidate repeats many baseline answers word for word; so that a reviewer
(and these tests) can tell the two answers of every pair apart, the ``store`` fixture
appends a sentence to each candidate answer before anything is compared or exported.
"""

import csv
import json
import re
import sqlite3

import pytest
from click.testing import CliRunner

from replay.cli import cli
from stored_runs import golden_run

RUN = "golden-run"
COLUMNS = ["item_id", "segment", "prompt", "answer_a", "answer_b", "verdict", "comment"]
WORDS_HIDDEN = ("candidate", "baseline", "logged", "production", "cand-mini", "gpt-4o")


def invoke(*args):
    result = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(cli, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "replay.db"
    golden_run(path, n=60).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE results SET text = text || ' Anything else?' WHERE arm = 'candidate' AND status = 'ok'")
    db.commit()
    db.close()
    return str(path)


def export(store, prefix, *extra):
    result = invoke("review", "export", RUN, "--out", prefix, "--store", store, *extra)
    assert result.exit_code == 0, result.output
    return result


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def write_csv(path, items):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(items)
    return str(path)


def write_jsonl(path, items):
    with open(path, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item) + "\n")
    return str(path)


def request_of(store, item_id):
    """The request behind an item: only the store knows it, the file does not say."""
    db = sqlite3.connect(store)
    try:
        row = db.execute("SELECT request_id FROM review_items WHERE item_id = ?", (item_id,)).fetchone()
    finally:
        db.close()
    assert row is not None, item_id
    return row[0]


def candidate_side(store, item):
    """'A' or 'B': which column holds the stored candidate answer."""
    db = sqlite3.connect(store)
    try:
        (text,) = db.execute("SELECT text FROM results WHERE run_id = ? AND arm = 'candidate' AND request_id = ?",
                             (RUN, request_of(store, item["item_id"]))).fetchone()  # fmt: skip
    finally:
        db.close()
    sides = [side for side, key in (("A", "answer_a"), ("B", "answer_b")) if item[key] == text]
    assert len(sides) == 1, (item, text)
    return sides[0]


def other(side):
    return "B" if side == "A" else "A"


def reviews_in(store):
    db = sqlite3.connect(store)
    try:
        return db.execute("SELECT verdict, COUNT(*) FROM reviews GROUP BY verdict ORDER BY verdict").fetchall()
    finally:
        db.close()


# --- export -------------------------------------------------------------------------------


def test_export_writes_csv_and_jsonl_with_the_same_items(tmp_path, store):
    prefix = tmp_path / "review"
    result = export(store, prefix, "--n", "12")
    assert result.stdout == (f"wrote 12 items from run {RUN} (account 4, billing 4, shipping 4) "
                             f"to {prefix}.csv and {prefix}.jsonl\n")  # fmt: skip
    with open(f"{prefix}.csv", encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == COLUMNS
    rows, lines = read_csv(f"{prefix}.csv"), read_jsonl(f"{prefix}.jsonl")
    assert len(rows) == 12
    assert rows == lines  # same items, same order, same fields
    assert len({row["item_id"] for row in rows}) == 12
    assert all(row["verdict"] == "" and row["comment"] == "" for row in rows)
    # stratified: three categories of (about) equal size, four items each
    assert sorted(row["segment"] for row in rows) == ["account"] * 4 + ["billing"] * 4 + ["shipping"] * 4
    for row in rows:
        request_id = request_of(store, row["item_id"])
        assert ("billing", "shipping", "account")[int(request_id[4:]) % 3] == row["segment"]
        assert row["prompt"] == f"user: Question {int(request_id[4:])} about {row['segment']}"


def test_export_never_includes_the_candidate_error(tmp_path, store):
    result = export(store, tmp_path / "all", "--n", "100")
    assert "wrote 59 items" in result.stdout  # 60 pairs, less req-007 where the candidate failed
    requests = {request_of(store, row["item_id"]) for row in read_csv(tmp_path / "all.csv")}
    assert len(requests) == 59 and "req-007" not in requests


def test_export_is_blinded(tmp_path, store):
    prefix = tmp_path / "review"
    export(store, prefix, "--n", "12")
    rows = read_csv(f"{prefix}.csv")
    sides = [candidate_side(store, row) for row in rows]
    assert set(sides) == {"A", "B"}  # the order is drawn per pair
    with open(f"{prefix}.csv", encoding="utf-8") as handle:
        header = handle.readline().lower()
    for word in WORDS_HIDDEN:
        assert word not in header
    for row in rows + read_jsonl(f"{prefix}.jsonl"):
        for column, value in row.items():
            if column != "prompt":
                for word in WORDS_HIDDEN:
                    assert word not in value.lower(), (column, value)


def test_export_same_seed_same_files(tmp_path, store):
    export(store, tmp_path / "one", "--n", "12", "--seed", "5")
    export(store, tmp_path / "two", "--n", "12", "--seed", "5")
    export(store, tmp_path / "three", "--n", "12", "--seed", "6")
    for ext in ("csv", "jsonl"):
        assert (tmp_path / f"one.{ext}").read_bytes() == (tmp_path / f"two.{ext}").read_bytes()
    ids = {row["item_id"] for row in read_csv(tmp_path / "one.csv")}
    assert ids.isdisjoint(row["item_id"] for row in read_csv(tmp_path / "three.csv"))


# --- import -------------------------------------------------------------------------------


@pytest.fixture
def exported(tmp_path, store):
    export(store, tmp_path / "review", "--n", "12")
    return read_csv(tmp_path / "review.csv")


def test_import_all_candidate_verdicts(tmp_path, store, exported):
    filled = [{**row, "verdict": candidate_side(store, row)} for row in exported]
    path = write_csv(tmp_path / "filled.csv", filled)
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 0
    # Wilson 95% interval for 12 of 12: [75.8%, 100%]
    assert result.stdout.splitlines() == [
        "recorded 12 verdicts (0 left blank)",
        f"run {RUN}: candidate win rate 100.0% [75.8%, 100.0%], n=12 (12 candidate, 0 baseline, 0 ties)",
    ]
    assert reviews_in(store) == [("candidate", 12)]
    terminal = invoke("report", RUN, "--store", store).stdout
    assert "Human review: candidate win rate 100.0% [75.8%, 100.0%] (n=12: 12 candidate, 0 baseline, 0 ties)" in terminal


def test_import_mixed_verdicts_ties_count_half_and_reach_the_report(tmp_path, store, exported):
    verdicts = []
    for i, row in enumerate(exported):
        side = candidate_side(store, row)
        verdicts.append(side.lower() if i < 6 else other(side) if i < 9 else ("tie", "Tie", "same")[i - 9])
    path = write_csv(tmp_path / "filled.csv", [{**row, "verdict": v} for row, v in zip(exported, verdicts)])
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "recorded 12 verdicts (0 left blank)"
    # (6 + 3/2) / 12 = 62.5%
    found = re.fullmatch(rf"run {RUN}: candidate win rate 62\.5% \[(\d+\.\d)%, (\d+\.\d)%\], n=12 "
                         r"\(6 candidate, 3 baseline, 3 ties\)", lines[1])  # fmt: skip
    assert found, lines[1]
    low, high = float(found.group(1)), float(found.group(2))
    assert 25 < low < 62.5 < high < 90
    assert reviews_in(store) == [("baseline", 3), ("candidate", 6), ("tie", 3)]

    report = json.loads(invoke("report", RUN, "--store", store, "--format", "json").stdout)
    review = report["human_review"]
    assert review["n"] == 12 and review["value"] == pytest.approx(0.625)
    assert (review["candidate"], review["baseline"], review["tie"]) == (6, 3, 3)
    assert review["ci"][0] == pytest.approx(low / 100, abs=0.0006)
    assert review["ci"][1] == pytest.approx(high / 100, abs=0.0006)


def test_import_counts_blank_verdicts(tmp_path, store, exported):
    filled = [{**row, "verdict": candidate_side(store, row) if i % 3 else "  "} for i, row in enumerate(exported)]
    path = write_csv(tmp_path / "filled.csv", filled)
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "recorded 8 verdicts (4 left blank)"
    assert "n=8 (8 candidate, 0 baseline, 0 ties)" in result.stdout


def test_import_twice_does_not_count_twice(tmp_path, store, exported):
    path = write_csv(tmp_path / "filled.csv", [{**row, "verdict": candidate_side(store, row)} for row in exported])
    invoke("review", "import", path, "--store", store)
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 0
    assert "n=12 (12 candidate, 0 baseline, 0 ties)" in result.stdout


def physical_line_of_last_record(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read().count("\n")


def test_import_unknown_item_names_file_and_line(tmp_path, store, exported):
    filled = [{**row, "verdict": "A"} for row in exported]
    filled.append({"item_id": "i0000000000", "segment": "billing", "prompt": "p", "answer_a": "x", "answer_b": "y",
                   "verdict": "A", "comment": ""})  # fmt: skip
    path = write_csv(tmp_path / "filled.csv", filled)
    line = physical_line_of_last_record(path)
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"Error: {path}:{line}: item_id: 'i0000000000' was not exported from this store ({store})\n"
    assert reviews_in(store) == []  # nothing recorded from a file with a bad line


def test_import_bad_verdict_names_file_and_line(tmp_path, store, exported):
    # put a one-line item last so that its line is the file's last line
    single = next(row for row in exported if "\n" not in row["answer_a"] + row["answer_b"])
    rows = [{**row, "verdict": "B"} for row in exported if row is not single] + [{**single, "verdict": "maybe"}]
    path = write_csv(tmp_path / "filled.csv", rows)
    line = physical_line_of_last_record(path)
    assert line >= 13
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}:{line}: verdict: expected A, B or tie, got 'maybe'\n"
    assert reviews_in(store) == []


def test_import_jsonl(tmp_path, store):
    export(store, tmp_path / "review", "--n", "12")
    items = read_jsonl(tmp_path / "review.jsonl")
    path = write_jsonl(tmp_path / "filled.jsonl", [{**item, "verdict": candidate_side(store, item)} for item in items])
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "recorded 12 verdicts (0 left blank)",
        f"run {RUN}: candidate win rate 100.0% [75.8%, 100.0%], n=12 (12 candidate, 0 baseline, 0 ties)",
    ]


def test_import_jsonl_bad_verdict_names_line(tmp_path, store):
    export(store, tmp_path / "review", "--n", "12")
    items = [{**item, "verdict": "a"} for item in read_jsonl(tmp_path / "review.jsonl")]
    items[2]["verdict"] = "maybe"
    path = write_jsonl(tmp_path / "filled.jsonl", items)
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}:3: verdict: expected A, B or tie, got 'maybe'\n"


def test_import_missing_file_exit_2(tmp_path, store):
    result = invoke("review", "import", tmp_path / "nope.csv", "--store", store)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {tmp_path / 'nope.csv'}: cannot read")


def test_import_csv_with_byte_order_mark(tmp_path, store, exported):
    path = tmp_path / "excel.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({**row, "verdict": candidate_side(store, row)} for row in exported)
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 0, result.stderr
    assert "n=12 (12 candidate, 0 baseline, 0 ties)" in result.stdout



def test_import_csv_saved_by_excel_as_windows_1252(tmp_path, store, exported):
    path = tmp_path / "excel.csv"
    with open(path, "w", encoding="cp1252", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({**row, "verdict": candidate_side(store, row), "comment": "très bien – 5 €"} for row in exported)
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 0, result.stderr
    assert "n=12 (12 candidate, 0 baseline, 0 ties)" in result.stdout
    db = sqlite3.connect(store)
    assert {row[0] for row in db.execute("SELECT comment FROM reviews")} == {"très bien – 5 €"}


@pytest.mark.parametrize("name", ["bad.csv", "bad.jsonl"])
def test_import_of_text_in_no_known_encoding_names_the_line(tmp_path, store, name):
    path = tmp_path / name
    path.write_bytes(b"item_id,verdict\ni1,A\n\x81x,B\n" if name.endswith(".csv") else b'{"item_id": "\x81"}\n')
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 2
    hint = " (in Excel: 'CSV UTF-8')" if name.endswith(".csv") else ""
    line = 3 if name.endswith(".csv") else 1
    assert result.stderr == f"Error: {path}:{line}: not UTF-8 text (byte 0x81); save it as UTF-8{hint}\n"


@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04\x14\x00", ": an Excel workbook or another zip file: save it as CSV (or 'CSV UTF-8')"),
    (b"item_id,verdict,comment\ni1,A," + b"x" * 200_000 + b"\n",
     ":2: not a readable CSV file (field larger than field limit (131072))"),
])  # fmt: skip
def test_import_of_a_file_that_is_not_csv_says_what_it_is(tmp_path, store, content, message):
    path = tmp_path / "review.csv"
    path.write_bytes(content)
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}{message}\n"


def test_export_to_a_missing_folder_is_exit_2(tmp_path, store):
    result = invoke("review", "export", "latest", "--out", tmp_path / "missing" / "review", "--store", store)
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {tmp_path / 'missing' / 'review.csv'}: cannot write the review file"
                             " (No such file or directory)\n")  # fmt: skip


def test_second_export_does_not_change_the_key_of_the_first(tmp_path, store):
    export(store, tmp_path / "first", "--n", "12")
    first = read_csv(tmp_path / "first.csv")
    truth = {row["item_id"]: candidate_side(store, row) for row in first}  # decided from the first file's text
    export(store, tmp_path / "second", "--n", "30")
    second = {row["item_id"]: row for row in read_csv(tmp_path / "second.csv")}
    assert set(truth) & set(second)  # the exports overlap
    path = write_csv(tmp_path / "filled.csv", [{**row, "verdict": truth[row["item_id"]]} for row in first])
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 0
    assert "n=12 (12 candidate, 0 baseline, 0 ties)" in result.stdout


def test_export_leaves_identical_pairs_out_unless_asked(tmp_path):
    """Unmodified golden run: 45 of 59 answered pairs match after normalising; a reviewer could only say tie."""
    path = tmp_path / "plain.db"
    golden_run(path, n=60).close()
    result = export(str(path), tmp_path / "r", "--n", "100")
    assert "left out 45 pairs with identical answers" in result.stderr
    items = [json.loads(line) for line in open(tmp_path / "r.jsonl")]
    assert len(items) == 59 - 45 and all(item["answer_a"] != item["answer_b"] for item in items)
    result = export(str(path), tmp_path / "all", "--n", "100", "--include-identical")
    assert "left out" not in result.stderr
    assert sum(1 for _ in open(tmp_path / "all.jsonl")) == 59


def test_import_error_names_the_line_a_multiline_record_starts_on(tmp_path, store, exported):
    multi = next(row for row in exported if "\n" in row["answer_a"] + row["answer_b"])
    rows = [{**row, "verdict": "B"} for row in exported if row is not multi] + [{**multi, "verdict": "maybe"}]
    path = write_csv(tmp_path / "filled.csv", rows)
    lines = open(path, encoding="utf-8").read().splitlines()
    start = next(i for i, text in enumerate(lines, 1) if text.startswith(multi["item_id"]))
    assert start < len(lines)  # the record spans several physical lines
    result = invoke("review", "import", path, "--store", store)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}:{start}: verdict: expected A, B or tie, got 'maybe'\n"
