"""What the OpenAI-compatible provider reads from gateways and other compatible endpoints: their
error bodies (LiteLLM's string codes, OpenRouter's numeric ones and metadata, Google's JSON list),
which of their answers stop an arm, a reset sent as a Unix time, a cost they report, SSE comment
lines, and model names with a vendor prefix in the price table."""

from __future__ import annotations

import json
import random
import time

import pytest

from replay.config import Arm
from replay.pricing import PriceTable, vendor_names
from replay.providers import PROVIDERS
from replay.providers.openai_compat import _error_details, header_cost
from replay.providers.openai_policy import FLAGGED, plan_retry, ratelimit_reset
from replay.providers.stream import StreamAssembler
from replay.types import Usage
from replay.wire.openai import completion_from_body, reported_cost


@pytest.mark.parametrize("body, expected", [
    ({"error": {"message": "litellm.RateLimitError: limit", "type": "throttling_error", "param": None, "code": "429"}},
     ("litellm.RateLimitError: limit", "throttling_error")),  # LiteLLM: the code only repeats the status
    ({"error": {"message": "Budget has been exceeded!", "type": "budget_exceeded", "param": None, "code": "400"}},
     ("Budget has been exceeded!", "budget_exceeded")),
    ({"error": {"code": 402, "message": "Insufficient credits", "metadata": {"limit_source": "openrouter_credits"}}},
     ("Insufficient credits", "402")),  # OpenRouter: nothing but the number
    ({"error": {"code": 403, "message": "Your input was flagged", "metadata": {"reasons": ["harassment"], "flagged_input": "..."}}},
     ("Your input was flagged", FLAGGED)),
    ([{"error": {"code": 400, "message": 'Unknown name "seed": Cannot find field.', "status": "INVALID_ARGUMENT"}}],
     ('Unknown name "seed": Cannot find field.', "INVALID_ARGUMENT")),  # Gemini's list of one error
    ({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}},
     ("You exceeded your current quota", "insufficient_quota")),  # OpenAI's own, unchanged
    ({"error": {"code": "429", "message": "Please retry after 6 seconds."}}, ("Please retry after 6 seconds.", "429")),  # Azure
])  # fmt: skip
def test_error_bodies_of_gateways_give_their_message_and_what_kind_of_error(body, expected):
    assert _error_details(json.dumps(body)) == expected


@pytest.mark.parametrize("status, code, fatal", [
    (402, "402", True),  # OpenRouter's insufficient credits: every request would meet it
    (400, "budget_exceeded", True),  # a LiteLLM proxy's spent budget
    (403, FLAGGED, False),  # one input flagged by OpenRouter's moderation: that request's error
    (403, "permission_error", True),
    (400, "INVALID_ARGUMENT", False),
    (429, "throttling_error", False),
])  # fmt: skip
def test_which_gateway_answers_stop_the_arm(status, code, fatal):
    plan = plan_retry(attempt=1, max_attempts=3, status=status, error_code=code, rng=random.Random(0))
    assert plan.fatal is fatal
    if status == 429:
        assert plan.retry


def test_a_reset_sent_as_a_unix_time_is_counted_from_now_and_a_successful_answer_waits_at_most_the_cap():
    reset = ratelimit_reset({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": str(int(time.time()) + 30)})
    assert 28 <= reset <= 30
    provider = PROVIDERS["openai"].from_arm("candidate", Arm(base_url="http://127.0.0.1:9/v1", model="m"))
    far = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "100000s"}
    assert provider._ratelimit_wait(far) == 300.0  # the arm pauses, it does not stop for a day


@pytest.mark.parametrize("usage, expected", [
    ({"prompt_tokens": 10, "completion_tokens": 2, "cost": 0.00087}, 0.00087),
    ({"cost": 0.0001, "is_byok": True, "cost_details": {"upstream_inference_cost": 0.002}}, 0.0021),  # own key: fee + provider
    ({"cost": 0.0001, "is_byok": False, "cost_details": {"upstream_inference_cost": 0.002}}, 0.0001),
    ({"cost": "0.1"}, None), ({"cost": -1}, None), ({"cost": float("nan")}, None), ({"cost": True}, None), (None, None),
])  # fmt: skip
def test_the_cost_a_gateway_puts_in_the_usage(usage, expected):
    assert reported_cost(usage) == (pytest.approx(expected) if expected is not None else None)


def test_a_whole_answer_and_a_stream_carry_the_reported_cost_and_sse_comments_are_skipped():
    body = {"model": "anthropic/claude-3.5-haiku", "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "cost": 0.0002}}  # fmt: skip
    assert completion_from_body(body, latency_ms=1.0, ttft_ms=1.0).cost_usd == 0.0002
    stream = StreamAssembler(0.0)
    chunk = {"id": "gen-1", "model": "anthropic/claude-3.5-haiku", "choices": [{"index": 0, "delta": {"content": "Hello"}}]}
    end = {"id": "gen-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {"id": "gen-1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "cost": 0.0002}}
    raw = b"".join([b": OPENROUTER PROCESSING\n\n", b"data: " + json.dumps(chunk).encode() + b"\n\n",
                    b": OPENROUTER PROCESSING\n\n", b"data: " + json.dumps(end).encode() + b"\n\n",
                    b"data: " + json.dumps(usage).encode() + b"\n\n", b": OPENROUTER PROCESSING\n\n", b"data: [DONE]\n\n"])  # fmt: skip
    for i in range(0, len(raw), 7):  # lines split across reads, comments among them
        stream.feed_bytes(raw[i:i + 7], 1.0)
    result = stream.result(2.0)
    assert (result.text, result.finish_reason, result.usage, result.cost_usd) == ("Hello", "stop", Usage(3, 1), 0.0002)
    assert stream.chunks == 3


@pytest.mark.parametrize("value, expected", [("0.000512", 0.000512), ("None", None), ("", None), ("inf", None), ("-0.1", None)])
def test_litellms_cost_header(value, expected):
    assert header_cost(value) == expected


@pytest.mark.parametrize("model, names", [
    ("anthropic/claude-3.5-haiku", ["claude-3-5-haiku", "claude-3.5-haiku"]),
    ("openai/gpt-4o-mini:nitro", ["gpt-4o-mini"]),
    ("openai/gpt-4.1-mini", ["gpt-4-1-mini", "gpt-4.1-mini"]),
    ("gpt-4o", ["gpt-4o"]),
])  # fmt: skip
def test_a_gateways_model_name_stands_for_the_vendors(model, names):
    assert vendor_names(model) == names


def test_the_price_table_resolves_prefixed_names_to_the_right_model_or_says_none():
    table = PriceTable({"google/gemini-2.5-flash": {"input": 0.3, "output": 2.5}})
    assert table.lookup("anthropic/claude-3.5-haiku") == table.lookup("claude-3-5-haiku")
    assert table.lookup("anthropic/claude-opus-4.5") == table.lookup("claude-opus-4-5") != table.lookup("claude-opus-4")
    assert table.lookup("openai/gpt-4.1-mini") == table.lookup("gpt-4.1-mini")
    assert table.lookup("openai/gpt-4o-mini:free") == table.lookup("gpt-4o-mini")
    assert table.lookup("meta-llama/llama-3.1-8b-instruct") is None  # unpriced: the run warns, the cost is unknown
    assert table.cost_of("google/gemini-2.5-flash", Usage(1_000_000, 0)) == pytest.approx(0.3)  # a scenario's own entry
