"""JSON Schema validators, compiled once per schema.

A scenario's schema is the same dict for every pair, so it hits the identity cache; a
schema carried in each request is a fresh dict per row, so it falls back to a cache keyed
by its canonical JSON text. Both caches are bounded and simply cleared when full.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

CACHE_SIZE = 512
MESSAGE_CHARS = 200


@dataclass(frozen=True)
class Compiled:
    validator: Any | None
    error: str | None = None
    """Why the schema itself cannot be used; then ``validator`` is None."""


_BY_ID: dict[int, tuple[dict[str, Any], Compiled]] = {}
_BY_VALUE: dict[str, Compiled] = {}


def compile_schema(schema: dict[str, Any]) -> Compiled:
    hit = _BY_ID.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    key = json.dumps(schema, sort_keys=True, default=str)
    compiled = _BY_VALUE.get(key)
    if compiled is None:
        compiled = _compile(schema)
        if len(_BY_VALUE) >= CACHE_SIZE:
            _BY_VALUE.clear()
        _BY_VALUE[key] = compiled
    if len(_BY_ID) >= CACHE_SIZE:
        _BY_ID.clear()
    _BY_ID[id(schema)] = (schema, compiled)  # holding the dict keeps its id from being reused
    return compiled


def _compile(schema: dict[str, Any]) -> Compiled:
    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return Compiled(cls(schema))
    except jsonschema.SchemaError as exc:
        return Compiled(None, f"the schema itself is invalid: {_short(exc.message)}")


def validate(compiled: Compiled, instance: Any, *, explain: bool = False) -> tuple[bool | None, str | None]:
    """``(valid, first error)``; ``(None, why)`` when the schema cannot be applied (bad schema, unresolvable $ref)."""
    if compiled.validator is None:
        return None, compiled.error
    try:
        if compiled.validator.is_valid(instance):
            return True, None
        if not explain:
            return False, None
        error = best_match(compiled.validator.iter_errors(instance))
        return False, _short(f"{error.json_path}: {error.message}") if error is not None else None
    except Exception as exc:  # referencing.Unresolvable and friends: a schema problem, not an answer problem
        return None, _short(f"the schema cannot be applied: {exc}")


def _short(message: str) -> str:
    return message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"
