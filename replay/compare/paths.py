"""JSON paths for key-field comparison: ``customer.name``, ``items[0].sku``, ``items[*].sku``.

A leading ``$.`` is optional and ``$`` alone is the whole document. ``*`` (as ``[*]`` or as a
dotted segment) matches every list item or object key. Keys holding ``.``, ``[``, ``]`` or
``"`` are written ``["a.b"]``. Paths come back in the same syntax, without the ``$.``, so the
names users write in a scenario are the names they read in a report.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Iterable, Union


class _Any:
    """The wildcard segment; a singleton so ``is`` tests are cheap and a key named "*" stays possible."""

    def __repr__(self) -> str:
        return "*"


ANY = _Any()


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What :func:`lookup` returns for a path absent from a document (``None`` is JSON null)."""

Segment = Union[str, int, _Any]
Path = tuple[Segment, ...]

_TOKEN = re.compile(r'\.([^.\[\]"]+)|\[(\d+|\*)\]|\["((?:[^"\\]|\\.)*)"\]')
_PLAIN_KEY = re.compile(r'[^.\[\]"]+')


@lru_cache(maxsize=4096)
def parse_path(path: str) -> Path:
    """Segments of ``path``: ``str`` keys, ``int`` indexes and :data:`ANY`; ValueError if malformed."""
    text = path.strip()
    if text == "$":
        return ()
    if text.startswith(("$.", "$[")):
        text = text[1:]
    elif text and not text.startswith("["):
        text = "." + text
    segments: list[Segment] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"bad JSON path {path!r} near {text[pos:]!r}")
        key, index, quoted = match.groups()
        if key is not None:
            segments.append(ANY if key == "*" else key)
        elif index is not None:
            segments.append(ANY if index == "*" else int(index))
        else:
            segments.append(json.loads(f'"{quoted}"'))
        pos = match.end()
    if not segments:
        raise ValueError(f"empty JSON path {path!r}")
    return tuple(segments)


@lru_cache(maxsize=8192)
def render_path(path: Path) -> str:
    """The inverse of :func:`parse_path` for concrete paths; ``$`` for the root."""
    if not path:
        return "$"
    out: list[str] = []
    for segment in path:
        if isinstance(segment, int):
            out.append(f"[{segment}]")
        elif segment is ANY:
            out.append("[*]")
        elif isinstance(segment, str) and segment != "*" and _PLAIN_KEY.fullmatch(segment):
            out.append(f".{segment}" if out else segment)
        else:
            out.append(f"[{json.dumps(segment, ensure_ascii=False)}]")
    return "".join(out)


def _child(node: Any, segment: Segment) -> Any:
    if isinstance(segment, str):
        return node.get(segment, MISSING) if isinstance(node, dict) else MISSING
    if isinstance(node, list) and isinstance(segment, int) and segment < len(node):
        return node[segment]
    return MISSING


def _children(node: Any) -> Iterable[str | int]:
    if isinstance(node, dict):
        return node.keys()
    if isinstance(node, list):
        return range(len(node))
    return ()


def lookup(document: Any, path: Path) -> Any:
    """The value at a concrete path, or :data:`MISSING`."""
    node = document
    for segment in path:
        node = _child(node, segment)
        if node is MISSING:
            break
    return node


def expand(pattern: Path, baseline: Any, candidate: Any) -> list[Path]:
    """Concrete paths a pattern names in either document: a wildcard runs over the union of
    both sides' items, so an item only one side has is compared (and fails) rather than dropped."""
    out: list[Path] = []
    _expand(pattern, 0, baseline, candidate, (), out)
    return out


def _expand(pattern: Path, i: int, b: Any, c: Any, prefix: Path, out: list[Path]) -> None:
    if i == len(pattern):
        out.append(prefix)
        return
    segment = pattern[i]
    if segment is not ANY:
        _expand(pattern, i + 1, _child(b, segment), _child(c, segment), (*prefix, segment), out)
        return
    keys = list(_children(b))
    seen = set(keys)
    keys.extend(key for key in _children(c) if key not in seen)
    for key in keys:
        _expand(pattern, i + 1, _child(b, key), _child(c, key), (*prefix, key), out)


def is_ignored(path: Path, ignore: tuple[Path, ...]) -> bool:
    """True when an ignore pattern matches ``path`` or one of its ancestors."""
    for pattern in ignore:
        if len(pattern) <= len(path) and all(p is ANY or p == s for p, s in zip(pattern, path)):
            return True
    return False


def leaf_paths(document: Any, ignore: tuple[Path, ...] = ()) -> list[Path]:
    """Every scalar (and every empty list or object) in a document, minus ignored subtrees."""
    out: list[Path] = []
    _leaves(document, (), ignore, out)
    return out


def _leaves(node: Any, prefix: Path, ignore: tuple[Path, ...], out: list[Path]) -> None:
    if ignore and is_ignored(prefix, ignore):
        return
    if isinstance(node, dict) and node:
        for key, value in node.items():
            _leaves(value, (*prefix, key), ignore, out)
    elif isinstance(node, list) and node:
        for index, value in enumerate(node):
            _leaves(value, (*prefix, index), ignore, out)
    else:
        out.append(prefix)
