"""``replay run`` with a judge, end to end through click: the candidate on the mock server and
a deterministic judge (tests/judge_server.py), both on 127.0.0.1; then ``replay gate``,
``replay report``, ``replay judge`` and a rerun, none of which pays for a verdict twice."""

import json
import re

from click.testing import CliRunner

from conftest import record, write_log
from judge_server import always_a, judge_server, prefers_candidate, rambling
from replay.cli import cli

N = 30


def invoke(*args):
    return CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(cli, [str(a) for a in args], catch_exceptions=False)


def scenario(tmp_path, candidate, judge, extra=""):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i:02d}", f"question {i}") for i in range(N)])
    path = tmp_path / "judged.yaml"
    path.write_text(
        f"name: judged\nlogs: {log}\n"
        f"candidate: {{base_url: '{candidate.base_url}', model: cand-1}}\n"
        f"judge: {{base_url: '{judge.base_url}', model: judge-1, limits: {{concurrency: 4}}{extra}}}\n"
        "gates: [{metric: judge_win_rate, min: 0.45}]\n"
        "prices: {judge-1: {input: 1.0, output: 2.0}}\n",
        encoding="utf-8",
    )  # fmt: skip
    return str(path)


def candidate_server(make_server):
    return make_server(latency_ms=1, answers={f"question {i}": f"CAND reply {i}" for i in range(N)})


def test_a_run_with_a_judge_judges_every_pair_while_it_replays_and_never_pays_twice(make_server, tmp_path, store_path):
    candidate = candidate_server(make_server)
    with judge_server(prefers_candidate) as judge:
        path = scenario(tmp_path, candidate, judge)
        result = invoke("run", path, "--store", store_path, "--quiet")
        assert result.exit_code == 0, result.output
        assert judge.stats.requests == 2 * N
        assert "Judge judge-1 (both orders): candidate win rate 100.0% [88.6%, 100.0%] over 30 pairs: 30 wins, 0 ties," \
               " 0 losses; 0 judge errors; 0 identical pairs tied without a call" in " ".join(result.stdout.split())
        assert re.search(r"\njudge_win_rate +— \[88\.6%, 100\.0%\] ≥ 45\.0% +30 PASS\n", result.stdout)
        assert "Judge spend: $0.00852 over 60 requests (0 verdicts reused from the store, not paid again)" in result.stdout
        assert "\n  of which the judge: $0.0085\n" in result.stderr  # the run's spend includes the judge's
        report = json.loads(invoke("report", "latest", "--store", store_path, "--format", "json").stdout)
        block = report["judge"]
        assert {k: block[k] for k in ("model", "judged", "wins", "ties", "losses", "errors", "requests")} == \
            {"model": "judge-1", "judged": N, "wins": N, "ties": 0, "losses": 0, "errors": 0, "requests": 2 * N}
        assert block["position_consistency"] == 1.0 and block["win_rate"]["value"] == 1.0 and block["cost_usd"] > 0
        assert report["schema_version"] == 1
        assert invoke("gate", "latest", "--store", store_path).exit_code == 0
        assert invoke("judge", "latest", "--store", store_path).exit_code == 0
        rerun = invoke("run", path, "--store", store_path, "--quiet")  # a new run, the same answers
        assert rerun.exit_code == 0
        assert judge.stats.requests == 2 * N  # every verdict came from the store
        again = json.loads(invoke("report", "latest", "--store", store_path, "--format", "json").stdout)["judge"]
        assert (again["requests"], again["cached"], again["judged"], again["cost_usd"]) == (0, 2 * N, N, 0.0)


def test_a_position_biased_judge_fails_nothing_and_the_report_says_its_verdicts_are_noise(make_server, tmp_path, store_path):
    candidate = candidate_server(make_server)
    with judge_server(always_a) as judge:
        result = invoke("run", scenario(tmp_path, candidate, judge), "--store", store_path, "--quiet")
    text = " ".join(result.stdout.split())
    assert "30 wins" not in text and "0 wins, 30 ties, 0 losses" in text
    assert "position consistency 0.0% [0.0%, 11.4%] (n=30)" in text
    assert "Judge warning: position consistency is 0% (n=30): the verdict flips when the answers swap places on most" \
           " pairs, so the judge's verdicts are mostly noise (flipped verdicts count as ties)" in text
    assert result.exit_code == 1  # a win rate of exactly 0.5 on 30 pairs cannot show non-inferiority yet


def test_a_missing_judge_key_is_said_before_anything_is_sent(make_server, tmp_path, store_path):
    candidate = candidate_server(make_server)
    with judge_server(prefers_candidate) as judge:
        path = scenario(tmp_path, candidate, judge, extra=", api_key_env: JUDGE_KEY_NOT_SET")
        result = invoke("run", path, "--store", store_path, "--quiet")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and "JUDGE_KEY_NOT_SET" in result.stderr
    assert (judge.stats.requests, candidate.stats.requests) == (0, 0)


def test_replay_judge_judges_what_a_run_left_unjudged(make_server, tmp_path, store_path):
    candidate = candidate_server(make_server)
    with judge_server(rambling) as judge:
        result = invoke("run", scenario(tmp_path, candidate, judge), "--store", store_path, "--quiet")
        assert "0 wins, 0 ties, 0 losses; 30 judge errors" in " ".join(result.stdout.split())
        assert result.exit_code == 1  # a judge gate with no verdict is inconclusive
        assert judge.stats.requests == 4 * N  # each order asked twice
        judge.config.respond = prefers_candidate
        judged = invoke("judge", "latest", "--store", store_path)
        assert judged.exit_code == 0
        assert re.fullmatch(r"run \S+: 60 judge request\(s\), 0 judge error\(s\), \$0\.\d{4} spent\n", judged.stderr)
        assert invoke("judge", "latest", "--store", store_path).stderr.endswith(": 0 judge request(s), 0 judge error(s), $0.0000 spent\n")
    assert invoke("gate", "latest", "--store", store_path).exit_code == 0


def test_show_and_the_disagreement_queue_show_the_verdict_and_its_reason_inert(make_server, tmp_path, store_path):
    hostile = "[bold red]B[/bold red] \x1b[2J\x1b]0;pwned\x07 | <b>x</b> " + "long " * 400

    def loud(body):
        return prefers_candidate(body).replace("CAND is better", hostile)

    candidate = candidate_server(make_server)
    with judge_server(loud) as judge:
        invoke("run", scenario(tmp_path, candidate, judge), "--store", store_path, "--quiet")
    shown = invoke("show", "latest", "r03", "--store", store_path).stdout
    line = next(line for line in shown.splitlines() if line.startswith("judge judge-1: "))
    assert line.startswith("judge judge-1: candidate better: [bold red]B[/bold red] \\x1b[2J\\x1b]0;pwned\\x07 | <b>x</b> long")
    assert "\x1b" not in shown and "more characters)" in shown  # escaped, and capped
    queue = invoke("disagreements", "latest", "--store", store_path, "--json").stdout.splitlines()
    item = json.loads(queue[0])
    assert item["judge"] == "candidate" and item["judge_reason"].startswith("[bold red]B[/bold red] \x1b[2J")
    table = invoke("disagreements", "latest", "--store", store_path).stdout
    assert "candidate better: [bold red]B[/bold red] \\x1b[2J" in table and "\x1b" not in table
    markdown = invoke("report", "latest", "--store", store_path, "--format", "markdown").stdout
    assert "candidate better: \\[bold red\\]B\\[/bold red\\] \\\\x1b\\[2J" in markdown and "<b>" not in markdown


def test_the_judges_spend_counts_against_the_runs_budget(make_server, tmp_path, store_path):
    """And a resume with a larger budget judges the rest: each verdict paid once."""
    candidate = candidate_server(make_server)
    with judge_server(prefers_candidate) as judge:
        path = scenario(tmp_path, candidate, judge)
        text = open(path, encoding="utf-8").read().replace("{judge-1: {input: 1.0, output: 2.0}}", "{judge-1: {input: 1000.0, output: 2000.0}}")
        open(path, "w", encoding="utf-8").write(text + "limits: {budget_usd: 1.0}\n")
        result = invoke("run", path, "--store", store_path, "--quiet")
        assert result.exit_code == 3
        assert "budget $1.00 reached" in result.stderr and "budget_exhausted" in result.stderr
        assert 0 < judge.stats.requests < 2 * N  # stopped once the judge's spend passed the budget
        run_id = re.search(r"replay run --resume (\S+)", result.stderr).group(1)
        resumed = invoke("run", "--resume", run_id, "--budget", "1000", "--store", store_path, "--quiet")
        assert resumed.exit_code == 0, resumed.output
        assert judge.stats.requests == 2 * N  # the resume judged the rest, and nothing twice
    block = json.loads(invoke("report", run_id, "--store", store_path, "--format", "json").stdout)["judge"]
    assert (block["judged"], block["wins"], block["errors"], block["requests"]) == (N, N, 0, 2 * N)


def test_with_a_noise_floor_the_judge_also_judges_production_against_itself(make_server, tmp_path, store_path):
    """Production's second answers are neither CAND nor the first: the candidate-preferring judge
    says "B" in both orders, a flip, so production's own win rate is 0.5, beside the candidate's 1.0."""
    candidate = candidate_server(make_server)
    production = make_server(latency_ms=1)
    with judge_server(prefers_candidate) as judge:
        path = scenario(tmp_path, candidate, judge)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"production: {{base_url: '{production.base_url}', model: prod-1}}\nnoise_floor: {{sample: 10}}\n")
        result = invoke("run", path, "--store", store_path, "--quiet")
        assert result.exit_code == 0, result.output
        assert judge.stats.requests == 2 * N + 2 * 10
        report = json.loads(invoke("report", "latest", "--store", store_path, "--format", "json").stdout)
    assert report["judge"]["judged"] == N and report["judge"]["win_rate"]["value"] == 1.0
    assert report["noise_floor"]["metrics"]["judge_win_rate"]["n"] == 10
    assert report["noise_floor"]["metrics"]["judge_win_rate"]["value"] == 0.5
    gates = tmp_path / "over-noise.yaml"
    gates.write_text("gates: [{metric: judge_win_rate, min_over_noise: 0.05}]\n", encoding="utf-8")
    over = invoke("gate", "latest", "--store", store_path, "--gates", gates)
    assert over.exit_code == 0 and re.search(r"\njudge_win_rate .* PASS\n", over.stdout), over.stdout


def test_replay_judge_on_a_run_without_a_judge_is_one_line_exit_2(tmp_path):
    from stored_runs import golden_run

    golden_run(tmp_path / "g.db")
    result = invoke("judge", "golden-run", "--store", tmp_path / "g.db")
    assert result.exit_code == 2
    assert result.stderr == ("Error: run golden-run has no judge: add a 'judge:' section to its scenario and run it"
                             " again\n")  # fmt: skip


def test_a_dead_judge_stops_the_judging_not_the_run(make_server, tmp_path, store_path):
    candidate = candidate_server(make_server)
    dead = type("Dead", (), {"base_url": "http://127.0.0.1:9/v1"})()  # the discard port: nothing listens
    path = scenario(tmp_path, candidate, dead)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("limits: {max_attempts: 2}\n")
    result = invoke("run", path, "--store", store_path, "--quiet")
    assert result.exit_code == 1  # the run completed; its judge gate has no verdict to decide on
    assert "judge: endpoint http://127.0.0.1:9/v1 is unreachable (connection_error: " in result.stderr
    assert "judging stopped ('replay judge RUN' judges the rest)" in result.stderr
    assert candidate.stats.requests == N
