"""``replay plan`` through the CLI, and the warning ``replay run`` prints before sending.

The log: 40 requests of 10 prompt and 5 completion tokens, 400 ms to 790 ms each, two of
them logged as errors (5%), none asking for JSON; the candidate is gpt-4o-mini.
"""

import json

from click.testing import CliRunner

from conftest import record, write_log
from replay.cli import cli


def invoke(*args, env=None):
    result = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1", **(env or {})}).invoke(cli, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def support_log(path, n=40):
    records = [record(f"r{i}", latency_ms=400 + 10 * i) for i in range(n)]
    for i in (3, 17):
        records[i].update(status=500, error="upstream failed")
    return write_log(path, records)


def scenario_file(tmp_path, extra="", name="support", url="http://127.0.0.1:1/v1"):
    log = support_log(tmp_path / "log.jsonl")
    path = tmp_path / "s.yaml"
    path.write_text(f"name: {json.dumps(name)}\nlogs: {log}\ncandidate: {{base_url: '{url}', model: gpt-4o-mini}}\n"
                    f"limits: {{concurrency: 4}}\n{extra}")  # fmt: skip
    return path


EXPECTED = """\
Plan      support (nothing sent)
Log       40 records; the sample picks 40
Baseline  logged answers
Levels    PASS at one-sided 2.5% (the 95% interval); FAIL at one-sided 1.25% (Holm's first step over
          2 tests)

Gates (for a candidate equal to the baseline; 80% power to PASS)
Gate                      Baseline  Needs Sample P(PASS) Expect
─────────────────────────────────────────────────────────────────────
error_rate +0.5 pt            5.0% 29,846     40      1% INCONCLUSIVE
latency_p99_ms +200 ms      786 ms    437     36      0% INCONCLUSIVE
format_compliance -1 pt          —      —      0       — SKIPPED
cost_per_request_usd +20% $0.00007     20     36    100% PASS
  • error_rate +0.5 pt: needs about 29,846 pairs; the sample gives 40, so expect INCONCLUSIVE
  • latency_p99_ms +200 ms: needs about 437 pairs (no logged values above the p99: its tail is a
    guess); the sample gives 36, so expect INCONCLUSIVE
  • assumed: independent failures (psi = 2p(1-p), the worst realistic case)
  • assumed: the candidate's distribution is the logged one, independent of the baseline's
  • assumed: same prompts, completion tokens an independent draw from the logged ones, priced at the
    candidate's price

Requests to send (at the configured limits and prices)
Arm       Model       Requests Tokens in Tokens out    Cost Duration Paced by
────────────────────────────────────────────────────────────────────────────────
candidate gpt-4o-mini       40       400        200 $0.0002      6 s concurrency
"""


def test_the_plan_in_the_terminal(tmp_path):
    result = invoke("plan", scenario_file(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout == EXPECTED


def test_the_plan_as_json(tmp_path):
    result = invoke("plan", scenario_file(tmp_path), "--json")
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert {key: plan[key] for key in plan if key not in ("gates", "senders", "warnings")} == {
        "schema_version": 1, "scenario": "support", "records": 40, "invalid_records": 0, "sample": 40,
        "baseline": "logged", "power": 0.8, "tests": 2, "cost_usd": plan["senders"][0]["cost_usd"],
        "duration_s": plan["senders"][0]["duration_s"], "budget_usd": None, "budget_requests": None,
    }  # fmt: skip
    error_rate = plan["gates"][0]
    assert {key: error_rate[key] for key in error_rate if key not in ("pass_chance", "fail_chance")} == {
        "metric": "error_rate", "bound": "max_delta", "threshold": 0.005, "segment": None,
        "label": "error_rate +0.5 pt", "baseline": {"value": 0.05, "n": 40}, "expected": 0.0, "min_n": 10,
        "needed": 29846, "sample_n": 40, "expect": "INCONCLUSIVE", "pass_alpha": 0.025, "fail_alpha": 0.0125,
        "model": "independent failures (psi = 2p(1-p), the worst realistic case)", "note": "",
    }  # fmt: skip
    assert 0 < error_rate["pass_chance"] < 0.05
    assert [gate["expect"] for gate in plan["gates"]] == ["INCONCLUSIVE", "INCONCLUSIVE", "SKIPPED", "PASS"]
    # 40 requests x (10 x $0.15 + 5 x $0.60) per million; 40 x 600 ms (the answered ones' mean) on 4 connections
    assert plan["senders"] == [{"arm": "candidate", "model": "gpt-4o-mini", "requests": 40, "prompt_tokens": 400,
                                "completion_tokens": 200, "cost_usd": plan["cost_usd"],
                                "duration_s": plan["duration_s"], "limited_by": "concurrency"}]  # fmt: skip
    assert abs(plan["cost_usd"] - 40 * (10 * 0.15 + 5 * 0.6) / 1e6) < 1e-12
    assert abs(plan["duration_s"] - 40 * 0.6 / 4) < 1e-9
    assert plan["warnings"] == [
        "error_rate +0.5 pt: needs about 29,846 pairs; the sample gives 40, so expect INCONCLUSIVE",
        "latency_p99_ms +200 ms: needs about 437 pairs (no logged values above the p99: its tail is a guess);"
        " the sample gives 36, so expect INCONCLUSIVE",
    ]


def test_the_flags_of_replay_run_override_the_scenario(tmp_path):
    result = invoke("plan", scenario_file(tmp_path), "--max", 10, "--rpm", 6, "--candidate-model", "gpt-4o", "--json")
    plan = json.loads(result.stdout)
    assert plan["sample"] == 10
    assert plan["senders"][0]["model"] == "gpt-4o" and plan["senders"][0]["limited_by"] == "rpm"
    assert plan["senders"][0]["duration_s"] == 100.0  # 10 requests at 6 a minute


def test_a_gates_file_replaces_the_scenarios_gates(tmp_path):
    gates = tmp_path / "gates.yaml"
    gates.write_text("gates:\n  - {metric: latency_p50_ms, max_delta_pct: 50}\n")
    plan = json.loads(invoke("plan", scenario_file(tmp_path), "--gates", gates, "--json").stdout)
    assert [(gate["label"], gate["expect"]) for gate in plan["gates"]] == [("latency_p50_ms +50%", "PASS")]


def test_the_plan_sends_nothing_and_stores_nothing(tmp_path, server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("plan", scenario_file(tmp_path, url=server.base_url))
    assert result.exit_code == 0
    assert server.stats.requests == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl", "s.yaml"]


def test_names_from_the_scenario_are_escaped(tmp_path):
    result = invoke("plan", scenario_file(tmp_path, name="[bold red]x\x1b[2J"))
    assert result.stdout.splitlines()[0] == "Plan      [bold red]x\\x1b[2J (nothing sent)"


def test_a_missing_log_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("logs: nowhere.jsonl\ncandidate: {base_url: 'http://127.0.0.1:1/v1', model: m}\n")
    result = invoke("plan", path)
    assert result.exit_code == 2
    assert result.stdout == "" and result.stderr == "Error: logs: no such file 'nowhere.jsonl'\n"


def test_a_typo_in_a_gate_is_one_line_and_exit_2(tmp_path):
    path = scenario_file(tmp_path, "gates: [{metric: eror_rate, max_delta: 0.01}]\n")
    result = invoke("plan", path)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}: gates[0].metric: unknown metric 'eror_rate' (did you mean 'error_rate'?)\n"


def test_a_malformed_line_is_named_unless_skipped(tmp_path):
    path = scenario_file(tmp_path)
    with open(tmp_path / "log.jsonl", "a") as handle:
        handle.write("{not json\n")
    result = invoke("plan", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {tmp_path / 'log.jsonl'}:41: not valid JSON")
    skipped = invoke("plan", path, "--skip-invalid", "--json")
    assert skipped.exit_code == 0 and json.loads(skipped.stdout)["invalid_records"] == 1


def test_run_warns_before_sending_where_the_sample_cannot_settle_a_gate(tmp_path, server, store_path):
    log = support_log(tmp_path / "log.jsonl")
    result = invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "gpt-4o-mini",
                    "--store", store_path, "--quiet")  # fmt: skip
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        "warning: error_rate +0.5 pt: needs about 29,846 pairs; the sample gives 40, so expect INCONCLUSIVE",
        "warning: latency_p99_ms +200 ms: needs about 437 pairs (no logged values above the p99: its tail is a"
        " guess); the sample gives 36, so expect INCONCLUSIVE",
    ]
    assert lines[2].startswith("run ") and lines[2].endswith(": completed")
    assert result.exit_code == 1  # the gates' verdict: INCONCLUSIVE, as warned


def test_run_says_nothing_when_the_sample_settles_every_gate(tmp_path, server, store_path):
    log = support_log(tmp_path / "log.jsonl")
    gates = tmp_path / "gates.yaml"
    gates.write_text("gates:\n  - {metric: error_rate, max_delta: 0.5}\n")
    result = invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "gpt-4o-mini",
                    "--store", store_path, "--quiet", "--gates", gates)  # fmt: skip
    assert not any(line.startswith("warning:") for line in result.stderr.splitlines())
    assert result.stderr.splitlines()[0].startswith("run ")
