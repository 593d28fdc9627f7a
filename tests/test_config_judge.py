"""The ``judge:`` scenario key: configured like an arm, checked with one-line errors."""

import pytest
from click.testing import CliRunner

from replay.cli import cli
from replay.config import Judge
from replay.errors import ScenarioError
from replay.scenario_file import load_scenario, scenario_from_snapshot
from replay.store import Store
from test_config import scenario_file, with_base

JUDGE = "judge: {base_url: http://127.0.0.1:9/v1, model: judge-1, api_key_env: JUDGE_API_KEY"


def test_a_judge_is_an_arm_with_what_it_is_asked(tmp_path):
    path = scenario_file(tmp_path, with_base(JUDGE + ", rubric: Be fair., sample: 300,"
                                             " params: {temperature: 0, seed: 1234}, limits: {concurrency: 8, rpm: 500}}"))
    judge = load_scenario(path).judge
    assert isinstance(judge, Judge)
    assert (judge.arm.model, judge.arm.api_key_env, judge.arm.provider, judge.arm.stream) == ("judge-1", "JUDGE_API_KEY", "openai", False)
    assert (judge.arm.limits.concurrency, judge.arm.limits.rpm, judge.arm.params) == (8, 500, {"temperature": 0, "seed": 1234})
    assert (judge.rubric, judge.prompt, judge.both_orders, judge.sample, judge.allow_self_judge) == ("Be fair.", None, True, 300, False)


def test_the_judge_survives_the_snapshot_and_a_scenario_without_one_keeps_its_digest(tmp_path):
    scenario = load_scenario(scenario_file(tmp_path, with_base(JUDGE + "}")))
    assert scenario_from_snapshot(scenario.snapshot()) == scenario
    plain = load_scenario(scenario_file(tmp_path, with_base("")))
    assert plain.judge is None and "judge" not in plain.snapshot()


def test_rubric_and_prompt_files_are_read_and_stored(tmp_path):
    (tmp_path / "rubric.txt").write_text("Prefer correct answers.\n")
    (tmp_path / "prompt.txt").write_text("R: {rubric}\nQ: {request}\nA: {answer_a}\nB: {answer_b}\n")
    judge = load_scenario(scenario_file(tmp_path, with_base(JUDGE + ", rubric_file: rubric.txt, prompt_file: prompt.txt}"))).judge
    assert judge.rubric == "Prefer correct answers.\n" and judge.prompt.startswith("R: {rubric}")


@pytest.mark.parametrize("extra, message", [
    (JUDGE + ", rubrik: x}", "judge.rubrik: unknown key (did you mean 'judge.rubric'?)"),
    (JUDGE + ", both_order: false}", "judge.both_order: unknown key (did you mean 'judge.both_orders'?)"),
    (JUDGE + ", sample: 0}", "judge.sample: expected an integer from 1 to"),
    (JUDGE + ", both_orders: maybe}", "judge.both_orders: expected true or false, got 'maybe'"),
    (JUDGE + ", limits: {rmp: 5}}", "judge.limits.rmp: unknown key (did you mean 'judge.limits.rpm'?)"),
    (JUDGE + ", provider: acme}", "judge.provider: expected one of 'anthropic', 'azure', 'gemini', 'openai', got 'acme'"),
    ("judge: {model: j}", "judge.base_url: missing required key"),
    (JUDGE + ", rubric: x, rubric_file: r.txt}", "judge.rubric_file: give rubric or rubric_file, not both"),
    (JUDGE + ", rubric_file: nowhere.txt}", "judge.rubric_file: no such file 'nowhere.txt'"),
    (JUDGE + ", model: m}", "judge.model: 'm' is also the candidate's model"),
])  # fmt: skip
def test_judge_errors_name_the_key(tmp_path, extra, message):
    if "model: m}" in extra:
        extra = "judge: {base_url: http://127.0.0.1:9/v1, model: m}"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario_file(tmp_path, with_base(extra)))
    assert message in str(caught.value)


def test_a_prompt_template_must_show_both_answers(tmp_path):
    (tmp_path / "prompt.txt").write_text("Which is better? {answer_a}")
    with pytest.raises(ScenarioError, match=r"judge.prompt_file: prompt.txt: the template must contain \{answer_b\}"):
        load_scenario(scenario_file(tmp_path, with_base(JUDGE + ", prompt_file: prompt.txt}")))


def test_self_judge_is_refused_in_one_line_with_exit_2_unless_allowed(tmp_path):
    path = scenario_file(tmp_path, with_base("judge: {base_url: http://127.0.0.1:9/v1, model: M}"))
    result = CliRunner().invoke(cli, ["run", path, "--store", str(tmp_path / "s.db")])
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {path}: judge.model: 'M' is also the candidate's model, and a model judging its own"
                             " answers favours them: judge with another model, or set judge.allow_self_judge: true\n")  # fmt: skip
    assert Store(str(tmp_path / "s.db")).runs() == []  # refused before anything was run
    allowed = scenario_file(tmp_path, with_base("judge: {base_url: http://127.0.0.1:9/v1, model: m, allow_self_judge: true}"))
    assert load_scenario(allowed).judge.allow_self_judge


def test_a_judge_of_the_production_model_is_refused_too(tmp_path):
    extra = "production: {base_url: http://127.0.0.1:9/v1, model: prod-1}\njudge: {base_url: http://127.0.0.1:9/v1, model: prod-1}"
    with pytest.raises(ScenarioError, match="judge.model: 'prod-1' is also the production's model"):
        load_scenario(scenario_file(tmp_path, with_base(extra)))


def test_a_judge_gate_without_a_judge_is_refused(tmp_path):
    path = scenario_file(tmp_path, with_base("gates: [{metric: error_rate, max_delta: 0.01}, {metric: judge_win_rate, min: 0.45}]"))
    with pytest.raises(ScenarioError, match=r"gates\[1\].metric: judge_win_rate needs a judge: add a 'judge:' section"):
        load_scenario(path)
    assert load_scenario(scenario_file(tmp_path, with_base("gates: default"))).judge is None  # the preset leaves it out
