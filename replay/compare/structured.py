"""Structured answers: JSON validity, schema validity and key-field agreement.

Validity is strict (see :func:`replay.compare.values.parse_json`): an app that parses the
answer with ``json.loads`` breaks on a fenced answer, so a fence is a format failure.

Key fields are compared when both answers parse as JSON and either JSON is required or
both answers are objects or arrays (so a plain-text "42" against "43" is left to the text
measures). With ``key_fields`` unset every leaf path of the baseline's JSON is compared,
so what the candidate adds is not counted here (the text similarity still sees it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from replay.compare import options as opt
from replay.compare.base import JSON_MODES, CompareSpec, Side, register_comparator
from replay.compare.paths import MISSING, Path, expand, is_ignored, leaf_paths, lookup, parse_path, render_path
from replay.compare.schemas import compile_schema, validate
from replay.compare.values import field_equal, looks_like_json_container, parse_json

JSON_FORMATS = frozenset({"json_object", "json_schema"})
_NOT_PARSED: tuple[bool, Any] = (False, None)


def _response_format(request: dict[str, Any]) -> dict[str, Any]:
    value = request.get("response_format") if isinstance(request, dict) else None
    return value if isinstance(value, dict) else {}


def json_required(spec: CompareSpec, request: dict[str, Any]) -> bool:
    """``auto`` requires JSON when the request asked for it, or when the scenario declares a
    schema: an answer cannot match a schema without being JSON."""
    if spec.json != "auto":
        return spec.json == "always"
    return spec.schema is not None or _response_format(request).get("type") in JSON_FORMATS


def request_schema(spec: CompareSpec, request: dict[str, Any]) -> dict[str, Any] | None:
    """The scenario's schema, else the one in ``response_format.json_schema.schema``."""
    if spec.schema is not None:
        return spec.schema
    response_format = _response_format(request)
    if response_format.get("type") != "json_schema":
        return None
    wrapper = response_format.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    return schema if isinstance(schema, dict) else None


@lru_cache(maxsize=256)
def _patterns(paths: tuple[str, ...]) -> tuple[Path, ...]:
    return tuple(parse_path(path) for path in paths)


OPTIONS = opt.declare_options(
    opt.CompareOption("json", opt.choice("json", JSON_MODES)),
    opt.CompareOption("key_fields", opt.string_list("key_fields"), tuple),
    opt.CompareOption("ignore_paths", opt.string_list("ignore_paths"), tuple),
    opt.CompareOption("number_tolerance", opt.non_negative_number("number_tolerance"), float),
    opt.CompareOption("schema", opt.schema),
)
"""``compare.*`` keys this comparator reads (checked in this order)."""


@register_comparator(
    "structured",
    options=OPTIONS,
    measures=("json_required", "b_json_valid", "c_json_valid", "schema_required", "b_schema_valid", "c_schema_valid",
              "c_schema_error", "fields", "field_accuracy", "field_mismatches"),
)  # fmt: skip
def compare_structured(request: dict[str, Any], baseline: Side, candidate: Side, spec: CompareSpec) -> dict[str, Any]:
    required = json_required(spec, request)
    schema = request_schema(spec, request)
    both_ok = baseline.ok and candidate.ok
    wanted = required or schema is not None
    # Plain prose skips parsing: JSON is only wanted for validity or for a pair of JSON containers.
    b_parsed = c_parsed = _NOT_PARSED
    if baseline.ok and (wanted or _container_pair(both_ok, baseline, candidate)):
        b_parsed = parse_json(baseline.text)
    if candidate.ok and (wanted or b_parsed[0]):
        c_parsed = parse_json(candidate.text)
    out: dict[str, Any] = {
        "json_required": required,
        "b_json_valid": b_parsed[0] if required and baseline.ok else None,
        "c_json_valid": c_parsed[0] if required and candidate.ok else None,
        "schema_required": schema is not None,
        "b_schema_valid": None,
        "c_schema_valid": None,
        "c_schema_error": None,
    }
    if schema is not None:
        compiled = compile_schema(schema)
        if baseline.ok:
            out["b_schema_valid"] = validate(compiled, b_parsed[1])[0] if b_parsed[0] else False
        if candidate.ok:
            if c_parsed[0]:
                out["c_schema_valid"], out["c_schema_error"] = validate(compiled, c_parsed[1], explain=True)
            else:
                out["c_schema_valid"], out["c_schema_error"] = False, "not valid JSON"
    fields = None
    if both_ok and b_parsed[0] and c_parsed[0]:
        b_value, c_value = b_parsed[1], c_parsed[1]
        if wanted or (isinstance(b_value, (dict, list)) and isinstance(c_value, (dict, list))):
            fields = compare_fields(b_value, c_value, spec)
    out["fields"] = fields
    out["field_accuracy"] = (sum(fields.values()) / len(fields)) if fields else None
    out["field_mismatches"] = None if fields is None else [path for path, same in fields.items() if not same]
    return out


def _container_pair(both_ok: bool, baseline: Side, candidate: Side) -> bool:
    return both_ok and looks_like_json_container(baseline.text) and looks_like_json_container(candidate.text)


def compare_fields(b_value: Any, c_value: Any, spec: CompareSpec) -> dict[str, bool]:
    """``{path: equal}`` for each compared path; a path absent from both documents is skipped,
    one absent from a single side is a mismatch."""
    ignore = _patterns(spec.ignore_paths)
    if spec.key_fields is None:
        paths = leaf_paths(b_value, ignore)
    else:
        paths = []
        seen: set[Path] = set()
        for pattern in _patterns(spec.key_fields):
            for path in expand(pattern, b_value, c_value):
                if path not in seen and not (ignore and is_ignored(path, ignore)):
                    seen.add(path)
                    paths.append(path)
    fields: dict[str, bool] = {}
    tolerance = spec.number_tolerance
    for path in paths:
        b_field, c_field = lookup(b_value, path), lookup(c_value, path)
        if b_field is MISSING and c_field is MISSING:
            continue
        fields[render_path(path)] = (
            b_field is not MISSING and c_field is not MISSING and field_equal(b_field, c_field, tolerance, ignore, path)
        )
    return fields
