"""When two answers call the same tools: one definition for the comparator and the closed loop.

Calls are matched by name, in order within each name, rather than by position: parallel
tool calls come back in any order, but two calls to the same function are usually meant
in sequence (the first ``search`` then the second). Arguments are compared as parsed
JSON, key order aside, exactly (no tolerance): arguments are executed, and ``"qty": 2``
versus ``"qty": 2.0000001`` is for the tool to judge. Empty arguments count as ``{}``,
which some servers send for a function without parameters.

This module sits below the runner and the comparators alike (it imports nothing of
``replay``), so the closed-loop session replay and the ``tools`` comparator agree on what
"the same tool call" means.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Protocol, Sequence


class Call(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def arguments(self) -> str: ...


def json_equal(a: Any, b: Any) -> bool:
    """Exact JSON equality, key order aside; unlike ``==``, ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_arguments(arguments: str) -> tuple[bool, Any]:
    if not arguments.strip():
        return True, {}
    try:
        return True, json.loads(arguments, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None


def arguments_equal(a: str, b: str) -> bool:
    """Equal as parsed JSON; when either side does not parse, equal only as identical strings."""
    if a == b:
        return True
    a_ok, a_value = _parse_arguments(a)
    b_ok, b_value = _parse_arguments(b)
    if a_ok and b_ok:
        return json_equal(a_value, b_value)
    return False


def names_agree(first: Sequence[Call], second: Sequence[Call]) -> bool:
    return Counter(call.name for call in first) == Counter(call.name for call in second)


def match_calls(logged: Sequence[Call], candidate: Sequence[Call]) -> list[int] | None:
    """For each candidate call, the index of the logged call it is (the n-th call of a name
    pairs with the n-th of that name); None unless both make the same calls, arguments equal."""
    if not names_agree(logged, candidate):
        return None
    by_name: dict[str, list[int]] = {}
    for index, call in enumerate(logged):
        by_name.setdefault(call.name, []).append(index)
    taken: Counter[str] = Counter()
    matched = []
    for call in candidate:
        index = by_name[call.name][taken[call.name]]
        taken[call.name] += 1
        if not arguments_equal(logged[index].arguments, call.arguments):
            return None
        matched.append(index)
    return matched


def calls_agree(first: Sequence[Call], second: Sequence[Call]) -> bool:
    """Both answers make the same tool calls (none at all counts as agreeing)."""
    return match_calls(first, second) is not None
