"""Reader registry, path resolution and the shared record loop (duplicates, skipping)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
import sys
from collections import Counter
from typing import Callable, Iterable, Iterator, Protocol

from replay.errors import InputError, LogFormatError
from replay.readers.ids import SeenIds
from replay.readers.records import shown
from replay.types import Location, LogRecord


DEFAULT_MAX_RECORD_MB = 8.0
"""The longest log line read (scenario key ``max_record_mb``, flag ``--max-record-mb``)."""
DEFAULT_MAX_RECORD_BYTES = int(DEFAULT_MAX_RECORD_MB * 2**20)
LOG_SUFFIXES = (".jsonl", ".jsonl.gz")
"""The files read from a directory given as a log."""


AUTO = "auto"
"""The format that detects each file's source from its first records (the default)."""


@dataclass(frozen=True)
class Skipped:
    """An entry of a source that is not an LLM request (a Langfuse SPAN, a chain run...):
    counted per file and reason, never an error."""

    location: Location
    reason: str


class Reader(Protocol):
    """Yields each record of one source, or the ``LogFormatError`` that says why it is not one
    (or a :class:`Skipped` entry); each carries its :class:`Location`.

    A record longer than ``max_record_bytes`` is an error, and is never read into memory whole.
    A reader whose records span files (a Batch input and its output) also has ``read_group``:
    ``(paths, max_record_bytes) -> iterator of (path, items)``, called once with all its files.
    """

    def __call__(self, path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[LogRecord | LogFormatError | Skipped]: ...


READERS: dict[str, Reader] = {}
BUILT_IN: dict[str, str] = {
    "openai-batch": "openai_batch", "anthropic-batch": "anthropic_batch", "litellm": "litellm",
    "langfuse": "langfuse", "langsmith": "langsmith", "helicone": "helicone", "otel-genai": "otel",
    "openai-responses": "openai_responses", "csv": "mapped", "jsonl": "mapped",
}  # fmt: skip
"""Readers imported when first asked for (``replay.readers.<module>``): a run of a shadow log, the
usual case, pays none of their imports."""


def register_reader(name: str) -> Callable[[Reader], Reader]:
    def decorate(reader: Reader) -> Reader:
        READERS[name] = reader
        return reader

    return decorate


def known_formats() -> list[str]:
    return sorted({*READERS, *BUILT_IN} - {name for name in READERS if "+mapping:" in name})


def get_reader(name: str) -> Reader:
    if name not in READERS and name in BUILT_IN:
        import importlib

        importlib.import_module(f"replay.readers.{BUILT_IN[name]}")  # registers it
    try:
        return READERS[name]
    except KeyError:
        known = ", ".join([*known_formats(), AUTO])
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
    formats: dict[str, str] = field(default_factory=dict)
    """Each file's format (detected with ``auto``, else the one asked for)."""
    per_file: dict[str, int] = field(default_factory=dict)
    """Valid records read from each file."""
    skipped: dict[str, Counter[str]] = field(default_factory=dict)
    """Per file, entries that are not LLM requests, counted by reason."""
    invalid_per_file: dict[str, int] = field(default_factory=dict)
    """Per file, the invalid records skipped with ``skip_invalid``."""


MAX_REASONS = 32
"""Distinct skip reasons counted per file; more are counted together (the log cannot grow the count)."""
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
    fmt: str = AUTO,
    skip_invalid: bool = False,
    stats: ReadStats | None = None,
    on_invalid: Callable[[LogFormatError], None] | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    watch_keys: Iterable[str] = (),
) -> Iterator[LogRecord]:
    """Stream valid records from every path, in order, in constant memory but for the ids (about
    20 bytes each: :class:`replay.readers.ids.SeenIds`).

    Ids must be unique across all the files; a repeat is an error naming both lines.
    ``watch_keys`` are metadata keys to note in ``stats.metadata_keys`` when a record has them.
    With ``fmt="auto"`` each file's format is detected (:mod:`replay.readers.detect`) and,
    unless it is ``shadow``, said on stderr (``note: PATH: format detected as litellm``) when the
    caller keeps ``stats`` (a first pass, a validation; a run's second pass re-reads silently).
    """
    watched = tuple(watch_keys)
    kept_stats = stats is not None
    stats = stats if stats is not None else ReadStats()
    seen = SeenIds()
    for path, items in _sources(paths, fmt, max_record_bytes, stats, say=kept_stats):
        read = 0
        for item in items:
            read += 1
            if isinstance(item, LogRecord):
                first = seen.first(item.id, item.location)
                if first is None:
                    stats.records += 1
                    if watched and item.metadata:
                        _note_keys(stats.metadata_keys, item.metadata, watched)
                    yield item
                    continue
                item = LogFormatError(item.location, f"duplicate id {shown(item.id, 80)} (first at {first})")
            elif isinstance(item, Skipped):
                reasons = stats.skipped.setdefault(item.location.path, Counter())
                reasons[item.reason if item.reason in reasons or len(reasons) < MAX_REASONS else "other reasons"] += 1
                continue
            if not skip_invalid:
                raise item
            stats.invalid += 1
            where = item.location.path if isinstance(item.location, Location) else path
            stats.invalid_per_file[where] = stats.invalid_per_file.get(where, 0) + 1
            if on_invalid is not None:
                on_invalid(item)
        if read == 0:
            stats.empty_files.append(path)
        stats.per_file[path] = stats.records - sum(stats.per_file.values())


def _sources(paths: list[str], fmt: str, cap: int, stats: ReadStats,
             say: bool) -> Iterator[tuple[str, Iterable[LogRecord | LogFormatError | Skipped]]]:  # fmt: skip
    """Each file with its items; the files of a joining reader (``read_group``) go to it together,
    where the first of them stands. ``say``: note each detected format (not on a re-read)."""
    if fmt == AUTO:
        from replay.readers.detect import detect_format

        formats = {path: detect_format(path) for path in paths}
        for path, found in formats.items():
            if say and found != "shadow":  # replay's own format is read silently, as before
                print(f"note: {path}: format detected as {found}", file=sys.stderr)
    else:
        get_reader(fmt)  # an unknown name is an error even without a file
        formats = dict.fromkeys(paths, fmt)
    stats.formats.update(formats)
    grouped: set[str] = set()
    for path in paths:
        name = formats[path]
        reader = get_reader(name)
        group = getattr(reader, "read_group", None)
        if group is None:
            yield path, reader(path, cap)
        elif name not in grouped:
            grouped.add(name)
            yield from group([other for other in paths if formats[other] == name], cap)


def _note_keys(noted: set[str], metadata: dict[str, object], watched: tuple[str, ...]) -> None:
    if len(noted) < MAX_KEYS_NOTED:
        noted.update(key for key in metadata if isinstance(key, str))
    else:
        noted.update(key for key in watched if key in metadata)
