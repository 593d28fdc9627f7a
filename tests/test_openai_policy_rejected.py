"""Which sent parameter an error answer says the server refuses, in the words real servers use,
and the hint that names the patch dropping it; other errors name none."""

from __future__ import annotations

import pytest

from replay.progress import ParameterHints
from replay.providers.openai_policy import rejected_parameter, rejected_parameter_hint, rejected_parameters
from replay.types import Outcome

SENT = {"model": "m", "temperature": 0, "seed": 1234, "max_tokens": 50, "stream": True, "stream_options": {"include_usage": True}}


@pytest.mark.parametrize("status, message, expected", [
    (400, "Unrecognized request argument supplied: seed", "seed"),  # OpenAI, Azure OpenAI
    (400, "Unrecognized request argument supplied: stream_options", "stream_options"),
    (400, "[{'type': 'extra_forbidden', 'loc': ('body', 'stream_options'), 'msg': 'Extra inputs are not permitted',"
          " 'input': {'include_usage': True}}]", "stream_options"),  # vLLM (pydantic, extra=forbid)
    (400, 'Invalid JSON payload received. Unknown name "seed": Cannot find field.', "seed"),  # Gemini
    (400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "max_tokens"),
    (422, "stream_options: extra fields not permitted", "stream_options"),
    (400, "max_tokens is too large: 50000. This model supports at most 4096 completion tokens", None),  # a value, not a refusal
    (400, "Unrecognized request argument supplied: logit_bias", None),  # not sent
    (500, "Unrecognized request argument supplied: seed", None),  # not a refusal of the request
    (400, "unknown model 'm'", None),  # the model is the arm's own choice
    (400, None, None),
])  # fmt: skip
def test_the_refused_parameter_is_the_sent_one_the_message_names(status, message, expected):
    assert rejected_parameter(status, message, SENT) == expected


def test_the_hint_names_the_arm_and_the_patch_and_moves_a_renamed_parameter():
    assert rejected_parameter_hint("production", "seed", 400, "Unrecognized request argument\nsupplied: seed") == (
        "production: the endpoint rejects the parameter 'seed' (400: Unrecognized request argument supplied: seed);"
        " stop sending it with production.transform.patch: [{op: remove, path: /seed}]")  # fmt: skip
    renamed = rejected_parameter_hint("candidate", "max_tokens", 400, "Unsupported parameter: 'max_tokens' is not supported"
                                      " with this model. Use 'max_completion_tokens' instead.")  # fmt: skip
    assert renamed.endswith("candidate.transform.patch: [{op: move, from: /max_tokens, path: /max_completion_tokens}]")


def refused(arm, request_id="r1"):
    return Outcome(request_id, arm, "error", None, (), dict(SENT), http_status=400,
                   error_message="Unrecognized request argument supplied: seed")  # fmt: skip


def test_one_hint_per_arm_and_parameter_and_the_noise_floor_counts_as_production():
    hints = ParameterHints()
    said = [hints.hint(outcome) for outcome in (refused("candidate"), refused("candidate", "r2"), refused("noise"), refused("production"))]
    assert [line.split(":")[0] if line else None for line in said] == ["candidate", None, "production", None]


def test_every_refused_parameter_a_message_names_is_in_one_hint_in_the_messages_order():
    gemini = ('Invalid JSON payload received. Unknown name "stream_options": Cannot find field.\n'
              'Invalid JSON payload received. Unknown name "seed": Cannot find field.')  # fmt: skip
    assert rejected_parameters(400, gemini, SENT) == ["stream_options", "seed"]
    assert rejected_parameters(500, gemini, SENT) == []
    assert rejected_parameter_hint("candidate", ["stream_options", "seed"], 400, gemini).endswith(
        "stop sending them with candidate.transform.patch: [{op: remove, path: /stream_options}, {op: remove, path: /seed}]"
        " (usage is then counted locally and marked estimated)")  # fmt: skip
    hints = ParameterHints()
    both = Outcome("r1", "candidate", "error", None, (), dict(SENT), http_status=400, error_message=gemini)
    seed_only = Outcome("r2", "candidate", "error", None, (), dict(SENT), http_status=400,
                        error_message='Invalid JSON payload received. Unknown name "seed": Cannot find field.')  # fmt: skip
    assert "the parameters 'stream_options' and 'seed'" in hints.hint(both)
    assert hints.hint(seed_only) is None  # already said
