"""Errors and finish reasons: did each arm answer, and how did its answer end."""

from __future__ import annotations

from typing import Any

from replay.compare.base import CompareSpec, Side, register_comparator


@register_comparator("errors")
def compare_errors(request: dict[str, Any], baseline: Side, candidate: Side, spec: CompareSpec) -> dict[str, Any]:
    """``*_error_class`` is None for a side that answered, whatever stale value the row holds."""
    return {
        "b_error": not baseline.ok,
        "c_error": not candidate.ok,
        "b_timeout": not baseline.ok and baseline.error_class == "timeout",
        "c_timeout": not candidate.ok and candidate.error_class == "timeout",
        "b_error_class": None if baseline.ok else baseline.error_class,
        "c_error_class": None if candidate.ok else candidate.error_class,
    }


@register_comparator("finish")
def compare_finish(request: dict[str, Any], baseline: Side, candidate: Side, spec: CompareSpec) -> dict[str, Any]:
    """``truncated`` is a regression only: the candidate hit its token limit where the baseline did not."""
    both = baseline.ok and candidate.ok
    b_finish = baseline.finish_reason if baseline.ok else None
    c_finish = candidate.finish_reason if candidate.ok else None
    return {
        "b_finish": b_finish,
        "c_finish": c_finish,
        "finish_changed": (b_finish != c_finish) if both else None,
        "truncated": (c_finish == "length" and b_finish != "length") if both else None,
    }
