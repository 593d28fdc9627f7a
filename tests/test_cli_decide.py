"""``replay report``, ``gate``, ``disagreements`` and ``show`` through the CLI, on stored runs (no server).

The golden run (tests/stored_runs.py) has 120 pairs: the candidate wraps some JSON answers in
code fences (format_compliance fails, in billing too), rewords every fifth text answer, is
faster and cheaper, and errs once (req-007, an inconclusive error_rate at n=120). Its p99
latency gate is INCONCLUSIVE: 120 pairs are too few for any interval of a p99 delta.
"""

import json
import re
import sqlite3
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from replay.cli import cli
from replay.reports.show import LEGEND
from replay.types import LogRecord
from stored_runs import ESC_ID, HOSTILE_ID, golden_run, hostile_run, outcome, scenario_snapshot

RUN = "golden-run"
GATE_KEYS = {"metric", "threshold", "baseline", "candidate", "delta", "ci", "n", "status"}


def invoke(*args, env=None):
    """Run the CLI wide enough that rich does not wrap table rows; crashes are re-raised, not hidden."""
    result = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})}).invoke(cli, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def flat(text):
    """Whitespace collapsed, for sentences that a narrow console may have wrapped."""
    return " ".join(text.split())


def gate_row(output, metric):
    rows = [line.strip() for line in output.splitlines() if line.strip().startswith(metric + " ")]
    assert len(rows) == 1, output
    return rows[0]


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "replay.db"
    golden_run(path)
    return str(path)


def write_gates(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- replay gate: exit codes --------------------------------------------------------------


def test_gate_default_gates_fail_exit_1(store):
    result = invoke("gate", RUN, "--store", store)
    assert result.exit_code == 1
    assert "Verdict: FAIL (1 pass, 1 fail, 2 inconclusive)" in result.stdout
    assert gate_row(result.stdout, "format_compliance").split()[-1] == "FAIL"
    assert gate_row(result.stdout, "latency_p99_ms").split()[-1] == "INCONCLUSIVE"
    assert ("latency_p99_ms: inconclusive, n=119 is below the minimum of 437 (a distribution-free interval of a "
            "p99 delta needs 437 pairs)") in flat(result.stdout)
    assert "format_compliance: fail, also fails in critical segment category=billing" in flat(result.stdout)
    assert result.stderr == ""


def test_gate_passing_gate_exit_0(tmp_path):
    golden_run(tmp_path / "s.db", gates=[{"metric": "latency_p50_ms", "max_delta": 200}])
    result = invoke("gate", RUN, "--store", tmp_path / "s.db")
    assert result.exit_code == 0
    assert "Verdict: PASS (1 pass)" in result.stdout
    assert gate_row(result.stdout, "latency_p50_ms").split()[-1] == "PASS"
    assert "format_compliance" not in result.stdout


@pytest.mark.parametrize("on_inconclusive, code", [(None, 1), ("pass", 0)])
def test_gate_inconclusive_exit_follows_on_inconclusive(tmp_path, on_inconclusive, code):
    keys = {"on_inconclusive": on_inconclusive} if on_inconclusive else {}
    golden_run(tmp_path / "s.db", gates=[{"metric": "error_rate", "max_delta": 0.005}], **keys)
    result = invoke("gate", RUN, "--store", tmp_path / "s.db")
    assert result.exit_code == code
    assert f"Verdict: INCONCLUSIVE (1 inconclusive); on_inconclusive: {on_inconclusive or 'fail'}" in result.stdout
    assert gate_row(result.stdout, "error_rate").split()[-1] == "INCONCLUSIVE"
    found = re.search(r"about ([\d,]+) more requests would settle it", flat(result.stdout))
    assert found, result.stdout
    report = json.loads(invoke("report", RUN, "--store", tmp_path / "s.db", "--format", "json").stdout)
    (gate,) = report["gates"]
    assert int(found.group(1).replace(",", "")) == gate["more_needed"]
    assert 1_000 < gate["more_needed"] < 30_000  # 1 error in 120 against a 0.5 pt margin: thousands, not tens
    assert report["exit_code"] == code


def test_gate_unknown_run_exit_2(store):
    result = invoke("gate", "nosuch", "--store", store)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"Error: {store}: no run 'nosuch' (see 'replay runs')\n"


# --- replay gate --gates FILE -------------------------------------------------------------


def test_gates_file_overrides_the_runs_gates(tmp_path, store):
    latency = write_gates(tmp_path / "latency.yaml", "gates:\n  - metric: latency_p50_ms\n    max_delta: 200\n")
    result = invoke("gate", RUN, "--store", store, "--gates", latency)
    assert result.exit_code == 0  # the run's own (default) gates fail
    assert "Verdict: PASS (1 pass)" in result.stdout
    assert "format_compliance" not in result.stdout

    golden_run(tmp_path / "p.db", gates=[{"metric": "latency_p50_ms", "max_delta": 200}])  # exits 0 on its own gates
    strict = write_gates(tmp_path / "strict.yaml", "gates:\n  - metric: format_compliance\n    min_delta: -0.01\n")
    result = invoke("gate", RUN, "--store", tmp_path / "p.db", "--gates", strict)
    assert result.exit_code == 1
    assert gate_row(result.stdout, "format_compliance").split()[-1] == "FAIL"
    assert "latency_p50_ms" not in result.stdout


def test_gates_file_typo_names_file_and_key_with_hint(tmp_path, store):
    path = write_gates(tmp_path / "gates.yaml", "gates:\n  - metric: latency_p99_ms\n    max_detla: 200\n")
    result = invoke("gate", RUN, "--store", store, "--gates", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"Error: {path}: gates[0].max_detla: unknown key (did you mean 'max_delta'?)\n"


def test_gates_file_unknown_top_level_key_exit_2(tmp_path, store):
    """A typo beside the gates is not ignored: it could have been meant to change the exit code."""
    path = write_gates(tmp_path / "gates.yaml", "gates: [default]\non_inconclusiv: pass\n")
    result = invoke("gate", RUN, "--store", store, "--gates", path)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"Error: {path}: on_inconclusiv: unknown key (did you mean 'on_inconclusive'?)\n"


def test_gates_file_unknown_metric_exit_2(tmp_path, store):
    path = write_gates(tmp_path / "gates.yaml", "gates:\n  - metric: latency_p999\n    max_delta: 200\n")
    result = invoke("gate", RUN, "--store", store, "--gates", path)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: {path}: gates[0].metric: unknown metric 'latency_p999'")


def test_gates_file_without_gates_key_exit_2(tmp_path, store):
    path = write_gates(tmp_path / "gates.yaml", "gate:\n  - metric: latency_p99_ms\n    max_delta: 200\n")
    result = invoke("gate", RUN, "--store", store, "--gates", path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}: gate: unknown key (did you mean 'gates'?)\n"


def test_gates_file_missing_exit_2(tmp_path, store):
    missing = tmp_path / "nope.yaml"
    result = invoke("gate", RUN, "--store", store, "--gates", missing)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"'{missing}' does not exist" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: Invalid value for '--gates'")


# --- replay report: formats and files -----------------------------------------------------


def test_report_json_schema(store):
    result = invoke("report", RUN, "--store", store, "--format", "json")
    assert result.exit_code == 0  # report shows the verdict; only 'gate' turns it into an exit code
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1
    assert data["run_id"] == RUN
    assert data["verdict"] == "FAIL" and data["exit_code"] == 1
    assert data["pairs"] == 120
    assert [g["metric"] for g in data["gates"]] == ["error_rate", "latency_p99_ms", "format_compliance",
                                                     "cost_per_request_usd"]  # fmt: skip
    for gate in data["gates"]:
        assert GATE_KEYS <= set(gate)
        low, high = gate["ci"]
        assert low is None or high is None or low <= high  # null: a bound that does not exist (p99 at n=119)
    by_metric = {g["metric"]: g for g in data["gates"]}
    assert by_metric["format_compliance"]["status"] == "FAIL" and by_metric["format_compliance"]["n"] == 30
    assert by_metric["format_compliance"]["delta"] == pytest.approx(-1 / 3)
    assert by_metric["error_rate"]["candidate"] == pytest.approx(1 / 120)
    assert by_metric["latency_p99_ms"]["ci"][1] is None and by_metric["latency_p99_ms"]["min_n_required"] == 437
    assert data["human_review"] is None
    assert [d["request_id"] for d in data["disagreements"]][:2] == ["req-007", "req-000"]
    assert len(data["disagreements"]) == 20  # JSON lists up to 20 by default, as --report-json does (30 differ)


def test_report_markdown(store):
    result = invoke("report", RUN, "--store", store, "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.startswith("## replay: ❌ FAIL (1 pass, 1 fail, 2 inconclusive)\n")
    assert "| `format_compliance` |" in result.stdout


def test_report_junit_one_testcase_per_gate(store):
    result = invoke("report", RUN, "--store", store, "--format", "junit")
    assert result.exit_code == 0
    header, body = result.stdout.split("\n", 1)
    assert header == '<?xml version="1.0" encoding="UTF-8"?>'
    suite = ET.fromstring(body)
    cases = list(suite.iter("testcase"))
    assert [c.get("name") for c in cases] == ["error_rate", "latency_p99_ms", "format_compliance", "cost_per_request_usd"]
    assert suite.get("tests") == "4"
    # format_compliance fails; error_rate and latency_p99_ms are inconclusive and on_inconclusive is 'fail': failures too
    assert [c.get("name") for c in cases if c.find("failure") is not None] == ["error_rate", "latency_p99_ms",
                                                                              "format_compliance"]  # fmt: skip
    assert suite.get("failures") == "3"


def test_report_writes_report_files(tmp_path, store):
    out = tmp_path / "out"
    paths = {"json": out / "r.json", "md": out / "r.md", "junit": out / "r.xml"}
    result = invoke("report", RUN, "--store", store, "--format", "json", "--report-json", paths["json"],
                    "--report-md", paths["md"], "--report-junit", paths["junit"])  # fmt: skip
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [f"wrote {paths['json']}", f"wrote {paths['md']}", f"wrote {paths['junit']}"]
    written = json.loads(paths["json"].read_text(encoding="utf-8"))
    shown = json.loads(result.stdout)
    assert written["gates"] == shown["gates"] and written["verdict"] == "FAIL"
    assert paths["md"].read_text(encoding="utf-8").startswith("## replay: ❌ FAIL")
    suite = ET.fromstring(paths["junit"].read_text(encoding="utf-8").split("\n", 1)[1])
    assert len(list(suite.iter("testcase"))) == 4
    assert not list(out.glob("*.tmp"))


def test_gate_writes_report_files(tmp_path, store):
    paths = [tmp_path / "g.json", tmp_path / "g.md", tmp_path / "g.xml"]
    result = invoke("gate", RUN, "--store", store, "--report-json", paths[0], "--report-md", paths[1],
                    "--report-junit", paths[2])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"wrote {p}" for p in paths]
    assert json.loads(paths[0].read_text(encoding="utf-8"))["verdict"] == "FAIL"
    assert paths[1].read_text(encoding="utf-8").startswith("## replay:")
    assert ET.fromstring(paths[2].read_text(encoding="utf-8").split("\n", 1)[1]).get("tests") == "4"


def test_gate_appends_markdown_to_github_step_summary(tmp_path, store):
    summary = tmp_path / "summary.md"
    summary.write_text("## earlier step\n\n", encoding="utf-8")
    result = invoke("gate", RUN, "--store", store, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1
    markdown = invoke("report", RUN, "--store", store, "--format", "markdown", "--top", "10").stdout
    assert markdown.startswith("## replay:")
    assert summary.read_text(encoding="utf-8") == "## earlier step\n\n" + markdown


# --- comparisons are kept, and recomputed when their settings change ----------------------


def comparison_rows(store):
    db = sqlite3.connect(store)
    try:
        return db.execute("SELECT rowid, request_id, spec_digest, divergence, measures_json FROM comparisons"
                          " ORDER BY request_id").fetchall()  # fmt: skip
    finally:
        db.close()


def test_report_reuses_stored_comparisons(store):
    first = invoke("report", RUN, "--store", store, "--format", "json")
    rows = comparison_rows(store)
    assert len(rows) == 120
    second = invoke("report", RUN, "--store", store, "--format", "json")
    # INSERT OR REPLACE would give rewritten rows new rowids: equal rowids mean nothing was recomputed
    assert comparison_rows(store) == rows
    assert json.loads(first.stdout)["gates"] == json.loads(second.stdout)["gates"]


def test_report_recomputes_when_comparison_settings_change(store):
    from replay.evaluate import compare_run, settings_for
    from replay.store import Store

    invoke("report", RUN, "--store", store, "--format", "json")
    before = comparison_rows(store)
    assert {row[2] for row in before} == {before[0][2]}
    db = sqlite3.connect(store)
    (scenario_json,) = db.execute("SELECT scenario_json FROM runs WHERE id = ?", (RUN,)).fetchone()
    scenario = json.loads(scenario_json)
    scenario["decision"]["compare"] = {"json": "never", "policies": []}
    db.execute("UPDATE runs SET scenario_json = ? WHERE id = ?", (json.dumps(scenario), RUN))
    db.commit()
    db.close()

    data = json.loads(invoke("report", RUN, "--store", store, "--format", "json").stdout)
    after = comparison_rows(store)
    reopened = Store(store)
    settings = settings_for(reopened.get_run(RUN))
    assert len(after) == 120
    assert {row[2] for row in after} == {settings.compare_digest()} != {before[0][2]}
    rows = {row["request_id"]: row for row in compare_run(reopened, reopened.get_run(RUN), settings)}
    assert rows["req-000"]["json_required"] is False  # a json_object request, but json: never
    assert "JSON valid → invalid" not in rows["req-000"]["reasons"]
    assert not any(row["json_required"] for row in rows.values())
    assert data["metrics"]["format_compliance"]["n"] == 0
    assert {g["metric"]: g["status"] for g in data["gates"]}["format_compliance"] == "SKIPPED"
    assert data["verdict"] == "INCONCLUSIVE"  # only error_rate is left undecided


# --- replay disagreements -----------------------------------------------------------------


def table_rows(output):
    """(rank, request id, segment) of each table row."""
    return re.findall(r"^\s*(\d+)\s+(req-\d{3})\s+(\S+)", output, re.MULTILINE)


def json_lines(output):
    return [json.loads(line) for line in output.splitlines()]


def test_disagreements_top_3(store):
    result = invoke("disagreements", RUN, "--store", store, "--top", "3")
    assert result.exit_code == 0
    assert table_rows(result.stdout) == [("1", "req-007", "category=shipping"), ("2", "req-000", "category=billing"),
                                         ("3", "req-024", "category=billing")]  # fmt: skip
    assert "candidate failed (http_error), baseline answered" in result.stdout


def test_disagreements_json_lines_ordered_by_divergence(store):
    result = invoke("disagreements", RUN, "--store", store, "--json", "--top", "100")
    assert result.exit_code == 0
    items = json_lines(result.stdout)
    divergences = [item["divergence"] for item in items]
    assert divergences == sorted(divergences, reverse=True)
    assert items[0] == {"request_id": "req-007", "divergence": 100.0,
                        "reasons": ["candidate failed (http_error), baseline answered"], "segment": "category=shipping"}  # fmt: skip
    assert all(d > 0 for d in divergences)  # identical pairs are left out
    # the golden run differs on req-007, JSON in fences (i % 12 == 0) and rewording (i % 5 == 0, not extraction)
    expected = {7} | {i for i in range(120) if i % 12 == 0} | {i for i in range(120) if i % 5 == 0 and i % 4}
    assert {int(item["request_id"][4:]) for item in items} == expected
    top3 = json_lines(invoke("disagreements", RUN, "--store", store, "--json", "--top", "3").stdout)
    assert top3 == items[:3]


@pytest.mark.parametrize("segment", ["category=billing", "billing"])
def test_disagreements_segment(store, segment):
    every = json_lines(invoke("disagreements", RUN, "--store", store, "--json", "--top", "100").stdout)
    billing = [item["request_id"] for item in every if item["segment"] == "category=billing"]
    assert billing and all(int(rid[4:]) % 3 == 0 for rid in billing)
    result = invoke("disagreements", RUN, "--store", store, "--segment", segment)
    assert result.exit_code == 0
    rows = table_rows(result.stdout)
    assert [rid for _, rid, _ in rows] == billing
    assert {seg for _, _, seg in rows} == {"category=billing"}


def test_disagreements_unknown_segment_lists_nothing(store):
    result = invoke("disagreements", RUN, "--store", store, "--segment", "nosuch=x")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.strip()
    as_json = invoke("disagreements", RUN, "--store", store, "--segment", "nosuch=x", "--json")
    assert as_json.exit_code == 0 and as_json.stdout == ""



def test_disagreements_unknown_segment_says_so(store):
    result = invoke("disagreements", RUN, "--store", store, "--segment", "nosuch=x")
    assert "every compared pair matches" not in result.stderr
    assert "nosuch=x" in result.stderr


# --- replay show --------------------------------------------------------------------------


def test_show_json_pair(store):
    result = invoke("show", RUN, "req-000", "--store", store)
    assert result.exit_code == 0
    out = result.stdout
    assert out.splitlines()[0] == "req-000  category=billing"
    assert "user: Question 0 about billing" in out
    assert 'response_format: {"type": "json_object"}' in out
    assert "Baseline (logged)" in out and "Candidate (cand-mini)" in out
    answer = '{"category": "billing", "order_id": "1000", "urgent": true}'
    assert out.count(answer) == 2  # unchanged on both sides
    assert "{+```json" in out and "```+}" in out  # the fences the candidate added
    assert "[-" not in out.replace(LEGEND, "")  # nothing was removed
    assert LEGEND in out
    assert "divergence 51.85, similarity 0.908: JSON valid → invalid; text similarity 0.91" in out


def test_show_text_pair_marks_words(store):
    result = invoke("show", RUN, "req-005", "--store", store)
    assert result.exit_code == 0
    assert "user: Question 5 about account" in result.stdout
    assert "Your order 1005 [-ships-] [-within-] 4 days." in result.stdout
    assert "{+Thanks! +}Your order 1005 {+should+} {+ship in+} 4 days." in result.stdout


def test_show_unknown_request_exit_2(store):
    result = invoke("show", RUN, "nosuch", "--store", store)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"Error: run {RUN} has no request 'nosuch' (see 'replay disagreements {RUN}')\n"


# --- a run whose candidate never answered --------------------------------------------------


def logged_only_run(path, **decision_keys):
    from replay.store import Store

    store = Store(str(path))
    store.create_run("empty-run", "golden", scenario_snapshot(segment_by="category", **decision_keys), "h")
    store.set_planned("empty-run", 5)
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    store.add_cases("empty-run", [(i, LogRecord(f"req-{i:03d}", request, metadata={"category": "billing"}))
                                  for i in range(5)])  # fmt: skip
    store.add_outcomes("empty-run", [outcome(f"req-{i:03d}", "logged", "hello", 500) for i in range(5)])
    store.close()
    return str(path)


def test_report_on_run_without_candidate_results(tmp_path):
    store = logged_only_run(tmp_path / "e.db")
    result = invoke("report", "empty-run", "--store", store)
    assert result.exit_code == 0
    assert re.search(r"^Pairs\s+0 compared of 5 sampled\s*$", result.stdout, re.MULTILINE), result.stdout
    data = json.loads(invoke("report", "empty-run", "--store", store, "--format", "json").stdout)
    assert data["pairs"] == 0
    assert {g["status"] for g in data["gates"]} == {"INCONCLUSIVE"}  # nothing compared: never a silent pass
    assert {g["note"] for g in data["gates"]} == {"no data"}
    assert all(g["n"] == 0 for g in data["gates"])
    assert data["disagreements"] == []


def test_gate_with_explicit_gates_on_run_without_candidate_results(tmp_path):
    store = logged_only_run(tmp_path / "e.db", gates=[{"metric": "error_rate", "max_delta": 0.005}])
    result = invoke("gate", "empty-run", "--store", store)
    assert result.exit_code == 1
    assert "Verdict: INCONCLUSIVE (1 inconclusive)" in result.stdout
    assert "error_rate: inconclusive, no data" in flat(result.stdout)


def test_gate_with_default_gates_on_run_without_candidate_results_does_not_pass(tmp_path):
    store = logged_only_run(tmp_path / "e.db")
    result = invoke("gate", "empty-run", "--store", store)
    assert "Verdict: PASS" not in result.stdout
    assert result.exit_code == 1


def test_report_top_limits_every_format(store):
    data = json.loads(invoke("report", RUN, "--store", store, "--format", "json", "--top", "3").stdout)
    assert [d["request_id"] for d in data["disagreements"]] == ["req-007", "req-000", "req-024"]
    markdown = invoke("report", RUN, "--store", store, "--format", "markdown", "--top", "2").stdout
    assert markdown.count("| `req-") == 2


def test_an_unwritable_report_path_is_one_line_and_exit_2(store, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("gate", RUN, "--store", store, "--report-json", str(blocker / "r.json"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {blocker / 'r.json'}: cannot write the report (") and result.stderr.count("\n") == 1


def test_a_gates_file_segment_the_run_cannot_resolve_names_the_file_and_key(tmp_path):
    path = str(tmp_path / "plain.db")
    golden_run(path, segment_by=[], critical_segments=[])
    gates = tmp_path / "gates.yaml"
    gates.write_text("gates:\n  - {metric: error_rate, max_delta: 0.01, segment: vip}\n")
    result = invoke("gate", RUN, "--store", path, "--gates", str(gates))
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {gates}: gates[0].segment: segment 'vip': write it as key=value (no segment_by is set)\n"
    )


# --- text from logs and endpoints is data (tests/stored_runs.py: hostile_run) ----------------

UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def hostile(tmp_path):
    hostile_run(tmp_path / "h.db")
    return str(tmp_path / "h.db")


def assert_inert(text):
    """No raw escape, C1 or bidi control reaches the output (line breaks do)."""
    assert not UNSAFE.findall(text), text


def test_disagreements_print_hostile_ids_and_segments_as_text(hostile):
    result = invoke("disagreements", "hostile-run", "--store", hostile, env={"COLUMNS": "100"})
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == (
        "\n"
        " #   Request                      Segment                       Score   Why\n"
        " " + "─" * 98 + "\n"
        " 1   id-\\x1b[31mred\\x1b[0m|<b>`   category=[blink]bill\\x1b]0   100.00   candidate failed\n"
        "     x`</b>                       ;pwned\\x07|<i>ing</i>\\n*x*            (http_error), baseline\n"
        "                                                                        answered\n"
        " 2   [bold red]inj[/bold red]     category=[blink]bill\\x1b]0    15.55   text similarity 0.32;\n"
        "                                  ;pwned\\x07|<i>ing</i>\\n*x*            finish reason stop →\n"
        "                                                                        stop\\x1b[1m\n"
        "\n"
    )


def test_show_prints_hostile_prompts_and_answers_as_text(hostile):
    result = invoke("show", "hostile-run", HOSTILE_ID, "--store", hostile, env={"COLUMNS": "100"})
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == (
        "[bold red]inj[/bold red]  category=[blink]bill\\x1b]0;pwned\\x07|<i>ing</i>\\n*x*\n"
        "user: say \\x1b[2J[bold]hi[/bold]\\x1b]0;pwned\\x07\n"
        "\n"
        " Baseline (logged)                                  Candidate ([red]cand\\x9b31m\\u202emodel)\n"
        " " + "─" * 98 + "\n"
        " [-fine-] [-\\x1b]0;pwned\\x07answer-]                {+other+}\n"
        "                                                    {+\\x1b[2J[link=http://x]answer[/link]\\x9b2J+}\n"
        " finish stop, 500 ms, TTFT 167 ms, tokens 20 in,    finish stop\\x1b[1m, 400 ms, TTFT 133 ms, tokens\n"
        " 10 out, $0.00100                                   20 in, 10 out, $0.00100\n"
        "\n"
        f"{LEGEND}\n"
        "divergence 15.55, similarity 0.323: text similarity 0.32; finish reason stop → stop\\x1b[1m\n"
    )


def test_show_prints_an_error_as_an_error_not_as_a_diff(hostile):
    result = invoke("show", "hostile-run", ESC_ID, "--store", hostile, env={"COLUMNS": "100"})
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == (
        "id-\\x1b[31mred\\x1b[0m|<b>`x`</b>  category=[blink]bill\\x1b]0;pwned\\x07|<i>ing</i>\\n*x*\n"
        "user: say \\x1b[2J[bold]hi[/bold]\\x1b]0;pwned\\x07\n"
        "\n"
        " Baseline (logged)                                  Candidate ([red]cand\\x9b31m\\u202emodel)\n"
        " " + "─" * 98 + "\n"
        " base [i]answer[/i]                                 ERROR http_error: upstream said\n"
        "                                                    [bold]no[/bold]\\x1b[2J\\x00|<br>\\nline two\n"
        " finish stop, 500 ms, TTFT 167 ms, tokens 20 in,    —\n"
        " 10 out, $0.00100\n"
        "\n"
        "divergence 100.00: candidate failed (http_error), baseline answered\n"
    )  # no [- -] / {+ +} markers, and so no legend


def test_terminal_commands_print_hostile_text_as_text(hostile):
    """The whole outputs are in the layout tests; here: no markup runs, no escape reaches the terminal."""
    cases = {("disagreements", "hostile-run"): ["[bold red]inj[/bold red]", "id-\\x1b[31mred\\x1b[0m|<b>"],
             ("show", "hostile-run", HOSTILE_ID): ["say \\x1b[2J[bold]hi[/bold]\\x1b]0;pwned\\x07", "stop\\x1b[1m"],
             ("show", "hostile-run", ESC_ID): ["[bold]no[/bold]\\x1b[2J\\x00|<br>\\nline two"],
             ("report", "hostile-run"): ["Candidate  [red]cand\\x9b31m\\u202emodel", "[blink]bill\\x1b]0;pwned"],
             ("gate", "hostile-run"): ["error_rate [category=[blink]bill\\x1b]0;pwned\\x07|<i>ing</i>\\n*x*]: inconclusive"],
             ("runs",): ["[bold]nm\\x1b[5m"]}  # fmt: skip
    for args, shown in cases.items():
        result = invoke(*args, "--store", hostile)
        assert result.exit_code == (1 if args[0] == "gate" else 0)
        assert_inert(result.stdout)
        for text in shown:
            assert text in result.stdout, (args, text)


def test_report_terminal_and_gate_print_hostile_names_as_text(hostile):
    result = invoke("report", "hostile-run", "--store", hostile)
    assert result.exit_code == 0
    assert_inert(result.stdout)
    out = result.stdout
    assert "Run        hostile-run ([bold]nm\\x1b[5m, completed)\n" in out
    assert "Candidate  [red]cand\\x9b31m\\u202emodel\n" in out
    assert "error_rate [category=[blink]bill\\x1b]0;pwned\\x07|<i>ing</i>\\n*x*]" in out
    assert "\n[blink]bill\\x1b]0;pwned\\x07|<i>ing</i>\\n*x* 2 +50.0 pt " in out  # the segment table's row
    assert "\nid-\\x1b[31mred\\x1b[0m|<b>`x`</b> 100.00 candidate failed (http_error), baseline answered\n" in out
    assert "\n[bold red]inj[/bold red]          15.55 text similarity 0.32; finish reason stop → stop\\x1b[1m\n" in out
    gate = invoke("gate", "hostile-run", "--store", hostile)
    assert gate.exit_code == 1
    assert_inert(gate.stdout)
    assert gate.stdout.endswith(
        "  • error_rate [category=[blink]bill\\x1b]0;pwned\\x07|<i>ing</i>\\n*x*]: inconclusive, n=2 is below the minimum "
        "of 10 (score intervals are used from 10 pairs on)\n"
    )


def markdown_rows(text, heading):
    section = text.split(f"### {heading}\n\n", 1)[1].split("\n\n", 1)[0]
    return section.splitlines()


def test_report_markdown_escapes_hostile_cells(hostile):
    text = invoke("report", "hostile-run", "--store", hostile, "--format", "markdown").stdout
    assert_inert(text)
    assert "**Run:** hostile-run (\\[bold\\]nm\\\\x1b\\[5m, completed)  \n" in text
    assert "**Candidate:** \\[red\\]cand\\\\x9b31m\\\\u202emodel  \n" in text
    assert markdown_rows(text, "Top disagreements")[2:] == [
        "| ``id-\\x1b[31mred\\x1b[0m\\|<b>`x`</b>`` | 100.00 | candidate failed (http_error), baseline answered |",
        "| `[bold red]inj[/bold red]` | 15.55 | text similarity 0.32; finish reason stop → stop\\\\x1b\\[1m |",
    ]
    assert markdown_rows(text, "Segments by `category`")[2] == (
        "| \\[blink\\]bill\\\\x1b\\]0;pwned\\\\x07\\|&lt;i&gt;ing&lt;/i&gt;\\\\n\\*x\\* | 2 | +50.0 pt | — | 0.323 | -100 ms |"
    )
    gates = markdown_rows(text, "Gates")
    assert gates[2].startswith("| `error_rate [category=[blink]bill\\x1b]0;pwned\\x07\\|<i>ing</i>\\n*x*]` | 0.0% |")
    for table in ("Gates", "Top disagreements", "Segments by `category`"):  # every row has the header's cells
        rows = markdown_rows(text, table)
        assert {len(re.split(r"(?<!\\)\|", row)) for row in rows} == {len(rows[0].split("|"))}
    note = "- error_rate \\[category=\\[blink\\]bill\\\\x1b\\]0;pwned\\\\x07\\|&lt;i&gt;ing&lt;/i&gt;\\\\n\\*x\\*\\]: inconclusive"
    assert note in text


def test_report_junit_of_hostile_names_is_valid_xml(hostile):
    text = invoke("report", "hostile-run", "--store", hostile, "--format", "junit").stdout
    assert_inert(text)
    suite = ET.fromstring(text.split("\n", 1)[1])
    assert suite.get("name") == "replay.[bold]nm\\x1b[5m"
    (case,) = suite.iter("testcase")
    assert case.get("classname") == "replay.gates.[bold]nm\\x1b[5m"
    assert case.get("name") == "error_rate [category=[blink]bill\\x1b]0;pwned\\x07|<i>ing</i>\\n*x*]"
    assert case.find("failure").get("message").startswith(f"INCONCLUSIVE: {case.get('name')}: baseline 0.0%")


def test_report_json_keeps_hostile_text_exact_and_escapes_c1(hostile):
    text = invoke("report", "hostile-run", "--store", hostile, "--format", "json").stdout
    assert_inert(text)
    data = json.loads(text)
    assert data["run"]["name"] == "[bold]nm\x1b[5m"  # JSON is data: the exact text, escaped by JSON
    assert data["run"]["candidate_model"] == "[red]cand\x9b31m\u202emodel"
    assert "\\u009b" in text and "\\u202e" in text
    assert {d["request_id"] for d in data["disagreements"]} == {HOSTILE_ID, ESC_ID}


def test_an_error_quoting_hostile_text_is_one_inert_line(hostile):
    result = invoke("show", "nosuch\x1b[2J", "x", "--store", hostile)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {hostile}: no run 'nosuch\\x1b[2J' (see 'replay runs')\n"


# --- layout -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["report", "gate", "disagreements"])
def test_usage_shows_run_as_optional(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"Usage: cli {command} [OPTIONS] [RUN]"  # CliRunner names it cli
    assert "'latest', the default" in flat(result.stdout)


def test_gate_notes_wrap_under_their_text_at_80_columns(store):
    lines = invoke("gate", RUN, "--store", store, env={"COLUMNS": "80"}).stdout.splitlines()
    notes = lines[lines.index(next(line for line in lines if line.startswith("  • "))):]
    assert len(notes) > 2  # a note wrapped
    assert all(line.startswith("  • ") or line.startswith("    ") and line.strip() for line in notes), notes
    assert [line for line in lines if line != line.rstrip()] == []
