"""Every scenario shipped in ``scenarios/`` loads, and ``replay plan`` reads it without sending
anything; the endpoint scenarios target what their comments say."""

from __future__ import annotations

import glob
import os

import pytest
from click.testing import CliRunner

from conftest import ROOT
from replay.cli import cli
from replay.pricing import PriceTable
from replay.providers.gemini import DEFAULT_BASE_URL
from replay.runner import provider_for_arm
from replay.scenario_file import load_scenario

KEY = "AIza" + "SyTest0123456789abcdefghijklmnopqr"  # built: no tracked file holds a key-shaped string
BUNDLED = sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.yaml")))


def test_the_endpoint_scenarios_are_bundled():
    names = {os.path.basename(path) for path in BUNDLED}
    assert {"azure.yaml", "litellm-proxy.yaml", "openrouter.yaml", "local-llama.yaml", "gemini.yaml"} <= names


@pytest.mark.parametrize("path", BUNDLED, ids=os.path.basename)
def test_a_bundled_scenario_loads_and_plans(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the scenarios name their logs from the repository's root
    scenario = load_scenario(path)
    assert scenario.candidate.model
    result = CliRunner().invoke(cli, ["plan", path])
    assert result.exit_code == 0, result.output + result.stderr
    assert "(nothing sent)" in result.output


def load(name):
    return load_scenario(os.path.join(ROOT, "scenarios", name))


def test_the_gemini_scenario_needs_no_url_and_reads_its_key_from_gemini_api_key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    candidate = load("gemini.yaml").candidate
    assert (candidate.provider, candidate.base_url, candidate.api_key_env) == ("gemini", DEFAULT_BASE_URL, None)
    assert "seed" not in candidate.params and candidate.params["temperature"] == 0
    provider = provider_for_arm("candidate", candidate)
    assert provider.url == "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"
    assert provider.scrubber.text(f"key {KEY}") == "key [REDACTED]"


def test_the_gateway_scenarios_send_their_headers_and_price_their_models(monkeypatch):
    openrouter = load("openrouter.yaml")
    assert openrouter.candidate.headers == {"HTTP-Referer": "https://support.example.com", "X-Title": "support-bot-shadow"}
    assert PriceTable(openrouter.prices).lookup(openrouter.candidate.model) is not None
    local = load("local-llama.yaml").candidate
    assert local.api_key_env is None and local.base_url.endswith("/v1")
    litellm = load("litellm-proxy.yaml").candidate
    assert (litellm.api_key_env, litellm.stream) == ("LITELLM_API_KEY", False)
