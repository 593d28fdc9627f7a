"""Strict YAML for the files a user writes: scenarios, gates files, JSON Schemas in YAML.

PyYAML's safe loader, with three changes a person writing these files expects:

- numbers are read the YAML 1.2 way: ``2e5`` and ``1.5e3`` are floats (YAML 1.1, which
  PyYAML follows, needs ``2.0e+5`` and reads ``2e5`` as the string ``'2e5'``);
- a key repeated in one mapping is an error naming the key and its line (YAML says keys
  are unique; PyYAML silently keeps the last);
- aliases are counted before anything is built: a document whose aliases would expand
  past :data:`MAX_EXPANDED` (nodes plus characters) or refer to themselves is refused.
  PyYAML itself shares aliased objects, but every later copy or dump (``json.dumps``,
  the snapshot stored with a run) expands them: a billion-laughs file of a few hundred
  bytes would take minutes and gigabytes.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

MAX_FILE_BYTES = 10 * 1024 * 1024
"""A scenario is a few kilobytes; a bigger file is a mistake (a log given as a scenario)."""
MAX_DEPTH = 100
"""Nesting levels: a scenario has five or six; the parser recurses once per level."""
MAX_EXPANDED = 2_000_000
"""Nodes plus scalar characters once aliases are expanded: far above any real scenario."""

_YAML12_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(ValueError):
    """A file that is not acceptable YAML; ``line`` is 1-based, or None when unknown."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(message)


class StrictLoader(yaml.SafeLoader):
    """Safe loading, YAML 1.2 floats, unique keys, bounded nesting (see the module docstring)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue  # merged keys (``<<: *base``) may be overridden: that is what merging is for
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


StrictLoader.yaml_implicit_resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))


def load_yaml_text(text: str) -> Any:
    """Parse one YAML document; raise :class:`YamlError` (with a line where known)."""
    loader = None
    try:
        loader = StrictLoader(text)  # checks the characters at once
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except yaml.reader.ReaderError as exc:  # a control character: it has no mark, only a position
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        raise YamlError(f"a control character (#x{code:02x}) is not allowed in YAML", text[: exc.position].count("\n") + 1) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlError(problem, mark.line + 1 if mark else None) from None
    except YamlError:
        raise
    except RecursionError:  # bounded by MAX_DEPTH; kept as a last line of defence
        raise YamlError("nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than Python converts (4,300)
        problem = "an integer with thousands of digits" if "digits" in str(exc) else str(exc).splitlines()[0]
        raise YamlError(problem) from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml_file(path: str) -> Any:
    """Read and parse a YAML file; :class:`YamlError` for bad YAML, ``OSError`` as raised."""
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise YamlError(f"file too large for a scenario ({os.path.getsize(path):,} bytes; at most {MAX_FILE_BYTES:,})")
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", line) from None
    return load_yaml_text(text)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that is cyclic or expands past :data:`MAX_EXPANDED`.

    Sizes are memoised per node, so the cost is the size of the file, not of the expansion.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            own = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
            size = 1 + own + sum(sizes[id(child)] for child in _children(node))
            if size > MAX_EXPANDED:
                raise _too_large(node)
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlError("an alias refers to itself (a recursive structure)", node.start_mark.line + 1)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _too_large(node: yaml.Node) -> YamlError:
    return YamlError(
        f"aliases expand to more than {MAX_EXPANDED:,} nodes and characters here (a YAML bomb?)",
        node.start_mark.line + 1,
    )


__all__ = ["MAX_EXPANDED", "StrictLoader", "YamlError", "load_yaml_file", "load_yaml_text"]
