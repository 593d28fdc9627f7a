"""Latency, tokens and cost, passed through unchanged: the aggregator compares them over
the whole run (percentiles, means), where a per-pair difference would mean little."""

from __future__ import annotations

from typing import Any

from replay.compare.base import CompareSpec, Side, register_comparator


@register_comparator("usage")
def compare_usage(request: dict[str, Any], baseline: Side, candidate: Side, spec: CompareSpec) -> dict[str, Any]:
    return {
        "b_latency_ms": baseline.latency_ms,
        "c_latency_ms": candidate.latency_ms,
        "b_ttft_ms": baseline.ttft_ms,
        "c_ttft_ms": candidate.ttft_ms,
        "b_tokens_in": baseline.prompt_tokens,
        "c_tokens_in": candidate.prompt_tokens,
        "b_tokens_out": baseline.completion_tokens,
        "c_tokens_out": candidate.completion_tokens,
        "b_cost_usd": baseline.cost_usd,
        "c_cost_usd": candidate.cost_usd,
    }
