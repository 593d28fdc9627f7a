"""``provider: azure``: the deployment URL and its ``api-version``, the ``api-key`` header, Azure's
error and rate-limit shapes, and Azure's stream, against the local Azure server on 127.0.0.1."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
from click.testing import CliRunner

from azure_server import ANSWER, DEPLOYMENT, KEY, AzureServer
from conftest import NO_GATES, record, write_log
from replay.cli import cli
from replay.config import Arm
from replay.errors import InputError
from replay.providers import PROVIDERS
from replay.providers.azure import DEFAULT_API_VERSION, AzureOpenAIProvider, chat_url
from replay.providers.base import ProviderError


@pytest.mark.parametrize("base_url, expected", [
    ("https://res.openai.azure.com/openai/deployments/gpt4o",
     f"https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version={DEFAULT_API_VERSION}"),
    ("https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2025-01-01-preview",
     "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2025-01-01-preview"),
    ("https://res.openai.azure.com/openai/deployments/gpt4o?api-version=2024-06-01",
     "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01"),
    ("https://res.openai.azure.com/openai/v1", "https://res.openai.azure.com/openai/v1/chat/completions"),
])  # fmt: skip
def test_the_url_is_the_deployments_with_its_api_version(base_url, expected):
    assert chat_url(base_url) == expected


def provider(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    return PROVIDERS["azure"].from_arm("candidate", Arm(base_url="http://127.0.0.1:9/openai/deployments/d", model="gpt-4o-mini",
                                                         provider="azure"))  # fmt: skip


def test_a_missing_key_is_named_with_the_providers_default_variable():
    with pytest.raises(InputError, match=r"^candidate.api_key_env: the environment variable AZURE_OPENAI_API_KEY is not set"
                                         r" \(provider azure reads it unless api_key_env says otherwise\)$"):  # fmt: skip
        AzureOpenAIProvider.check_arm("candidate", Arm(base_url="http://127.0.0.1:9/openai/deployments/d", model="m", provider="azure"))


def test_a_429_waits_what_azures_message_says_and_a_404_stops_the_arm(monkeypatch):
    azure = provider(monkeypatch)
    limited = ProviderError("... exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds.",
                            status=429, code="429")  # fmt: skip
    plan = azure.retry_plan(limited, 1, 5, random.Random(0))
    assert (plan.retry, plan.delay_s, plan.hinted) == (True, 7.0, True)
    headed = ProviderError("Please retry after 7 seconds.", status=429, code="429", headers={"retry-after-ms": "1500"})
    assert azure.retry_plan(headed, 1, 5, random.Random(0)).delay_s == 1.5  # the header wins
    missing = ProviderError("The API deployment for this resource does not exist.", status=404, code="DeploymentNotFound")
    assert azure.retry_plan(missing, 1, 5, random.Random(0)).fatal


@pytest.fixture(scope="module")
def azure():
    with AzureServer() as server:
        yield server


def run(tmp_path, store_path, base_url, texts=("Where is parcel 7?",)):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", text) for i, text in enumerate(texts)])
    scenario = tmp_path / "azure.yaml"
    scenario.write_text(f"name: az\nlogs: {log}\ncandidate: {{provider: azure, base_url: '{base_url}', model: gpt-4o-mini}}\n")
    return CliRunner().invoke(cli, ["run", str(scenario), "--store", store_path, "--quiet", "--gates", NO_GATES])


def rows(store_path):
    db = sqlite3.connect(store_path)
    db.row_factory = sqlite3.Row
    return [dict(row) for row in db.execute("SELECT * FROM results WHERE arm = 'candidate' ORDER BY request_id")]


def test_a_run_sends_azure_shaped_requests_and_reads_azures_stream(azure, tmp_path, store_path, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    azure.requests.clear()
    result = run(tmp_path, store_path, f"http://127.0.0.1:{azure.port}/openai/deployments/{DEPLOYMENT}")
    assert result.exit_code == 0, result.output
    sent = azure.requests[-1]
    assert sent["path"] == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert sent["query"] == {"api-version": [DEFAULT_API_VERSION]}
    assert sent["headers"]["api-key"] == KEY and "authorization" not in sent["headers"]
    assert sent["body"]["stream_options"] == {"include_usage": True}
    [row] = rows(store_path)
    assert (row["status"], row["text"], row["finish_reason"], row["prompt_tokens"], row["completion_tokens"]) == (
        "ok", ANSWER, "stop", 12, 6)  # fmt: skip
    assert row["model"] == "gpt-4o-mini-2024-07-18"  # not the opening chunk's empty model
    assert KEY not in open(store_path, "rb").read().decode("latin-1")


def test_azures_429_is_retried_after_the_wait_its_message_gives(azure, tmp_path, store_path, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    result = run(tmp_path, store_path, f"http://127.0.0.1:{azure.port}/openai/deployments/{DEPLOYMENT}",
                 texts=("Where is parcel 8? [azure:429*1]",))  # fmt: skip
    assert result.exit_code == 0, result.output
    [row] = rows(store_path)
    assert (row["status"], row["attempts"]) == ("ok", 2)
    first = json.loads(row["attempts_json"])[0]
    assert (first["http_status"], first["retry_after_s"]) == (429, 1.0)


@pytest.mark.parametrize("deployment, key, expected", [
    ("no-such-deployment", KEY, "candidate endpoint answered 404: The API deployment for this resource does not exist."),
    (DEPLOYMENT, "wrong-key", "candidate endpoint answered 401: Access denied due to invalid subscription key"),
])  # fmt: skip
def test_a_wrong_deployment_or_key_stops_the_arm_with_exit_3(azure, tmp_path, store_path, monkeypatch, deployment, key, expected):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
    result = run(tmp_path, store_path, f"http://127.0.0.1:{azure.port}/openai/deployments/{deployment}")
    assert result.exit_code == 3
    assert expected in result.stderr and key not in result.stderr.replace("invalid subscription key", "")


def test_the_shipped_azure_scenario_loads_and_targets_its_deployment(monkeypatch):
    from conftest import ROOT
    from replay.runner import provider_for_arm
    from replay.scenario_file import load_scenario

    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    candidate = load_scenario(f"{ROOT}/scenarios/azure.yaml").candidate
    assert (candidate.provider, candidate.model) == ("azure", "gpt-4o-mini")
    assert provider_for_arm("candidate", candidate).url == (
        "https://my-resource.openai.azure.com/openai/deployments/gpt-4o-mini-prod/chat/completions?api-version=2024-10-21")
