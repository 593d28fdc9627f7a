"""The ``compare.*`` scenario keys, each declared once with the comparator that reads it.

An option names its key (also its :class:`~replay.compare.base.CompareSpec` field), checks
the value a scenario gives (raising through the loader's ``fail(key, message)``, so the
message names the key) and turns the stored value into the spec's. Its default is the
spec field's. ``replay.settings`` reads them from :data:`COMPARE_OPTIONS` and knows no key
itself.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

Fail = Callable[[str, str], Exception]
"""``fail(key, message)``: the loader's error for one key (a :class:`~replay.errors.ScenarioError`)."""


@dataclass(frozen=True)
class CompareOption:
    name: str
    """The key under ``compare:``, and the :class:`CompareSpec` field it sets."""
    check: Callable[[Any, Fail, tuple[str, ...]], Any]
    """``(value, fail, base_dirs) -> value to store``; base_dirs are where relative files are found."""
    to_spec: Callable[[Any], Any] = lambda value: value
    """The stored value (not None) as the spec field's value."""
    absent: Any = None
    """Not None: the value checked and stored when the scenario leaves the key out."""


COMPARE_OPTIONS: dict[str, CompareOption] = {}
"""Every ``compare.*`` key, in the order the comparators declare them."""


def declare_options(*options: CompareOption) -> tuple[str, ...]:
    """Add ``options`` to :data:`COMPARE_OPTIONS`; their names, for ``register_comparator(options=...)``."""
    for option in options:
        if option.name in COMPARE_OPTIONS:
            raise ValueError(f"compare option {option.name!r} is already declared")
        COMPARE_OPTIONS[option.name] = option
    return tuple(option.name for option in options)


def choice(name: str, allowed: tuple[str, ...]) -> Callable[[Any, Fail, tuple[str, ...]], Any]:
    """One of ``allowed``."""


    def check(value: Any, fail: Fail, base_dirs: tuple[str, ...]) -> Any:
        if value not in allowed:
            quoted = [repr(item) for item in allowed]
            raise fail(f"compare.{name}", f"expected {', '.join(quoted[:-1])} or {quoted[-1]}, got {value!r}")
        return value

    return check


def string_list(name: str) -> Callable[[Any, Fail, tuple[str, ...]], Any]:
    """A list of strings (or null: unset)."""


    def check(value: Any, fail: Fail, base_dirs: tuple[str, ...]) -> Any:
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise fail(f"compare.{name}", "expected a list of strings")
        return value

    return check


def non_negative_number(name: str) -> Callable[[Any, Fail, tuple[str, ...]], Any]:
    """A number >= 0 (or null: unset); a boolean is not a number."""

    def check(value: Any, fail: Fail, base_dirs: tuple[str, ...]) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise fail(f"compare.{name}", f"expected a non-negative number, got {value!r}")
        return value

    return check


def policies(data: Any, fail: Fail, base_dirs: tuple[str, ...]) -> list[dict[str, str]]:
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


def schema(value: Any, fail: Fail, base_dirs: tuple[str, ...]) -> dict[str, Any]:
    """An inline JSON Schema, or a JSON or YAML file found in ``base_dirs``: its content is stored."""
    if isinstance(value, dict):
        loaded = value
    elif isinstance(value, str):
        loaded = _schema_file(value, fail, base_dirs)
    else:
        raise fail("compare.schema", "expected a path to a JSON Schema file, or an inline schema")
    if not isinstance(loaded, dict):
        raise fail("compare.schema", "a JSON Schema must be an object")
    if not isinstance(loaded.get("$schema", ""), str):  # jsonschema would crash looking it up
        raise fail("compare.schema", f"$schema must be a meta-schema URI string, got {loaded['$schema']!r}"[:200])
    from jsonschema import Draft202012Validator, SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(loaded, default=Draft202012Validator).check_schema(loaded)
    except SchemaError as exc:
        raise fail("compare.schema", f"invalid JSON Schema: {exc.message}") from None
    return loaded


def _schema_file(value: str, fail: Fail, base_dirs: tuple[str, ...]) -> Any:
    path = next((os.path.join(d, value) for d in base_dirs if os.path.exists(os.path.join(d, value))), None)
    if path is None:
        raise fail("compare.schema", f"no such schema file: {value}")
    try:
        from replay.yamlfile import load_yaml_file

        if path.endswith((".yaml", ".yml")):
            return load_yaml_file(path)
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (ValueError, OSError) as exc:
        raise fail("compare.schema", f"{path}: not a JSON Schema file: {exc}") from None
