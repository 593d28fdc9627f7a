"""Scenario keys for the Anthropic provider: ``provider: anthropic``, ``default_max_tokens`` and cache prices."""

from __future__ import annotations

import pytest

from replay.errors import ScenarioError
from replay.scenario_file import load_scenario


def scenario(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nlogs: x.jsonl\n" + text)
    return str(path)


def test_an_anthropic_arm_starts_from_its_own_default_params(tmp_path):
    loaded = load_scenario(scenario(tmp_path, "candidate: {base_url: 'http://h/v1', model: claude, provider: anthropic, default_max_tokens: 512}\n"
                                              "prices: {claude: {input: 3, output: 15, cache_write: 3.75, cache_read: 0.3}}\n"))  # fmt: skip
    assert loaded.candidate.params == {"temperature": 0} and loaded.candidate.default_max_tokens == 512
    assert loaded.prices == {"claude": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.3}}


@pytest.mark.parametrize(
    "text, message",
    [("candidate: {base_url: 'http://h/v1', model: m, provider: anthropic, default_max_tokens: 0}\n",
      "candidate.default_max_tokens: expected an integer from 1 to 10,000,000, got 0"),
     ("candidate: {base_url: 'http://h/v1', model: m, default_max_tokens: many}\n",
      "candidate.default_max_tokens: expected an integer from 1 to 10,000,000, got 'many'"),
     ("candidate: {base_url: 'http://h/v1', model: m}\nprices: {m: {input: 1, cache_hit: 2}}\n",
      "prices.m: expected {input: USD per 1M tokens, output: USD per 1M tokens} (and optionally cache_write, cache_read)")],
)  # fmt: skip
def test_bad_keys_are_named(tmp_path, text, message):
    path = scenario(tmp_path, text)
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert str(raised.value) == f"{path}: {message}"
