"""Value helpers shared by the comparators: strict JSON parsing, text normalisation, and the
type-aware equality used for key fields.

Two equalities live here on purpose. :func:`json_equal` is exact (key order aside): it is
what "the same JSON" means for whole answers and tool arguments. :func:`field_equal` is
lenient in the ways extraction answers differ without being wrong: number formatting,
case and spacing, date spellings.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from replay.compare.paths import MISSING, Path, is_ignored
from replay.toolcalls import json_equal  # noqa: F401  (the comparators import it from here)

_JSON_START = frozenset('{["-0123456789tfn')


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@lru_cache(maxsize=64)  # only the passes over one pair reuse a parse; answers can be large
def _parse(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None


def parse_json(text: str | None) -> tuple[bool, Any]:
    """``(True, value)`` when ``text`` is strict JSON, else ``(False, None)``.

    Strict means what an API client's ``json.loads`` would accept: a Markdown fence around
    the JSON, ``NaN`` or trailing prose make it invalid. Results are cached because the text
    and structured comparators both parse the same answer; callers must not mutate the value.
    """
    if not text:
        return False, None
    stripped = text.lstrip()
    if not stripped or stripped[0] not in _JSON_START:
        return False, None
    return _parse(text)


def looks_like_json_container(text: str | None) -> bool:
    """A cheap test that skips parsing plain prose: starts with ``{`` or ``[``."""
    if not text:
        return False
    stripped = text.lstrip()
    return bool(stripped) and stripped[0] in "{["


def normalize_text(text: str) -> str:
    """NFKC, casefold, whitespace runs collapsed to one space and trimmed (NFKC skipped for ASCII)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


_NUMERIC = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*")


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        return float(value)
    return None


def numbers_close(a: float, b: float, tolerance: float) -> bool:
    """``abs(a - b) <= tolerance * max(1, |a|, |b|)``: absolute near zero, relative beyond."""
    if a == b:
        return True
    try:
        return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))
    except OverflowError:
        return False


_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?)?"
)


def parse_iso(text: str) -> date | datetime | None:
    """An ISO-8601 date (``2026-01-05``) or datetime (``2026-01-05T09:30:00+01:00``), else None.

    Datetimes come back timezone-aware; one without an offset is taken as UTC, the most
    common meaning of a bare timestamp in an API answer. Other spellings (``2026-1-5``,
    ``January 5, 2026``, ``20260105``) are not dates here: guessing at them would turn
    numbers and ids into dates.
    """
    text = text.strip()
    if len(text) < 10 or text[4] != "-":
        return None
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        if hour is None:
            return date(int(year), int(month), int(day))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, _zone(offset)
        )
    except ValueError:
        return None


def _zone(offset: str | None) -> timezone:
    if offset is None or offset in "Zz":
        return timezone.utc
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    return timezone(sign * timedelta(minutes=minutes))


def dates_equal(a: date | datetime, b: date | datetime) -> bool:
    """Two datetimes are equal as instants. A date and a datetime are equal when the datetime
    falls on that calendar day *as written* (its own offset): ``2026-01-05`` equals
    ``2026-01-05T00:00:00Z`` and ``2026-01-05T18:00:00-05:00``, because a date-only answer
    states the day and nothing finer, and converting to UTC would move evening times to
    the next day."""
    a_is_dt, b_is_dt = isinstance(a, datetime), isinstance(b, datetime)
    if a_is_dt and b_is_dt:
        return a == b
    if a_is_dt:
        return a.date() == b  # type: ignore[union-attr]
    if b_is_dt:
        return b.date() == a  # type: ignore[union-attr]
    return a == b


def field_equal(a: Any, b: Any, tolerance: float, ignore: tuple[Path, ...] = (), path: Path = ()) -> bool:
    """Type-aware equality of two JSON values at ``path``.

    * null equals only null; a boolean equals only the same boolean (``true`` is not ``1``);
    * numbers are equal within ``tolerance``; a numeric string against a number compares as a
      number (``"12.50"`` equals ``12.5``), but two strings compare as strings, so ids and zip
      codes such as ``"02134"`` and ``"2134"`` stay different;
    * strings are equal after :func:`normalize_text`, or when both are ISO-8601 dates that
      :func:`dates_equal` accepts;
    * objects need the same keys and lists the same length, compared item by item by position,
      skipping sub-paths that ``ignore`` names.
    """
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        x, y = _as_number(a), _as_number(b)
        return x is not None and y is not None and numbers_close(x, y, tolerance)
    if isinstance(a, str) and isinstance(b, str):
        if a == b or normalize_text(a) == normalize_text(b):
            return True
        first, second = parse_iso(a), parse_iso(b)
        return first is not None and second is not None and dates_equal(first, second)
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a)
        keys.extend(key for key in b if key not in a)
        return all(_child_equal(a.get(k, MISSING), b.get(k, MISSING), tolerance, ignore, (*path, k)) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b) and not ignore:
            return False
        return all(
            _child_equal(_item(a, i), _item(b, i), tolerance, ignore, (*path, i)) for i in range(max(len(a), len(b)))
        )
    return False


def _item(items: list[Any], index: int) -> Any:
    return items[index] if index < len(items) else MISSING


def _child_equal(a: Any, b: Any, tolerance: float, ignore: tuple[Path, ...], path: Path) -> bool:
    if ignore and is_ignored(path, ignore):
        return True
    if a is MISSING or b is MISSING:
        return False
    return field_equal(a, b, tolerance, ignore, path)
