import pytest
from click.testing import CliRunner

from replay.cli import cli
from replay.scenario_file import load_scenario, scenario_from_snapshot
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


def with_base(extra):
    """BASE plus ``extra``, whose top-level keys replace BASE's (a repeated key is an error)."""
    keys = {line.split(":", 1)[0] for line in extra.splitlines() if line and not line[0].isspace()}
    kept = [line for line in BASE.splitlines() if line.split(":", 1)[0] not in keys]
    return "\n".join(kept) + "\n" + extra + "\n"


@pytest.mark.parametrize(
    "extra, message",
    [
        ("limts: {rpm: 5}", "limts: unknown key (did you mean 'limits'?)"),
        ("limits: {rmp: 5}", "limits.rmp: unknown key (did you mean 'limits.rpm'?)"),
        ("limits: {rpm: fast}", "limits.rpm: expected a number from 0.01 to 1,000,000,000, got 'fast'"),
        ("limits: {concurrency: 0}", "limits.concurrency: expected an integer from 1 to 10,000, got 0"),
        ("limits: {concurrency: true}", "limits.concurrency: expected an integer from 1 to 10,000, got True"),
        ("sample: {rate: 2}", "sample.rate: expected a number above 0 and at most 1, got 2"),
        ("baseline: fresh", "production: required when baseline is 'fresh'"),
        ("baseline: sometimes", "baseline: expected 'logged' or 'fresh', got 'sometimes'"),
        ("production: {model: x}", "production.base_url: missing required key"),
        ("prices: {m: {input: -1}}", "prices.m.input: expected a non-negative number, got -1"),
        ("compare: {jsn: auto}", "compare.jsn: unknown key (did you mean 'compare.json'?)"),
        ("compare: {key_fields: ['items[oops']}", "compare: bad JSON path 'items[oops' near '[oops'"),
        ("compare: {policies: {card: '([0-9'}}", "compare.policies.card: invalid regular expression: unterminated character set at position 1"),
        ("compare: {schema: nosuch.json}", "compare.schema: no such schema file: nosuch.json"),
        ("compare: {schema: {$schema: 5}}", "compare.schema: $schema must be a meta-schema URI string, got 5"),
        ("compare: {schema: {$schema: [1]}}", "compare.schema: $schema must be a meta-schema URI string, got [1]"),
        ("gates: [{metric: latency_p99_ms, max_delta: 200, segment: vip}]",
         "gates[0].segment: 'vip': write key=value, or set segment_by"),
        ("on_inconclusive: maybe", "on_inconclusive: expected 'fail' or 'pass', got 'maybe'"),
        ("candidate: {base_url: http://h/v1, model: m, provider: bedrock}",
         "candidate.provider: expected one of 'anthropic', 'azure', 'gemini', 'openai', got 'bedrock'"),
        ("candidate: {model: m, provider: azure}", "candidate.base_url: missing required key"),
        ("candidate: {base_url: http://h/v1, model: m, provider: 7}", "candidate.provider: expected a provider name, got 7"),
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
    path = scenario_file(tmp_path, with_base(extra))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {message}"


def test_literal_authorization_header_is_refused(tmp_path):
    path = scenario_file(tmp_path, BASE.replace("model: m}", "model: m, headers: {Authorization: Bearer sk-x}}"))
    with pytest.raises(ScenarioError, match="candidate.headers.Authorization: write secrets as"):
        load_scenario(path)


def test_defaults_and_overrides(tmp_path):
    path = scenario_file(tmp_path, with_base("limits: {rpm: 60, budget_usd: 2}\ncandidate: {base_url: http://h/v1, model: m, limits: {concurrency: 2}}"))
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


def test_an_arm_speaks_openai_unless_it_names_its_provider(tmp_path):
    path = scenario_file(tmp_path, with_base("production: {base_url: http://p/v1, model: m, provider: openai}"))
    scenario = load_scenario(path)
    assert scenario.candidate.provider == "openai" and scenario.production.provider == "openai"
    snap = scenario.snapshot()
    del snap["candidate"]["provider"]  # a run stored before arms named their provider
    assert scenario_from_snapshot(snap).candidate.provider == "openai"


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


@pytest.mark.parametrize(
    "extra, message",
    [
        ("limits: {rpm: .nan}", "limits.rpm: expected a finite number, got nan"),
        ("limits: {tpm: .inf}", "limits.tpm: expected a finite number, got inf"),
        ("limits: {timeout_s: .nan}", "limits.timeout_s: expected a finite number, got nan"),
        ("limits: {budget_usd: .nan}", "limits.budget_usd: expected a finite number, got nan"),
        ("limits: {budget_usd: -.inf}", "limits.budget_usd: expected a finite number, got -inf"),
        ("sample: {rate: .nan}", "sample.rate: expected a finite number, got nan"),
        ("max_record_mb: .nan", "max_record_mb: expected a finite number, got nan"),
        ("candidate: {base_url: http://h/v1, model: m, limits: {rpm: .inf}}",
         "candidate.limits.rpm: expected a finite number, got inf"),
        ("candidate: {base_url: http://h/v1, model: m, params: {temperature: .nan}}",
         "candidate.params.temperature: expected a finite number, got nan"),
        ("prices: {m: {input: .nan, output: 1}}", "prices.m.input: expected a finite number, got nan"),
        ("compare: {number_tolerance: .inf}", "compare.number_tolerance: expected a finite number, got inf"),
        ("gates: [{metric: error_rate, max_delta: .nan}]", "gates[0].max_delta: expected a finite number, got nan"),
        ("sample: {seed: 100000000000000000000}",
         "sample.seed: expected a number within 64-bit range, got 100000000000000000000"),
        ("limits: {rpm: 0.001}", "limits.rpm: expected a number from 0.01 to 1,000,000,000, got 0.001"),
        ("limits: {timeout_s: 1e9}", "limits.timeout_s: expected a number above 0 and at most 86,400, got 1000000000.0"),
        ("limits: {concurrency: 1000000}", "limits.concurrency: expected an integer from 1 to 10,000, got 1000000"),
        ("limits: {max_attempts: 1000}", "limits.max_attempts: expected an integer from 1 to 100, got 1000"),
        ("max_record_mb: 0", "max_record_mb: expected a number above 0 and at most 1,024, got 0"),
    ],
)
def test_every_number_is_finite_and_in_range(tmp_path, extra, message):
    path = scenario_file(tmp_path, with_base(extra))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    "key, value",
    [("limits.rpm", float("nan")), ("limits.timeout_s", float("inf")), ("limits.budget_usd", float("nan"))],
)
def test_non_finite_overrides_from_library_callers_name_the_key(key, value):
    with pytest.raises(ScenarioError, match=rf"^<flags>: {key}: expected a finite number"):
        load_scenario(None, {"logs": ["x.jsonl"], "candidate.base_url": "http://h/v1", "candidate.model": "m", key: value})


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--rpm", "nan", "Invalid value for '--rpm': 'nan' is not a finite number."),
        ("--tpm", "nan", "Invalid value for '--tpm': 'nan' is not a finite number."),
        ("--timeout", "nan", "Invalid value for '--timeout': 'nan' is not a finite number."),
        ("--budget", "nan", "Invalid value for '--budget': 'nan' is not a finite number."),
        ("--sample", "nan", "Invalid value for '--sample': 'nan' is not a finite number."),
        ("--max-record-mb", "nan", "Invalid value for '--max-record-mb': 'nan' is not a finite number."),
        ("--rpm", "inf", "Invalid value for '--rpm': inf is not in the range 0.01<=x<=1000000000.0."),
        ("--timeout", "1e9", "Invalid value for '--timeout': 1000000000.0 is not in the range 0<x<=86400."),
        ("--concurrency", "100000", "Invalid value for '--concurrency': 100000 is not in the range 1<=x<=10000."),
        ("--max-attempts", "0", "Invalid value for '--max-attempts': 0 is not in the range 1<=x<=100."),
        ("--max", "0", "Invalid value for '--max': 0 is not in the range 1<=x<2**63."),
        ("--seed", str(2**63), f"Invalid value for '--seed': {2**63} is not in the range -2**63<=x<2**63."),
    ],
)
def test_numeric_flags_refuse_non_finite_and_out_of_range_values(tmp_path, flag, value, message):
    result = CliRunner().invoke(cli, ["run", "--logs", "x.jsonl", "--candidate-url", "http://h/v1",
                                      "--candidate-model", "m", "--store", str(tmp_path / "s.db"), flag, value])  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert not (tmp_path / "s.db").exists()


def test_yaml_exponent_numbers_are_numbers(tmp_path):
    path = scenario_file(tmp_path, BASE + "limits: {rpm: 2e5, tpm: 1.5e6, budget_usd: 5E-1}\n")
    scenario = load_scenario(path)
    assert scenario.candidate.limits.rpm == 200_000 and scenario.candidate.limits.tpm == 1_500_000
    assert scenario.budget_usd == 0.5


def test_a_duplicate_key_names_the_key_and_both_lines(tmp_path):
    path = scenario_file(tmp_path, BASE + "limits: {rpm: 5}\nname: again\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}:6: invalid YAML: duplicate key 'name' (first on line 2)"


def test_a_duplicate_nested_key_is_refused_but_a_merged_key_may_be_overridden(tmp_path):
    nested = scenario_file(tmp_path, BASE + "limits: {rpm: 5, rpm: 6}\n")
    with pytest.raises(ScenarioError, match=r":5: invalid YAML: duplicate key 'rpm' \(first on line 5\)"):
        load_scenario(nested)
    merged = scenario_file(tmp_path, BASE.replace("candidate: {base_url: http://127.0.0.1:9/v1, model: m}",
        "arm: &arm {base_url: http://127.0.0.1:9/v1, model: m}\ncandidate: {<<: *arm, model: n}").replace(
        "name: t", "name: t\nsample: {rate: 1}"))  # fmt: skip
    with pytest.raises(ScenarioError, match="arm: unknown key"):  # the merge itself worked: only 'arm' is unknown
        load_scenario(merged)


BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for name, prev in zip("abcdefghi", [None, *"abcdefgh"])
)


def test_a_billion_laughs_scenario_is_refused_at_once(tmp_path):
    path = scenario_file(tmp_path, BOMB)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == (f"{path}:6: invalid YAML: aliases expand to more than 2,000,000 nodes and "
                               "characters here (a YAML bomb?)")  # fmt: skip


def test_a_small_alias_is_fine_and_a_recursive_one_is_refused(tmp_path):
    shared = scenario_file(tmp_path, BASE + "limits: &l {rpm: 5}\nproduction: {base_url: http://h/v1, model: m, limits: *l}\n")
    assert load_scenario(shared).production.limits.rpm == 5
    recursive = scenario_file(tmp_path, BASE + "critical_segments: &c [*c]\n")
    with pytest.raises(ScenarioError, match=r":5: invalid YAML: an alias refers to itself"):
        load_scenario(recursive)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"name: caf\xe9\n", ":1: invalid YAML: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
        (b"a: " + b"[" * 300 + b"]" * 300 + b"\n", ":1: invalid YAML: nested more than 100 levels deep"),
        (b"a: 1\n---\nb: 2\n", ":2: invalid YAML: but found another document"),
        (b"a: !!python/object:os.system x\n", ":1: invalid YAML: could not determine a constructor"),
        (b"- a\n- b\n", ": expected a mapping at the top level"),
        (b"name: t\nlogs: \x1b[2J\n", ":2: invalid YAML: a control character (#x1b) is not allowed in YAML"),
        (b"sample: {seed: " + b"9" * 5000 + b"}\n", ": invalid YAML: an integer with thousands of digits"),
    ],
)
def test_unacceptable_yaml_is_one_located_error(tmp_path, content, message):
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    assert str(info.value).startswith(f"{path}{message}")


def test_the_gates_file_uses_the_same_strict_yaml(tmp_path):
    from replay.cli.decide import load_gates_file

    bomb = tmp_path / "gates.yaml"
    bomb.write_text(BOMB + "gates: default\n")
    with pytest.raises(ScenarioError, match=r"gates.yaml:6: invalid YAML: aliases expand"):
        load_gates_file(str(bomb))
    dup = tmp_path / "dup.yaml"
    dup.write_text("gates: default\ngates: []\n")
    with pytest.raises(ScenarioError, match=r"dup.yaml:2: invalid YAML: duplicate key 'gates'"):
        load_gates_file(str(dup))
    typo = tmp_path / "typo.yaml"
    typo.write_text("gates: [defualt]\n")
    with pytest.raises(ScenarioError) as info:
        load_gates_file(str(typo))
    assert str(info.value) == f"{typo}: gates[0]: unknown preset 'defualt' (did you mean 'default'?)"


def test_a_yaml_schema_file_is_read_strictly(tmp_path):
    (tmp_path / "schema.yaml").write_text("type: object\ntype: array\n")
    path = scenario_file(tmp_path, BASE + "compare: {schema: schema.yaml}\n")
    with pytest.raises(ScenarioError, match=r"compare.schema: .*schema.yaml: not a JSON Schema file: duplicate key 'type'"):
        load_scenario(path)


def test_segment_keys_name_where_each_key_comes_from(tmp_path):
    path = scenario_file(tmp_path, BASE + "segment_by: [category]\ncritical_segments: [billing, 'tenant=t1']\n"
                         "gates: [{metric: error_rate, max_delta: 0.1, segment: 'route=/x'}, default]\n")  # fmt: skip
    assert load_scenario(path).segment_keys() == {"category": "segment_by", "tenant": "critical_segments",
                                                  "route": "gates[0].segment"}  # fmt: skip


@pytest.mark.parametrize("name, text", [("schema.json", '{"type": "number", "maximum": NaN}'),
                                        ("schema.yaml", "type: number\nmaximum: .inf\n")])
def test_a_schema_file_with_a_non_finite_number_is_refused(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    path = scenario_file(tmp_path, BASE + f"compare: {{schema: {name}}}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: compare.schema.maximum: expected a finite number, got {'nan' if 'json' in name else 'inf'}"
