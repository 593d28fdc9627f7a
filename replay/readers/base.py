"""Reader registry, path resolution and the shared record loop (duplicates, skipping)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol

from replay.errors import InputError, LogFormatError
from replay.types import LogRecord


class Reader(Protocol):
    """Yields ``(line_number, record_or_error)``; an error is a ``LogFormatError``."""

    def __call__(self, path: str) -> Iterator[tuple[int, LogRecord | LogFormatError]]: ...


READERS: dict[str, Reader] = {}


def register_reader(name: str) -> Callable[[Reader], Reader]:
    def decorate(reader: Reader) -> Reader:
        READERS[name] = reader
        return reader

    return decorate


def get_reader(name: str) -> Reader:
    try:
        return READERS[name]
    except KeyError:
        known = ", ".join(sorted(READERS))
        raise InputError(f"unknown log format '{name}' (known: {known})") from None


def resolve_log_paths(spec: str | Iterable[str], search_dirs: Iterable[str] = (".",)) -> list[str]:
    """Expand a path, a glob or a list of either; sorted per glob.

    A relative pattern is tried against each of ``search_dirs`` in turn (the working
    directory, then the scenario's folder) and the first that matches wins.
    """
    patterns = [spec] if isinstance(spec, str) else list(spec)
    paths: list[str] = []
    for pattern in patterns:
        matches = _expand(pattern, search_dirs)
        if not matches:
            what = "no file matches" if glob.has_magic(pattern) else "no such file"
            raise InputError(f"logs: {what} '{pattern}'")
        paths.extend(matches)
    return paths


def _expand(pattern: str, search_dirs: Iterable[str]) -> list[str]:
    bases = [""] if os.path.isabs(pattern) else list(search_dirs)
    for base in bases:
        full = os.path.normpath(os.path.join(base, pattern))
        if glob.has_magic(full):
            matches = sorted(path for path in glob.glob(full) if os.path.isfile(path))
            if matches:
                return matches
        elif os.path.isfile(full):
            return [full]
    return []


@dataclass
class ReadStats:
    """Counts kept while reading; ``invalid`` is reported at the end with --skip-invalid."""

    records: int = 0
    invalid: int = 0


def iter_records(
    paths: list[str],
    *,
    fmt: str = "shadow",
    skip_invalid: bool = False,
    stats: ReadStats | None = None,
    on_invalid: Callable[[LogFormatError], None] | None = None,
) -> Iterator[LogRecord]:
    """Stream valid records from every path, in order, in constant memory but for the ids.

    Ids must be unique across all the files; a repeat is an error naming both lines.
    """
    reader = get_reader(fmt)
    stats = stats if stats is not None else ReadStats()
    seen: dict[str, str] = {}
    for path in paths:
        for line_no, item in reader(path):
            if isinstance(item, LogRecord):
                first = seen.get(item.id)
                if first is None:
                    seen[item.id] = item.source
                    stats.records += 1
                    yield item
                    continue
                item = LogFormatError(path, line_no, f"duplicate id '{item.id}' (first at {first})")
            if not skip_invalid:
                raise item
            stats.invalid += 1
            if on_invalid is not None:
                on_invalid(item)
