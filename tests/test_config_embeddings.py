"""The scenario's ``embeddings`` key: an endpoint parsed as an arm is, with located one-line errors."""

import pytest

from replay.config import EMBEDDINGS_BATCH_SIZE
from replay.errors import ScenarioError
from replay.scenario_file import load_scenario, scenario_from_snapshot
from test_config import scenario_file, with_base

EMBED = "embeddings: {base_url: http://127.0.0.1:9/v1/, model: text-embedding-3-small, api_key_env: EMBED_KEY}"


def test_an_endpoint_is_parsed_like_an_arm_with_its_own_batch_size(tmp_path):
    scenario = load_scenario(scenario_file(tmp_path, with_base(EMBED + "\nlimits: {rpm: 60}")))
    embeddings = scenario.embeddings
    assert embeddings.batch_size == EMBEDDINGS_BATCH_SIZE == 64
    endpoint = embeddings.endpoint
    assert (endpoint.base_url, endpoint.model, endpoint.api_key_env) == ("http://127.0.0.1:9/v1", "text-embedding-3-small", "EMBED_KEY")
    assert endpoint.params == {} and endpoint.stream is False and endpoint.provider == "openai"
    assert endpoint.limits.rpm == 60  # the top-level limits, as for an arm


def test_own_limits_and_batch_size_win(tmp_path):
    text = with_base("embeddings: {base_url: http://127.0.0.1:9/v1, model: e, batch_size: 16,"
                     " limits: {concurrency: 2, max_attempts: 2, timeout_s: 5}}")  # fmt: skip
    embeddings = load_scenario(scenario_file(tmp_path, text)).embeddings
    assert embeddings.batch_size == 16
    assert (embeddings.endpoint.limits.concurrency, embeddings.endpoint.limits.max_attempts) == (2, 2)


@pytest.mark.parametrize(
    "extra, message",
    [
        ("embeddings: {base_url: http://h/v1, model: e, batchsize: 8}",
         "embeddings.batchsize: unknown key (did you mean 'embeddings.batch_size'?)"),
        ("embeddings: {base_url: http://h/v1, model: e, params: {dimensions: 8}}", "embeddings.params: unknown key"),
        ("embeddings: {base_url: http://h/v1, model: e, batch_size: 0}",
         "embeddings.batch_size: expected an integer from 1 to 2,048, got 0"),
        ("embeddings: {base_url: http://h/v1, model: e, batch_size: 4096}",
         "embeddings.batch_size: expected an integer from 1 to 2,048, got 4096"),
        ("embeddings: {model: e}", "embeddings.base_url: missing required key"),
        ("embeddings: {base_url: ftp://h, model: e}", "embeddings.base_url: expected an http(s) URL, got 'ftp://h'"),
        ("embeddings: {base_url: http://h/v1, model: e, provider: cohere}",
         "embeddings.provider: expected one of 'openai', got 'cohere'"),
        ("embeddings: {base_url: http://h/v1, model: e, limits: {rmp: 5}}",
         "embeddings.limits.rmp: unknown key (did you mean 'embeddings.limits.rpm'?)"),
        ("embeddings: {base_url: http://h/v1, model: e, headers: {Authorization: Bearer sk-1}}",
         "embeddings.headers.Authorization: write secrets as ${ENV_VAR} (or use api_key_env), never in the file"),
        ("embedings: {base_url: http://h/v1, model: e}", "embedings: unknown key (did you mean 'embeddings'?)"),
        ("gates: [{metric: semantic_similarity, min: 0.8}]",
         "gates[0].metric: semantic_similarity needs an embeddings endpoint: add the 'embeddings' key"),
    ],
)
def test_bad_embeddings_keys_name_the_file_and_key(tmp_path, extra, message):
    path = scenario_file(tmp_path, with_base(extra))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(error.value) == f"{path}: {message}"


def test_a_semantic_gate_with_an_endpoint_is_accepted(tmp_path):
    text = with_base(EMBED + "\ngates: [{metric: semantic_similarity, min: 0.8}, {metric: semantic_similarity_p10, min: 0.5}]")
    assert load_scenario(scenario_file(tmp_path, text)).decision["gates"][1]["metric"] == "semantic_similarity_p10"


def test_the_snapshot_round_trips_and_a_scenario_without_embeddings_keeps_its_digest(tmp_path):
    with_embeddings = load_scenario(scenario_file(tmp_path, with_base(EMBED)))
    assert scenario_from_snapshot(with_embeddings.snapshot()) == with_embeddings
    plain = load_scenario(scenario_file(tmp_path, with_base("")))
    assert "embeddings" not in plain.snapshot()
    assert scenario_from_snapshot(plain.snapshot()) == plain
    assert with_embeddings.digest() != plain.digest()
