"""Tool calls: did both arms call the same functions with the same arguments.

What "the same" means (names matched in order within each name, arguments as parsed JSON,
exactly) lives in :mod:`replay.toolcalls`, which the closed-loop session replay shares.
"""

from __future__ import annotations

from typing import Any

from replay.compare.base import CompareSpec, Side, register_comparator
from replay.toolcalls import arguments_equal, calls_agree, names_agree

__all__ = ["arguments_equal", "compare_tools"]


@register_comparator("tools")
def compare_tools(request: dict[str, Any], baseline: Side, candidate: Side, spec: CompareSpec) -> dict[str, Any]:
    b_calls = baseline.tool_calls if baseline.ok else None
    c_calls = candidate.tool_calls if candidate.ok else None
    out: dict[str, Any] = {
        "b_tool_calls": None if b_calls is None else len(b_calls),
        "c_tool_calls": None if c_calls is None else len(c_calls),
        "tools_agree": None,
        "tool_names_agree": None,
    }
    if b_calls is None or c_calls is None or not (b_calls or c_calls):
        return out
    out["tool_names_agree"] = names_agree(b_calls, c_calls)
    out["tools_agree"] = calls_agree(b_calls, c_calls)
    return out
