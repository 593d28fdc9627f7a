"""Property-based fuzzing of what users hand to replay: log lines, scenarios, gates files.

For any generated input the outcome is a valid result or one of our located errors
(exit 2 through the CLI): never a traceback, never a hang. Accepted log records must
also be usable by what reads them later (the engine's reading of a logged answer and
the JSON sent to the endpoint), since that is where bad records used to crash a run.
Examples are derandomised so a failure reproduces; no deadline (tests are not timed).
"""

import json
import math

import orjson
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import record
from replay.cli import cli
from replay.errors import InputError
from replay.readers import iter_records
from replay.tokens import estimate_prompt_tokens

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=8)  # fmt: skip


def maybe(strategy):
    """The expected shape nine times in ten, anything at all otherwise."""
    return st.integers(0, 9).flatmap(lambda pick: values if pick == 0 else strategy)


def record_strategy(noise: bool):
    """Shadow-log records: with ``noise``, any field may hold anything at all (one time in
    ten), so deep fields get exercised on records that pass the checks above them;
    without it, every record is one the reader must accept."""

    shape = maybe if noise else (lambda strategy: strategy)
    text = st.text(max_size=6)
    counts = st.integers(min_value=0, max_value=500)
    roles = ["system", "user", "assistant", "tool"] + (["usr"] if noise else [])
    part = st.fixed_dictionaries({"type": st.just("text")}, optional={"text": text})
    messages = st.lists(shape(st.fixed_dictionaries(
        {"role": shape(st.sampled_from(roles)), "content": shape(st.one_of(text, st.lists(shape(part), max_size=2)))},
        optional={"name": shape(text), "tool_calls": shape(st.lists(st.dictionaries(text, scalars, max_size=2), max_size=2))},
    )), min_size=1, max_size=3)  # fmt: skip
    requests = st.fixed_dictionaries({"messages": shape(messages)}, optional={
        "model": shape(text), "max_tokens": shape(counts), "temperature": shape(st.floats(0, 2)),
        "stream": shape(st.booleans()), "stop": shape(st.one_of(text, st.lists(text, max_size=2))),
        "tools": shape(st.lists(st.just({"type": "function"}), max_size=2)), "seed": shape(st.integers(-(2**63), 2**63 - 1)),
    })  # fmt: skip
    function = st.fixed_dictionaries({}, optional={"name": shape(text), "arguments": shape(text)})
    tool_calls = st.lists(shape(st.fixed_dictionaries({}, optional={"id": shape(text), "function": shape(function)})), max_size=2)
    message = st.fixed_dictionaries({}, optional={"content": shape(text), "refusal": shape(st.none() | text),
                                                  "tool_calls": shape(tool_calls)})  # fmt: skip
    choice = st.fixed_dictionaries({}, optional={"finish_reason": shape(st.sampled_from(["stop", "length"])),
                                                 "message": shape(message)})  # fmt: skip
    answers = st.fixed_dictionaries({}, optional={
        "choices": shape(st.lists(shape(choice), max_size=2)), "model": shape(text),
        "usage": shape(st.fixed_dictionaries({}, optional={"prompt_tokens": shape(counts), "completion_tokens": shape(counts)})),
    })  # fmt: skip
    return st.fixed_dictionaries(
        {"id": shape(st.text(min_size=1, max_size=6)), "request": shape(requests)},
        optional={"response": shape(answers), "latency_ms": shape(counts), "ttft_ms": shape(counts), "status": shape(counts),
                  "timestamp": shape(st.just("2026-11-01T12:00:00Z")),
                  "metadata": shape(st.dictionaries(text, scalars, max_size=2)), "error": scalars if noise else st.none()},
    )  # fmt: skip


records = record_strategy(noise=True)


def json_line(obj):
    """JSON as a logger might write it: NaN and Infinity included, huge integers as digits."""
    return json.dumps(obj, allow_nan=True)


raw_lines = st.one_of(records.map(json_line), st.binary(max_size=60), st.text(max_size=40).map(str.encode))


def assert_usable(rec):
    """What the engine does with an accepted record must not raise."""
    orjson.dumps(rec.request)  # the body sent to the endpoint
    estimate_prompt_tokens(rec.request, "gpt-4o")
    if rec.answer is not None:  # the logged answer, read by the shared OpenAI wire parser
        completion = rec.answer
        assert completion.text is None or isinstance(completion.text, str)
        "".join(call.name + call.arguments for call in completion.tool_calls)
        usage = completion.usage
        for count in (usage.prompt_tokens, usage.completion_tokens):
            assert count is None or (isinstance(count, int) and count >= 0)
    for number in (rec.latency_ms, rec.ttft_ms):
        assert number is None or math.isfinite(number)


@FUZZ
@given(lines=st.lists(st.one_of(raw_lines, records.map(lambda r: json_line({**r, "id": "x"}))), min_size=1, max_size=4))
def test_any_log_ends_in_records_or_a_located_error(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "log.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") if isinstance(line, bytes) else line.encode() for line in lines))
    try:
        accepted = list(iter_records([str(path)], max_record_bytes=4096))
    except InputError as exc:  # LogFormatError included
        assert str(exc).startswith(f"{path}:") or str(exc).startswith(f"{path}: ")
    else:
        for rec in accepted:
            assert_usable(rec)
    errors = []
    try:  # a bad line is skipped; a file that cannot be read at all still stops
        for rec in iter_records([str(path)], skip_invalid=True, on_invalid=errors.append, max_record_bytes=4096):
            assert_usable(rec)
    except InputError as exc:
        errors.append(exc)
    assert all(str(error).startswith(f"{path}:") for error in errors)


@FUZZ
@given(lines=st.lists(raw_lines, min_size=0, max_size=3))
def test_logs_validate_exits_0_or_2_with_one_line_per_problem(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "log.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") if isinstance(line, bytes) else line.encode() for line in lines))
    result = CliRunner().invoke(cli, ["logs", "validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 2)
    if result.exit_code == 2:
        assert result.stderr.splitlines()[-1].startswith("Error: ")


scenario_values = st.one_of(values, st.sampled_from([".nan", "-.inf", "2e5", "*a", "&a x", "!!binary aGk=", "<<: *a"]))


def keyed(keys):
    """A mapping of some of ``keys`` (and now and then another) to any values."""
    return maybe(st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=4)), scenario_values, max_size=3))


gates_items = st.lists(maybe(st.one_of(
    st.sampled_from(["default", "defualt"]),
    st.fixed_dictionaries({"metric": maybe(st.sampled_from(["error_rate", "similarity", "eror_rate"]))},
                          optional={"max_delta": values, "min": values, "segment": values, "min_n": values}),
)), max_size=3)  # fmt: skip
schemas = st.dictionaries(st.sampled_from(["$schema", "type", "properties", "$ref", "pattern", "required", "items"]), values,
                          max_size=3)  # fmt: skip
compares = st.fixed_dictionaries({}, optional={
    "schema": maybe(schemas), "json": maybe(st.sampled_from(["auto", "always", "never"])), "key_fields": maybe(st.lists(st.text(max_size=6))),
    "ignore_paths": maybe(st.lists(st.text(max_size=6))), "number_tolerance": values,
    "policies": maybe(st.dictionaries(st.text(max_size=4), st.text(max_size=6), max_size=2)),
})  # fmt: skip
limit_keys = ["concurrency", "rpm", "tpm", "timeout_s", "max_attempts", "budget_usd"]
arm = st.fixed_dictionaries(
    {"base_url": maybe(st.sampled_from(["http://127.0.0.1:9/v1", "http://[::1", "https://h:99999/v1", "ftp://x"])),
     "model": maybe(st.just("m"))},
    optional={"limits": keyed(limit_keys), "params": values, "headers": maybe(st.dictionaries(st.text(max_size=5), values, max_size=2)),
              "transport": maybe(st.sampled_from(["native", "httpx", "curl"])), "stream": values, "api_key_env": values},
)  # fmt: skip
scenario_data = st.fixed_dictionaries(
    {"logs": maybe(st.just("log.jsonl")), "candidate": maybe(arm)},
    optional={"name": scenario_values, "sample": keyed(["rate", "max", "seed"]), "limits": keyed(limit_keys),
              "baseline": maybe(st.sampled_from(["logged", "fresh"])), "production": maybe(arm), "prices": values,
              "compare": maybe(compares), "gates": maybe(gates_items), "segment_by": scenario_values,
              "critical_segments": scenario_values, "on_inconclusive": scenario_values, "max_record_mb": scenario_values,
              "nosuch": scenario_values},
)  # fmt: skip


def yaml_text(data):
    """A YAML document; string values that look like YAML syntax are spliced in raw."""
    text = yaml.safe_dump(data, default_flow_style=True, allow_unicode=True)
    for token in (".nan", "-.inf", "2e5", "*a", "&a x", "!!binary aGk=", "<<: *a"):
        text = text.replace(f"'{token}'", token)
    return text


scenario_texts = st.one_of(scenario_data.map(yaml_text), st.text(max_size=60))


@FUZZ
@given(text=scenario_texts)
def test_any_scenario_ends_in_a_scenario_or_a_located_error(tmp_path_factory, text):
    from replay.scenario_file import load_scenario

    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "s.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        scenario = load_scenario(str(path))
    except InputError as exc:  # ScenarioError included
        assert str(exc).startswith(str(path)) or str(exc).startswith(("logs:", "<flags>:")), str(exc)
        return
    json.dumps(scenario.snapshot(), allow_nan=False, default=str)  # stored with the run: finite, bounded


@settings(FUZZ, max_examples=30)
@given(text=scenario_texts)
def test_any_scenario_through_the_cli_exits_2_in_one_line_or_runs(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "s.yaml"
    path.write_text(text, encoding="utf-8")
    (folder / "log.jsonl").write_text("")  # empty: a valid scenario stops at the log, before any request
    result = CliRunner().invoke(cli, ["run", str(path), "--store", str(folder / "s.db"), "--quiet"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("Error: ")


gates_texts = st.one_of(gates_items.map(lambda items: yaml_text({"gates": items})), scenario_texts,
                        st.just("gates: " + "[" * 200 + "]" * 200))  # fmt: skip


@FUZZ
@given(text=gates_texts)
def test_any_gates_file_ends_in_gates_or_a_located_error(tmp_path_factory, text):
    from replay.cli.decide import load_gates_file
    from replay.gates import parse_gates

    path = tmp_path_factory.mktemp("fuzz") / "gates.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        gates = load_gates_file(str(path))
    except InputError as exc:
        assert str(exc).startswith(str(path)), str(exc)
        return
    parsed = parse_gates(gates.gates, lambda key, message: AssertionError(f"{key}: {message}"))  # a GatesFile since 8c06bb8
    assert all(math.isfinite(gate.threshold) for gate in parsed)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(obj=record_strategy(noise=False))
def test_the_fuzzer_without_noise_makes_records_the_reader_accepts(obj):
    """Guard: the properties above must not hold only because every record is refused."""
    from replay.readers.shadow import parse_record

    assert_usable(parse_record(json_line(obj)))


@pytest.mark.parametrize("line", [json_line(record("a")), json_line({**record("b"), "response": None})])
def test_the_plain_record_passes_the_usability_check(line):
    from replay.readers.shadow import parse_record

    assert_usable(parse_record(line))
