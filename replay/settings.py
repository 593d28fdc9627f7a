"""The deciding half of a scenario: how to compare, how to segment, which gates.

These keys live in the scenario (declared before the run) and are stored with it, so
``replay report`` and ``replay gate`` re-decide a stored run the same way; ``replay
gate --gates FILE`` swaps the gates only. A schema file is read when the scenario is
loaded and its content stored, so a later edit of the file cannot change an old run.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

from replay.gates import Gate, SegmentSpec, parse_gates

Fail = Callable[[str, str], Exception]

_COMPARE_KEYS = ("json", "schema", "key_fields", "ignore_paths", "number_tolerance", "refusal_phrases", "policies")


@dataclass(frozen=True)
class DecisionSettings:
    compare: Any
    """A :class:`replay.compare.CompareSpec`."""
    gates: tuple[Gate, ...]
    segments: SegmentSpec
    on_inconclusive: str = "fail"

    def comparator_digests(self) -> dict[str, str]:
        """comparator name -> digest of the options it reads: what keys its stored measures."""
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
    import difflib

    if not isinstance(data, dict):
        raise fail("compare", "expected a mapping")
    for key in data:
        if key not in _COMPARE_KEYS:
            hint = difflib.get_close_matches(str(key), _COMPARE_KEYS, n=1)
            raise fail(f"compare.{key}", "unknown key" + (f" (did you mean 'compare.{hint[0]}'?)" if hint else ""))
    out = dict(data)
    if out.get("json", "auto") not in ("auto", "always", "never"):
        raise fail("compare.json", f"expected 'auto', 'always' or 'never', got {out['json']!r}")
    for key in ("key_fields", "ignore_paths", "refusal_phrases"):
        value = out.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise fail(f"compare.{key}", "expected a list of strings")
    tolerance = out.get("number_tolerance")
    if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0):
        raise fail("compare.number_tolerance", f"expected a non-negative number, got {tolerance!r}")
    out["policies"] = _check_policies(out.get("policies", {}), fail)
    if "schema" in out:
        out["schema"] = _load_schema(out["schema"], fail, base_dirs)
    return out


def _check_policies(data: Any, fail: Fail) -> list[dict[str, str]]:
    """``{name: regex}`` or ``[{name, pattern}]``; each regex must compile."""
    items = [{"name": k, "pattern": v} for k, v in data.items()] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise fail("compare.policies", "expected a mapping of name to regular expression")
    out = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"name", "pattern"} or not isinstance(item["pattern"], str):
            raise fail("compare.policies", f"expected name: regular expression, got {item!r}")
        try:
            re.compile(item["pattern"])
        except re.error as exc:
            raise fail(f"compare.policies.{item['name']}", f"invalid regular expression: {exc}") from None
        out.append({"name": str(item["name"]), "pattern": item["pattern"]})
    return out


def _load_schema(value: Any, fail: Fail, base_dirs: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(value, dict):
        schema = value
    elif isinstance(value, str):
        path = next((os.path.join(d, value) for d in base_dirs if os.path.exists(os.path.join(d, value))), None)
        if path is None:
            raise fail("compare.schema", f"no such schema file: {value}")
        try:
            from replay.yamlfile import load_yaml_file

            if path.endswith((".yaml", ".yml")):
                schema = load_yaml_file(path)
            else:
                with open(path, encoding="utf-8") as handle:
                    schema = json.load(handle)
        except (ValueError, OSError) as exc:
            raise fail("compare.schema", f"{path}: not a JSON Schema file: {exc}") from None
    else:
        raise fail("compare.schema", "expected a path to a JSON Schema file, or an inline schema")
    if not isinstance(schema, dict):
        raise fail("compare.schema", "a JSON Schema must be an object")
    if not isinstance(schema.get("$schema", ""), str):  # jsonschema would crash looking it up
        raise fail("compare.schema", f"$schema must be a meta-schema URI string, got {schema['$schema']!r}"[:200])
    from jsonschema import Draft202012Validator, SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        raise fail("compare.schema", f"invalid JSON Schema: {exc.message}") from None
    return schema


def decision_from(raw: dict[str, Any], gates_override: Any = None, fail: Fail | None = None) -> DecisionSettings:
    """Build settings from stored plain data (a run's scenario snapshot)."""
    from replay.compare import CompareSpec, Policy
    from replay.errors import ScenarioError

    fail = fail or (lambda key, message: ScenarioError(f"{key}: {message}"))
    compare = dict(raw.get("compare") or {})
    spec_args: dict[str, Any] = {}
    if "json" in compare:
        spec_args["json"] = compare["json"]
    if compare.get("schema") is not None:
        spec_args["schema"] = compare["schema"]
    if compare.get("key_fields") is not None:
        spec_args["key_fields"] = tuple(compare["key_fields"])
    if compare.get("ignore_paths"):
        spec_args["ignore_paths"] = tuple(compare["ignore_paths"])
    if compare.get("number_tolerance") is not None:
        spec_args["number_tolerance"] = float(compare["number_tolerance"])
    if compare.get("refusal_phrases") is not None:
        spec_args["refusal_phrases"] = tuple(compare["refusal_phrases"])
    if compare.get("policies"):
        spec_args["policies"] = tuple(Policy(p["name"], p["pattern"]) for p in compare["policies"])
    gates = parse_gates(raw.get("gates") if gates_override is None else gates_override, fail)
    segments = SegmentSpec(tuple(raw.get("segment_by") or ()), tuple(raw.get("critical_segments") or ()))
    return DecisionSettings(CompareSpec(**spec_args), gates, segments, raw.get("on_inconclusive", "fail"))


__all__ = ["DecisionSettings", "check_decision", "decision_from"]
