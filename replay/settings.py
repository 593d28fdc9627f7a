"""The deciding half of a scenario: how to compare, how to segment, which gates.

These keys live in the scenario (declared before the run) and are stored with it, so
``replay report`` and ``replay gate`` re-decide a stored run the same way; ``replay
gate --gates FILE`` swaps the gates only. A schema file is read when the scenario is
loaded and its content stored, so a later edit of the file cannot change an old run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from replay.gates import Gate, SegmentSpec, parse_gates

Fail = Callable[[str, str], Exception]

@dataclass(frozen=True)
class DecisionSettings:
    compare: Any
    """A :class:`replay.compare.CompareSpec`."""
    gates: tuple[Gate, ...]
    segments: SegmentSpec
    on_inconclusive: str = "fail"

    def comparator_digests(self) -> dict[str, str]:
        """What the stored comparisons are keyed by (:func:`replay.compare.comparator_digests`)."""
        from replay.compare import comparator_digests

        return comparator_digests(self.compare)

    def compare_digest(self) -> str:
        """The digest of every comparator's: unchanged options keep stored comparisons valid."""
        import hashlib

        blob = json.dumps(self.comparator_digests(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def check_decision(top: dict[str, Any], fail: Fail, base_dirs: tuple[str, ...]) -> dict[str, Any]:
    """Validate the deciding keys of a scenario; return them as plain data to store."""
    raw: dict[str, Any] = {}
    if "compare" in top:
        raw["compare"] = _check_compare(top["compare"], fail, base_dirs)
    if "gates" in top:
        parse_gates(top["gates"], fail)  # validates; stored as written
        raw["gates"] = top["gates"]
    inconclusive = top.get("on_inconclusive", "fail")
    if inconclusive not in ("fail", "pass"):
        raise fail("on_inconclusive", f"expected 'fail' or 'pass', got {inconclusive!r}")
    raw["on_inconclusive"] = inconclusive
    by = top.get("segment_by", [])
    by = [by] if isinstance(by, str) else by
    if not isinstance(by, list) or not all(isinstance(key, str) for key in by):
        raise fail("segment_by", "expected a metadata key or a list of them")
    raw["segment_by"] = by
    critical = top.get("critical_segments", [])
    if not isinstance(critical, list) or not all(isinstance(item, (str, int)) for item in critical):
        raise fail("critical_segments", "expected a list of segments such as [billing] or ['category=billing']")
    critical = [str(item) for item in critical]
    for item in critical:
        if "=" not in item and not by:
            raise fail("critical_segments", f"{item!r}: write key=value, or set segment_by")
    raw["critical_segments"] = critical
    for i, gate in enumerate(parse_gates(raw.get("gates"), fail)):
        if gate.segment and "=" not in gate.segment and not by:
            raise fail(f"gates[{i}].segment", f"{gate.segment!r}: write key=value, or set segment_by")
    try:  # the comparison settings check their own paths and patterns: fail now, not at report time
        decision_from(raw, fail=fail)
    except ValueError as exc:
        raise fail("compare", str(exc)) from None
    return raw


def _check_compare(data: Any, fail: Fail, base_dirs: tuple[str, ...]) -> dict[str, Any]:
    """Check each key with the option its comparator declares (:data:`replay.compare.COMPARE_OPTIONS`)."""
    import difflib

    from replay.compare import COMPARE_OPTIONS

    if not isinstance(data, dict):
        raise fail("compare", "expected a mapping")
    for key in data:
        if key not in COMPARE_OPTIONS:
            hint = difflib.get_close_matches(str(key), list(COMPARE_OPTIONS), n=1)
            raise fail(f"compare.{key}", "unknown key" + (f" (did you mean 'compare.{hint[0]}'?)" if hint else ""))
    out = dict(data)
    for name, option in COMPARE_OPTIONS.items():
        if name in out:
            out[name] = option.check(out[name], fail, base_dirs)
        elif option.absent is not None:
            out[name] = option.check(option.absent, fail, base_dirs)
    return out


def decision_from(raw: dict[str, Any], gates_override: Any = None, fail: Fail | None = None) -> DecisionSettings:
    """Build settings from stored plain data (a run's scenario snapshot)."""
    from replay.compare import COMPARE_OPTIONS, CompareSpec
    from replay.errors import ScenarioError

    fail = fail or (lambda key, message: ScenarioError(f"{key}: {message}"))
    compare = dict(raw.get("compare") or {})
    spec_args = {name: option.to_spec(compare[name]) for name, option in COMPARE_OPTIONS.items()
                 if compare.get(name) is not None}  # fmt: skip
    gates = parse_gates(raw.get("gates") if gates_override is None else gates_override, fail)
    segments = SegmentSpec(tuple(raw.get("segment_by") or ()), tuple(raw.get("critical_segments") or ()))
    return DecisionSettings(CompareSpec(**spec_args), gates, segments, raw.get("on_inconclusive", "fail"))


__all__ = ["DecisionSettings", "check_decision", "decision_from"]
