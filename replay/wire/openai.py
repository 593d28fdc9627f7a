"""The OpenAI chat-completions wire format: a non-streamed body -> :class:`Completion`.

One parser for both ends: the shadow reader normalises a logged production answer with
it, and the OpenAI-compatible provider reads a live answer with it, so the runner and the
comparators only ever see provider-neutral completions.
"""

from __future__ import annotations

import math
from typing import Any

from replay.types import Completion, ToolCall, Usage, built


def usage_from(usage: dict[str, Any] | None) -> Usage:
    """Normalise the usage dialects (prompt/completion, input/output) into one record."""
    if not usage:
        return Usage()
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    return built(Usage, prompt_tokens=prompt, completion_tokens=completion, estimated=False)


def reported_cost(usage: dict[str, Any] | None) -> float | None:
    """The cost a gateway put in the usage (OpenRouter's ``cost``, in credits of one US dollar);
    with your own provider key (``is_byok``) the provider's charge (``cost_details.upstream_inference_cost``)
    is added to OpenRouter's fee. None when there is no usable number."""
    if not usage:
        return None
    cost = _amount(usage.get("cost"))
    details = usage.get("cost_details") if cost is not None and usage.get("is_byok") else None
    upstream = _amount(details.get("upstream_inference_cost")) if isinstance(details, dict) else None
    return cost + upstream if cost is not None and upstream is not None else cost


def _amount(value: Any) -> float | None:
    """A number of dollars: finite, not negative, not a bool or a string."""
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def completion_from_body(body: dict[str, Any], *, latency_ms: float | None, ttft_ms: float | None) -> Completion:
    """Read a non-streamed chat-completion body; the timing comes from whoever measured it
    (the provider's clock for a live answer, the log's fields for a logged one)."""
    choices = body.get("choices") or [{}]
    choice = choices[0] or {}
    message = choice.get("message") or {}
    tool_calls = tuple(
        built(
            ToolCall,
            id=call.get("id"),
            name=(call.get("function") or {}).get("name", ""),
            arguments=(call.get("function") or {}).get("arguments", ""),
        )
        for call in message.get("tool_calls") or ()
    )
    return built(
        Completion,
        text=message.get("content"),
        tool_calls=tool_calls,
        refusal=message.get("refusal"),
        finish_reason=choice.get("finish_reason"),
        usage=usage_from(body.get("usage")),
        model=body.get("model"),
        system_fingerprint=body.get("system_fingerprint"),
        ttft_ms=ttft_ms,
        latency_ms=latency_ms,
        response_id=body.get("id"),
        ratelimit_wait_s=None,
        cost_usd=reported_cost(body.get("usage")),
    )
