"""Golden files for the four report formats (terminal at 80 columns with NO_COLOR).

Regenerate after an intended change with ``REPLAY_UPDATE_GOLDEN=1 pytest tests/test_reports.py``
and review the diff.
"""

import io
import json
import os
import xml.etree.ElementTree as ET

import pytest

from replay import __version__
from replay.evaluate import evaluate
from replay.reports import render
from stored_runs import golden_run

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def check_golden(name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("REPLAY_UPDATE_GOLDEN"):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    with open(path, encoding="utf-8") as handle:
        assert text == handle.read(), f"{name} differs from the golden file (REPLAY_UPDATE_GOLDEN=1 to accept)"


@pytest.fixture
def evaluation(tmp_path):
    golden_run(tmp_path / "golden.db")
    from replay.store import Store

    return evaluate(Store(str(tmp_path / "golden.db")), "golden-run")


def terminal_text(evaluation, **options):
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=80, color_system=None, force_terminal=False, highlight=False)
    for renderable in render("terminal", evaluation, **options):
        console.print(renderable)
    return buffer.getvalue()


def test_terminal_report_matches_golden(evaluation, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    text = terminal_text(evaluation)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert " INCONCLUSIVE" in text and "cost_per_request_usd " in text  # nothing cropped to fit
    check_golden("report-terminal.txt", text)


def test_the_terminal_report_is_its_sections_in_order(evaluation, monkeypatch):
    from replay.reports.terminal import SECTIONS

    monkeypatch.setenv("NO_COLOR", "1")
    assert list(SECTIONS) == ["header", "verdict", "gates", "metrics", "noise", "summary", "judge", "sessions", "mix",
                              "segments", "disagreements", "review"]  # fmt: skip
    parts = {name: terminal_text(evaluation, sections=[name]) for name in SECTIONS}
    assert terminal_text(evaluation) == "".join(parts.values())
    assert parts["verdict"] == "\nVerdict: FAIL (1 pass, 1 fail, 2 inconclusive)\n"
    assert parts["disagreements"].startswith("Top disagreements\n") and parts["review"] == parts["noise"] == ""  # no reviews, no noise floor
    assert parts["judge"] == ""  # no judge
    assert parts["metrics"].startswith("Metrics (candidate vs baseline)\n") and "Cost:" in parts["summary"]
    assert terminal_text(evaluation, sections=["verdict", "header"]) == parts["verdict"] + parts["header"]


def test_gate_sections_are_the_report_up_to_its_metrics(evaluation, monkeypatch):
    from replay.reports.terminal import GATE_SECTIONS

    monkeypatch.setenv("NO_COLOR", "1")
    full = terminal_text(evaluation)
    gates = terminal_text(evaluation, sections=GATE_SECTIONS)
    assert gates == full[: full.index("Metrics (candidate vs baseline)\n")]
    assert "Gates" in gates and "format_compliance: fail" in gates


def test_an_unknown_terminal_section_is_a_programming_error(evaluation):
    with pytest.raises(ValueError) as raised:
        render("terminal", evaluation, sections=["header", "gate"])
    assert str(raised.value) == ("no terminal report section 'gate' (there are: header, verdict, gates, metrics, noise, summary, judge, sessions,"
                                 " mix, segments, disagreements, review)")  # fmt: skip


def test_markdown_report_matches_golden(evaluation):
    check_golden("report.md", render("markdown", evaluation))


def test_json_report_matches_golden_and_schema(evaluation):
    text = render("json", evaluation)
    data = json.loads(text)
    assert data["schema_version"] == 1 and data["run_id"] == "golden-run"
    assert data["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
    for gate in data["gates"]:
        assert {"metric", "threshold", "baseline", "candidate", "delta", "ci", "n", "status"} <= set(gate)
    data["tool"]["version"] = "VERSION"
    check_golden("report.json", json.dumps(rounded(data), indent=2, ensure_ascii=False) + "\n")
    assert __version__ in text


def rounded(value):
    """Floats to 9 significant digits: the last bits of a sum differ across numpy builds."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_junit_report_matches_golden(evaluation):
    text = render("junit", evaluation)
    suite = ET.fromstring(text.split("\n", 1)[1])
    assert int(suite.get("tests")) == len(evaluation.decision.results)
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert "format_compliance" in failed
    check_golden("report-junit.xml", text)


def test_golden_run_decides_what_it_was_built_to_show(evaluation):
    """The data has a JSON regression (code fences on extraction answers) and one candidate error."""
    results = {r.gate.metric: r for r in evaluation.decision.results}
    assert evaluation.decision.verdict == "FAIL"
    assert results["format_compliance"].status == "FAIL"
    assert results["latency_p99_ms"].status == "INCONCLUSIVE" and results["latency_p99_ms"].more_needed == 437 - 119
    assert results["cost_per_request_usd"].status == "PASS"
    assert results["error_rate"].status == "INCONCLUSIVE" and results["error_rate"].more_needed > 0
    metrics = evaluation.metrics
    assert metrics["error_rate"].candidate.value == pytest.approx(1 / 120)
    assert metrics["format_compliance"].n == 30  # extraction requests answered on both sides
    assert evaluation.disagreements[0].request_id == "req-007"  # the candidate error ranks first


def test_a_report_from_stored_comparisons_equals_the_first_one(tmp_path):
    """The first report computes the comparisons, later ones read them back: same figures."""
    from replay.store import Store

    golden_run(tmp_path / "g.db", n=90)
    store = Store(str(tmp_path / "g.db"))
    first = render("json", evaluate(store, "golden-run"))
    assert store.comparisons_with_digest("golden-run", evaluate(store, "golden-run").settings.compare_digest()) == 90
    assert render("json", evaluate(store, "golden-run")) == first


def test_missing_and_stale_comparisons_are_recomputed_and_merged_in_order(tmp_path):
    """A resumed run or an interrupted report leaves some pairs compared and others not."""
    from replay.store import Store

    golden_run(tmp_path / "g.db", n=90)
    store = Store(str(tmp_path / "g.db"))
    first = render("json", evaluate(store, "golden-run"))
    ids = [row[0] for row in store.db.execute("SELECT request_id FROM comparisons ORDER BY request_id")]
    store.db.execute("DELETE FROM comparisons WHERE request_id IN (?, ?, ?)", (ids[0], ids[40], ids[-1]))
    store.db.execute("UPDATE comparisons SET spec_digest = 'stale', measures_json = '{}' WHERE request_id IN (?, ?)",
                     (ids[1], ids[50]))  # fmt: skip
    again = evaluate(store, "golden-run")
    assert render("json", again) == first
    assert store.comparisons_with_digest("golden-run", again.settings.compare_digest()) == 90


def test_parallel_comparison_gives_the_same_report(tmp_path, monkeypatch):
    """Worker processes (used from 20,000 pairs on) must produce exactly what one process does."""
    from replay.stages import compare as compare_stage
    from replay.store import Store

    golden_run(tmp_path / "serial.db", n=90)
    golden_run(tmp_path / "parallel.db", n=90)
    serial = render("json", evaluate(Store(str(tmp_path / "serial.db")), "golden-run"))
    monkeypatch.setattr(compare_stage, "PARALLEL_FROM", 1)
    monkeypatch.setattr(compare_stage, "_workers", lambda n, path: 2)
    contexts = []
    real_context = compare_stage.multiprocessing.get_context
    monkeypatch.setattr(compare_stage.multiprocessing, "get_context", lambda kind: contexts.append(kind) or real_context(kind))
    parallel = render("json", evaluate(Store(str(tmp_path / "parallel.db")), "golden-run"))
    assert contexts == ["fork"]  # the pool was used
    assert parallel == serial
    stored = Store(str(tmp_path / "parallel.db"))
    digest = evaluate(stored, "golden-run").settings.compare_digest()
    assert stored.comparisons_with_digest("golden-run", digest) == 90  # each worker stored its slice


def test_comparisons_that_cannot_be_stored_cost_a_note_not_the_report(tmp_path, monkeypatch):
    """Comparisons are a cache: a store another process keeps locked must not stop a report."""
    import sqlite3

    from replay.store import Store

    golden_run(tmp_path / "ok.db", n=30)
    first = render("json", evaluate(Store(str(tmp_path / "ok.db")), "golden-run"))
    golden_run(tmp_path / "g.db", n=30)
    real = Store.add_comparisons

    def locked(self, run_id, rows, kind="candidate"):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Store, "add_comparisons", locked)
    store = Store(str(tmp_path / "g.db"))
    evaluation = evaluate(store, "golden-run")
    assert render("json", evaluation) == first
    assert evaluation.notes == (f"{tmp_path / 'g.db'}: comparisons not stored (database is locked); "
                                "the next report computes them again",)  # fmt: skip
    monkeypatch.setattr(Store, "add_comparisons", real)
    again = evaluate(store, "golden-run")
    assert again.notes == () and render("json", again) == first
    assert store.comparisons_with_digest("golden-run", again.settings.compare_digest()) == 30


def test_terminal_lines_have_no_trailing_spaces_and_wrapped_notes_hang_under_their_text(tmp_path, monkeypatch):
    """Continuation lines of a gate note, a summary line or the human-review line are indented
    under their text, never at column 0; no line ends in the spaces rich pads tables with."""
    from replay.store import Store

    monkeypatch.setenv("NO_COLOR", "1")
    golden_run(tmp_path / "r.db")
    store = Store(str(tmp_path / "r.db"))
    verdicts = ["candidate"] * 6 + ["baseline"] * 3 + ["tie"] * 3
    store.add_reviews([("golden-run", f"item-{i}", f"req-{i:03d}", "ann", v, None) for i, v in enumerate(verdicts)])
    lines = terminal_text(evaluate(store, "golden-run")).splitlines()
    assert [line for line in lines if line != line.rstrip()] == []
    review = next(i for i, line in enumerate(lines) if line.startswith("  Human review: candidate win rate 62.5%"))
    assert lines[review + 1].startswith("  ") and lines[review + 1].strip().endswith("3 ties)")
    note = next(i for i, line in enumerate(lines) if line.startswith("  • error_rate: inconclusive"))
    assert lines[note + 1].startswith("    ") and lines[note + 1].strip()


@pytest.fixture
def judged(tmp_path):
    from replay.store import Store
    from stored_runs import judged_golden_run

    judged_golden_run(tmp_path / "judged.db")
    return evaluate(Store(str(tmp_path / "judged.db")), "judged-run")


@pytest.mark.parametrize("name, golden", [("json", "report-judge.json"), ("markdown", "report-judge.md"),
                                          ("junit", "report-judge-junit.xml")])  # fmt: skip
def test_reports_of_a_judged_run_match_their_golden_files(judged, name, golden):
    check_golden(golden, render(name, judged))


def test_the_terminal_report_of_a_judged_run_matches_its_golden_file(judged, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    text = terminal_text(judged)
    assert max(len(line) for line in text.splitlines()) <= 80
    check_golden("report-judge-terminal.txt", text)


# --- the traffic mix: a run sampled by time and strata -------------------------------------------------


@pytest.fixture
def sampled(tmp_path):
    from replay.store import Store
    from stored_runs import sampled_golden_run

    sampled_golden_run(tmp_path / "sampled.db")
    return evaluate(Store(str(tmp_path / "sampled.db")), "sampled-run")


MIX_LINES = [
    "Log: 360 records, 2026-11-01T00:00:00Z to 2026-11-15T23:00:00Z",
    "Sample: 120 records, 2026-11-04T00:00:00Z to 2026-11-15T23:00:00Z",
    "Window from 2026-11-04T00:00:00Z until now: 71 records outside it and 7 without a timestamp left out",
    "Strata by category: the sample shared in proportion to the log's records (largest remainders), at least 5 per"
    " stratum (or all it has); the floor over-represents the smallest strata",
]


def test_the_mix_is_in_every_report_of_a_sampled_run(sampled, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    mix = sampled.mix
    assert [row["log"] for row in mix["tables"][0]["values"]] == [120, 120, 120]
    assert sum(row["sample"] for row in mix["tables"][0]["values"]) == sampled.run.planned == 120
    from replay.reports.format import mix_lines

    assert mix_lines(mix) == MIX_LINES
    terminal = terminal_text(sampled, sections=["mix"])
    check_golden("report-sampled-terminal.txt", terminal_text(sampled))
    assert terminal.startswith("Traffic mix by category (log vs sample)\n")
    check_golden("report-sampled.md", render("markdown", sampled))
    data = json.loads(render("json", sampled))
    assert data["mix"] == mix and data["run"]["sample"]["stratify_by"] == ["category"]
    data["tool"]["version"] = "VERSION"
    check_golden("report-sampled.json", json.dumps(rounded(data), indent=2, ensure_ascii=False) + "\n")
    junit = render("junit", sampled)
    properties = {(p.get("name"), p.get("value")) for p in ET.fromstring(junit.split("\n", 1)[1]).iter("property")}
    assert {("mix", line) for line in MIX_LINES} <= properties
    check_golden("report-sampled-junit.xml", junit)


def test_a_plain_run_has_no_mix_section(evaluation, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert evaluation.mix is None and terminal_text(evaluation, sections=["mix"]) == ""
    assert "mix" not in json.loads(render("json", evaluation)) and "Traffic mix" not in render("markdown", evaluation)


def test_mix_values_from_the_log_are_inert_in_every_format(tmp_path, monkeypatch):
    from replay.store import Store
    from stored_runs import HOSTILE_SEGMENT, sampled_golden_run

    monkeypatch.setenv("NO_COLOR", "1")
    store = sampled_golden_run(tmp_path / "h.db")
    mix = store.mix("sampled-run")
    mix["tables"][0]["values"][0]["value"] = HOSTILE_SEGMENT
    store.set_mix("sampled-run", mix)
    hostile = evaluate(Store(str(tmp_path / "h.db")), "sampled-run")
    terminal = terminal_text(hostile, sections=["mix"])
    assert "[blink]bill\\x1b]0;pwned\\x07|<i>ing</i>\\n*x*" in terminal.replace("\n", "")
    markdown = render("markdown", hostile)
    assert "| \\[blink\\]bill\\\\x1b\\]0;pwned\\\\x07\\|&lt;i&gt;ing&lt;/i&gt;\\\\n\\*x\\* | 120 |" in markdown
    junit = render("junit", hostile)
    names = [p.get("name") for p in ET.fromstring(junit.split("\n", 1)[1]).iter("property")]
    assert "mix.category.[blink]bill\\x1b]0;pwned\\x07|<i>ing</i>\\n*x*" in names
    for text in (terminal, markdown, junit, render("json", hostile)):
        assert "\x1b" not in text and "\x07" not in text
