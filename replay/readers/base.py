"""Reader registry, path resolution and the shared record loop (duplicates, skipping)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

from replay.errors import InputError, LogFormatError
from replay.readers.records import shown
from replay.types import Location, LogRecord


DEFAULT_MAX_RECORD_MB = 8.0
"""The longest log line read (scenario key ``max_record_mb``, flag ``--max-record-mb``)."""
DEFAULT_MAX_RECORD_BYTES = int(DEFAULT_MAX_RECORD_MB * 2**20)
LOG_SUFFIXES = (".jsonl", ".jsonl.gz")
"""The files read from a directory given as a log."""


class Reader(Protocol):
    """Yields each record of one source, or the ``LogFormatError`` that says why it is not one;
    both carry their :class:`Location`.

    A record longer than ``max_record_bytes`` is an error, and is never read into memory whole.
    """

    def __call__(self, path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[LogRecord | LogFormatError]: ...


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
    """Expand a path, a glob, a directory or a list of them; sorted per glob.

    A relative pattern is tried against each of ``search_dirs`` in turn (the working
    directory, then the scenario's folder) and the first that matches wins. A directory
    stands for the ``*.jsonl`` and ``*.jsonl.gz`` files directly in it, sorted by name.
    """
    patterns = [spec] if isinstance(spec, str) else list(spec)
    paths: list[str] = []
    for pattern in patterns:
        matches = _expand(pattern, search_dirs)
        if matches is None:
            what = "no file matches" if glob.has_magic(pattern) else "no such file"
            raise InputError(f"logs: {what} '{pattern}'")
        if not matches:
            raise InputError(f"logs: the directory '{pattern}' has no *.jsonl or *.jsonl.gz file")
        paths.extend(matches)
    unique: dict[str, str] = {}
    for path in paths:  # a file named twice (a glob and its own name) is read once, where first named
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def _expand(pattern: str, search_dirs: Iterable[str]) -> list[str] | None:
    """The files a pattern stands for; ``[]`` for a directory without logs, None for nothing."""
    bases = [""] if os.path.isabs(pattern) else list(search_dirs)
    for base in bases:
        full = os.path.normpath(os.path.join(base, pattern))
        if glob.has_magic(full):
            matches = sorted(path for path in glob.glob(full) if os.path.isfile(path))
            if matches:
                return matches
        elif os.path.isfile(full):
            return [full]
        elif os.path.isdir(full):
            return sorted(
                entry.path for entry in os.scandir(full) if entry.name.endswith(LOG_SUFFIXES) and entry.is_file()
            )
        elif os.path.exists(full):  # a pipe or a device: the log is read twice (validate, then send)
            raise InputError(f"logs: '{pattern}' is not a regular file (replay reads a log twice: give it a file)")
    return None


@dataclass
class ReadStats:
    """Counts kept while reading; ``invalid`` is reported at the end with --skip-invalid."""

    records: int = 0
    invalid: int = 0
    empty_files: list[str] = field(default_factory=list)
    """Files without a single non-blank line."""
    metadata_keys: set[str] = field(default_factory=set)
    """With ``watch_keys``: those of them some record has, and the first few others (for suggestions)."""


MAX_KEYS_NOTED = 64
"""Metadata keys remembered beyond the watched ones: enough to suggest, bounded whatever the log."""


def check_segment_keys(watched: dict[str, str], stats: ReadStats, source: str = "") -> None:
    """A segment key that no record has would make one segment called "None": name it instead.

    ``watched`` maps each key to the scenario key that asked for it (``segment_by``...).
    """
    import difflib

    for key, where in watched.items():
        if key in stats.metadata_keys:
            continue
        others = sorted(stats.metadata_keys - set(watched))
        hint = difflib.get_close_matches(key, others, n=1)
        if hint:  # keys come from the log: quoted and escaped like every log-derived text
            suggestion = f" (did you mean {shown(hint[0])}?)"
        elif others:
            suggestion = f"; the records have {', '.join(shown(other) for other in others[:10])}"
        else:
            suggestion = "; the records have no metadata"
        prefix = f"{source}: " if source else ""
        raise InputError(f"{prefix}{where}: no record has the metadata key {shown(key)}{suggestion}")


def check_not_empty(paths: list[str], stats: ReadStats) -> None:
    """A log with no record is an error naming it: a run of nothing decides nothing."""
    if stats.records:
        return
    where = paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more file(s)"
    if stats.invalid:
        raise InputError(f"{where}: no valid record (all {stats.invalid} line(s) invalid and skipped)")
    if len(paths) == 1:
        raise InputError(f"{where}: the log is empty (no records)")
    raise InputError(f"{where}: every file is empty (no records)")


def iter_records(
    paths: list[str],
    *,
    fmt: str = "shadow",
    skip_invalid: bool = False,
    stats: ReadStats | None = None,
    on_invalid: Callable[[LogFormatError], None] | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    watch_keys: Iterable[str] = (),
) -> Iterator[LogRecord]:
    """Stream valid records from every path, in order, in constant memory but for the ids.

    Ids must be unique across all the files; a repeat is an error naming both lines.
    ``watch_keys`` are metadata keys to note in ``stats.metadata_keys`` when a record has them.
    """
    watched = tuple(watch_keys)
    reader = get_reader(fmt)
    stats = stats if stats is not None else ReadStats()
    seen: dict[str, Location] = {}
    for path in paths:
        read = 0
        for item in reader(path, max_record_bytes):
            read += 1
            if isinstance(item, LogRecord):
                first = seen.get(item.id)
                if first is None:
                    seen[item.id] = item.location
                    stats.records += 1
                    if watched and item.metadata:
                        _note_keys(stats.metadata_keys, item.metadata, watched)
                    yield item
                    continue
                item = LogFormatError(item.location, f"duplicate id {shown(item.id, 80)} (first at {first})")
            if not skip_invalid:
                raise item
            stats.invalid += 1
            if on_invalid is not None:
                on_invalid(item)
        if read == 0:
            stats.empty_files.append(path)


def _note_keys(noted: set[str], metadata: dict[str, object], watched: tuple[str, ...]) -> None:
    if len(noted) < MAX_KEYS_NOTED:
        noted.update(key for key in metadata if isinstance(key, str))
    else:
        noted.update(key for key in watched if key in metadata)
