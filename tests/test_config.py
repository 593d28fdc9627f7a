import pytest
from click.testing import CliRunner

from replay.cli import cli
from replay.config import load_scenario, scenario_from_snapshot
from replay.errors import ScenarioError


def scenario_file(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return str(path)


BASE = """
name: t
logs: log.jsonl
candidate: {base_url: http://127.0.0.1:9/v1, model: m}
"""


@pytest.mark.parametrize(
    "extra, message",
    [
        ("limts: {rpm: 5}", "limts: unknown key (did you mean 'limits'?)"),
        ("limits: {rmp: 5}", "limits.rmp: unknown key (did you mean 'limits.rpm'?)"),
        ("limits: {rpm: fast}", "limits.rpm: expected a positive number, got 'fast'"),
        ("limits: {concurrency: 0}", "limits.concurrency: expected a positive integer, got 0"),
        ("limits: {concurrency: true}", "limits.concurrency: expected a positive integer, got True"),
        ("sample: {rate: 2}", "sample.rate: expected a number in (0, 1], got 2.0"),
        ("baseline: fresh", "production: required when baseline is 'fresh'"),
        ("baseline: sometimes", "baseline: expected 'logged' or 'fresh', got 'sometimes'"),
        ("production: {model: x}", "production.base_url: missing required key"),
        ("prices: {m: {input: -1}}", "prices.m.input: expected a non-negative number, got -1"),
        ("compare: {jsn: auto}", "compare.jsn: unknown key (did you mean 'compare.json'?)"),
        ("compare: {key_fields: ['items[oops']}", "compare: bad JSON path 'items[oops' near '[oops'"),
        ("compare: {policies: {card: '([0-9'}}", "compare.policies.card: invalid regular expression: unterminated character set at position 1"),
        ("compare: {schema: nosuch.json}", "compare.schema: no such schema file: nosuch.json"),
        ("gates: [{metric: latency_p99_ms, max_delta: 200, segment: vip}]",
         "gates[0].segment: 'vip': write key=value, or set segment_by"),
        ("on_inconclusive: maybe", "on_inconclusive: expected 'fail' or 'pass', got 'maybe'"),
        ("candidate: {base_url: http://h/v1, model: m, transport: curl}",
         "candidate.transport: expected one of 'native', 'aiohttp', 'httpx', got 'curl'"),
        ("candidate: {base_url: http://h/v1, model: m, headers: {x-a: \"1\\r\\nx-b: 2\"}}",
         "candidate.headers.x-a: header 'x-a' contains a line break"),
        ("candidate: {base_url: http://h/v1, model: m, headers: {Host: example.com}}",
         "candidate.headers.Host: header 'Host' is set by the HTTP client, not by the scenario"),
        ("candidate: {base_url: http://h/v1, model: m, headers: {'x tenant': a}}",
         "candidate.headers.x tenant: header name 'x tenant' is not a valid HTTP token"),
        ("candidate: {base_url: 'http://127.0.0.1:99999/v1', model: m}",
         "candidate.base_url: Port out of range 0-65535 in 'http://127.0.0.1:99999/v1'"),
        ("critical_segments: [vip]", "critical_segments: 'vip': write key=value, or set segment_by"),
    ],
)
def test_bad_keys_name_the_file_and_key(tmp_path, extra, message):
    path = scenario_file(tmp_path, BASE + extra + "\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {message}"


def test_literal_authorization_header_is_refused(tmp_path):
    path = scenario_file(tmp_path, BASE.replace("model: m}", "model: m, headers: {Authorization: Bearer sk-x}}"))
    with pytest.raises(ScenarioError, match="candidate.headers.Authorization: write secrets as"):
        load_scenario(path)


def test_defaults_and_overrides(tmp_path):
    path = scenario_file(tmp_path, BASE + "limits: {rpm: 60, budget_usd: 2}\ncandidate: {base_url: http://h/v1, model: m, limits: {concurrency: 2}}\n")
    scenario = load_scenario(path, {"limits.tpm": 1000, "candidate.model": "other", "sample.rate": 0.5})
    assert scenario.candidate.model == "other"
    assert scenario.candidate.params == {"temperature": 0, "seed": 1234}
    assert scenario.candidate.limits.concurrency == 2 and scenario.candidate.limits.rpm == 60
    assert scenario.candidate.limits.tpm == 1000
    assert scenario.budget_usd == 2 and scenario.sample.rate == 0.5


def test_snapshot_round_trip_keeps_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("KEY_VAR", "sk-should-not-appear")
    path = scenario_file(tmp_path, BASE.replace("model: m}", "model: m, api_key_env: KEY_VAR}"))
    scenario = load_scenario(path)
    snap = scenario.snapshot()
    assert "sk-should-not-appear" not in str(snap)
    assert scenario_from_snapshot(snap) == scenario


def test_adhoc_needs_candidate_and_logs():
    with pytest.raises(ScenarioError, match="candidate: missing required key"):
        load_scenario(None, {"logs": ["x.jsonl"]})


def test_cli_reports_a_typo_in_one_line_with_exit_2(tmp_path):
    path = scenario_file(tmp_path, BASE + "limits: {rmp: 5}\n")
    result = CliRunner().invoke(cli, ["run", path, "--store", str(tmp_path / "s.db")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {path}: limits.rmp: unknown key (did you mean 'limits.rpm'?)\n"


def test_invalid_yaml_names_the_line(tmp_path):
    path = scenario_file(tmp_path, "name: x\nlogs: [a\n")
    with pytest.raises(ScenarioError, match=rf"{path}:\d+: invalid YAML"):
        load_scenario(path)


def test_relative_logs_resolve_from_cwd_then_scenario_folder(tmp_path, monkeypatch):
    from replay.readers import resolve_log_paths

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "log.jsonl").write_text("")
    path = str(tmp_path / "sub" / "s.yaml")
    open(path, "w").write(BASE)
    monkeypatch.chdir(tmp_path)
    scenario = load_scenario(path)
    assert resolve_log_paths(scenario.logs, scenario.search_dirs) == [str(tmp_path / "sub" / "log.jsonl")]
