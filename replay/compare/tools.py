"""Tool calls: did both arms call the same functions with the same arguments.

Calls are matched by name, in order within each name, rather than by position: parallel
tool calls come back in any order, but two calls to the same function are usually meant
in sequence (the first ``search`` then the second). Arguments are compared as parsed
JSON, key order aside, exactly (no tolerance): arguments are executed, and ``"qty": 2``
versus ``"qty": 2.0000001`` is for the tool to judge. Empty arguments count as ``{}``,
which some servers send for a function without parameters.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from replay.compare.base import CompareSpec, Side, register_comparator
from replay.compare.values import json_equal, parse_json
from replay.types import ToolCall


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
    names_agree = Counter(call.name for call in b_calls) == Counter(call.name for call in c_calls)
    out["tool_names_agree"] = names_agree
    out["tools_agree"] = names_agree and _arguments_agree(b_calls, c_calls)
    return out


def _arguments_agree(b_calls: tuple[ToolCall, ...], c_calls: tuple[ToolCall, ...]) -> bool:
    """Same names assumed: pair the n-th call of each name on both sides and compare arguments."""
    by_name: dict[str, list[str]] = {}
    for call in c_calls:
        by_name.setdefault(call.name, []).append(call.arguments)
    taken: Counter[str] = Counter()
    for call in b_calls:
        other = by_name[call.name][taken[call.name]]
        taken[call.name] += 1
        if not arguments_equal(call.arguments, other):
            return False
    return True


def arguments_equal(a: str, b: str) -> bool:
    """Equal as parsed JSON; when either side does not parse, equal only as identical strings."""
    if a == b:
        return True
    a_ok, a_value = _parse_arguments(a)
    b_ok, b_value = _parse_arguments(b)
    if a_ok and b_ok:
        return json_equal(a_value, b_value)
    return False


def _parse_arguments(arguments: str) -> tuple[bool, Any]:
    if not arguments.strip():
        return True, {}
    return parse_json(arguments)
