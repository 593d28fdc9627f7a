"""``compare.*`` keys are declared with the comparators that read them; the scenario loader knows none itself."""

from dataclasses import fields

import pytest

from replay.compare import COMPARATOR_INFO, COMPARE_OPTIONS, CompareOption, CompareSpec
from replay.compare.options import string_list
from replay.errors import ScenarioError
from replay.scenario_file import load_scenario
from replay.settings import check_decision, decision_from

BASE = "name: t\nlogs: x.jsonl\ncandidate: {base_url: 'http://127.0.0.1:9/v1', model: m}\n"


def load(tmp_path, compare):
    path = tmp_path / "s.yaml"
    path.write_text(BASE + f"compare: {compare}\n")
    return str(path), lambda: load_scenario(str(path))


def test_every_spec_field_is_an_option_of_exactly_one_comparator():
    owners = {name: [c for c, info in COMPARATOR_INFO.items() if name in info.options] for name in COMPARE_OPTIONS}
    assert set(COMPARE_OPTIONS) == {field.name for field in fields(CompareSpec)}
    assert owners == {"json": ["structured"], "key_fields": ["structured"], "ignore_paths": ["structured"],
                      "number_tolerance": ["structured"], "schema": ["structured"],
                      "refusal_phrases": ["safety"], "policies": ["safety"]}  # fmt: skip


def test_an_unknown_key_names_it_and_suggests_a_declared_one(tmp_path):
    path, loading = load(tmp_path, "{ignore_path: [id]}")
    with pytest.raises(ScenarioError) as info:
        loading()
    assert str(info.value) == f"{path}: compare.ignore_path: unknown key (did you mean 'compare.ignore_paths'?)"


def test_an_option_a_comparator_declares_is_a_known_key_and_reaches_the_spec(monkeypatch):
    """What a plugin comparator declares is checked by the loader like a built-in option
    (its value must still be a CompareSpec field to reach the comparators: checked here only)."""
    fail = lambda key, message: ScenarioError(f"{key}: {message}")  # noqa: E731
    option = CompareOption("stop_words", string_list("stop_words"), tuple)
    monkeypatch.setitem(COMPARE_OPTIONS, "stop_words", option)
    with pytest.raises(ScenarioError, match=r"^compare.stop_word: unknown key \(did you mean 'compare.stop_words'\?\)$"):
        check_decision({"compare": {"stop_word": ["a"]}}, fail, (".",))
    with pytest.raises(ScenarioError, match=r"^compare.stop_words: expected a list of strings$"):
        check_decision({"compare": {"stop_words": "a"}}, fail, (".",))


@pytest.mark.parametrize(("compare", "expected"), [
    ({}, CompareSpec()),
    ({"json": "never", "key_fields": ["a"], "ignore_paths": [], "number_tolerance": 1, "refusal_phrases": ["no"],
      "policies": [{"name": "card", "pattern": "[0-9]{16}"}]},
     CompareSpec(json="never", key_fields=("a",), number_tolerance=1.0, refusal_phrases=("no",),
                 policies=({"name": "card", "pattern": "[0-9]{16}"},))),
])  # fmt: skip
def test_stored_options_become_the_spec_the_comparators_read(compare, expected):
    assert decision_from({"compare": compare}).compare == expected
