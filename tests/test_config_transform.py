"""An arm's ``transform`` in a scenario file: every part checked at load, one line naming the key,
exit 2 before anything is sent; the prompt's text stored with the run, so an edit cannot change it."""

from __future__ import annotations

import hashlib
import sqlite3
import sys

import pytest
from click.testing import CliRunner

from conftest import record, write_log
from replay.cli import cli
from replay.config import SystemPrompt, Transform
from replay.errors import ScenarioError
from replay.scenario_file import load_scenario, scenario_from_snapshot

BASE = """
name: t
logs: log.jsonl
candidate:
  base_url: http://127.0.0.1:9/v1
  model: gpt-4o-mini
  transform: {transform}
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A scenario folder with a prompt and a hook module, the working directory elsewhere."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "v2.txt").write_text("You are a support agent. Be brief.\n")
    (tmp_path / "hooks_cfg.py").write_text("def rewrite(request, record):\n    return request\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    yield tmp_path
    sys.modules.pop("hooks_cfg", None)


def scenario(folder, transform):
    path = folder / "s.yaml"
    path.write_text(BASE.format(transform=transform))
    return str(path)


def test_every_part_of_a_transform_is_read_at_load(folder):
    path = scenario(folder, "{system_prompt_file: prompts/v2.txt, mode: prepend, model_map: {gpt-4o: gpt-4.1},"
                            " patch: [{op: remove, path: /seed}], hook: 'hooks_cfg:rewrite'}")  # fmt: skip
    loaded = load_scenario(path).candidate.transform
    text = "You are a support agent. Be brief.\n"
    assert loaded == Transform(SystemPrompt("prompts/v2.txt", text, hashlib.sha256(text.encode()).hexdigest(), "prepend"),
                               {"gpt-4o": "gpt-4.1"}, ({"op": "remove", "path": "/seed"},), "hooks_cfg:rewrite")  # fmt: skip


def test_the_stored_transform_keeps_the_prompts_text_after_the_file_changes(folder):
    scenario_at_load = load_scenario(scenario(folder, "{system_prompt_file: prompts/v2.txt}"))
    (folder / "prompts" / "v2.txt").write_text("Edited later.\n")
    snapshot = scenario_at_load.snapshot()
    assert snapshot["candidate"]["transform"]["system_prompt"]["text"] == "You are a support agent. Be brief.\n"
    assert scenario_from_snapshot(snapshot) == scenario_at_load
    assert load_scenario(scenario(folder, "{system_prompt_file: prompts/v2.txt}")).digest() != scenario_at_load.digest()


def test_an_arm_without_a_transform_keeps_its_snapshot_and_digest(folder):
    plain = load_scenario(scenario(folder, "{}"))  # an empty transform is none
    assert plain.candidate.transform is None and "transform" not in plain.snapshot()["candidate"]
    (folder / "s.yaml").write_text(BASE.split("  transform")[0])
    assert load_scenario(str(folder / "s.yaml")).digest() == plain.digest()


@pytest.mark.parametrize("transform, message", [
    ("{system_prompt_file: prompts/v3.txt}", "candidate.transform.system_prompt_file: no such file: prompts/v3.txt"),
    ("{system_prompt: hi}", "candidate.transform.system_prompt: unknown key (did you mean 'candidate.transform.system_prompt_file'?)"),
    ("{system_prompt_file: prompts/v2.txt, mode: insert}", "candidate.transform.mode: expected 'replace', 'prepend' or 'append', got 'insert'"),
    ("{mode: append}", "candidate.transform.mode: goes with system_prompt_file"),
    ("{model_map: {gpt-4o: 4}}", "candidate.transform.model_map.gpt-4o: expected a model name, got 4"),
    ("{patch: [{op: remove, path: seed}]}", "candidate.transform.patch[0].path: expected a JSON Pointer such as /seed, got 'seed'"),
    ("{patch: [{op: replace, path: /temperature}]}", "candidate.transform.patch[0].value: missing: 'replace' needs it"),
    ("{patch: {op: remove, path: /seed}}", "candidate.transform.patch: expected a list of JSON Patch (RFC 6902) operations,"
                                           " got {'op': 'remove', 'path': '/seed'}"),
    ("{hook: 'hooks_cfg:nope'}", "candidate.transform.hook: hooks_cfg has no nope"),
    ("{hook: 'no_such_hooks:rewrite'}", "candidate.transform.hook: cannot import no_such_hooks: ModuleNotFoundError:"
                                        " No module named 'no_such_hooks'"),
])  # fmt: skip
def test_a_transform_that_cannot_work_is_one_line_naming_the_key(folder, transform, message):
    path = scenario(folder, transform)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value) == f"{path}: {message}"


def test_replay_run_refuses_it_with_exit_2_and_sends_nothing(folder, server, tmp_path):
    write_log(folder / "log.jsonl", [record("r1")])
    path = folder / "s.yaml"
    path.write_text(f"name: t\nlogs: {folder / 'log.jsonl'}\ncandidate: {{base_url: '{server.base_url}', model: m,"
                    " transform: {patch: [{op: remove}]}}\n")  # fmt: skip
    store = tmp_path / "store.db"
    result = CliRunner().invoke(cli, ["run", str(path), "--store", str(store)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"Error: {path}: candidate.transform.patch[0].path: missing: 'remove' needs it\n"
    assert server.stats.requests == 0
    assert not store.exists() or sqlite3.connect(store).execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_a_judge_takes_no_transform(folder):
    path = folder / "judged.yaml"
    path.write_text(BASE.format(transform="{}") + "judge: {base_url: http://127.0.0.1:9/v1, model: judge-1,"
                    " transform: {system_prompt_file: prompts/v2.txt}}\n")  # fmt: skip
    with pytest.raises(ScenarioError, match=r": judge.transform: unknown key"):
        load_scenario(str(path))
