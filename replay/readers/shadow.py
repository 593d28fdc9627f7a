"""The canonical shadow log: JSON Lines (optionally compressed), one production request a line.

    {"id": "req-1", "request": {...chat-completions body...}, "response": {...},
     "latency_ms": 812, "ttft_ms": 240, "status": 200, "error": null,
     "timestamp": "2026-11-01T12:00:00Z", "metadata": {"category": "billing"}}

The request may also be an Anthropic Messages body and the response a Messages answer
(told apart by shape: :func:`replay.wire.adapt.request_format`, :func:`replay.wire.anthropic.is_message`);
each arm's provider adapts the request to its own API.

A record is checked for everything the run would trip over later: the request as an
OpenAI-compatible endpoint would refuse it (an unknown role, content of the wrong
type, a parameter of the wrong type) and the logged answer as the engine reads it.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import json
import lzma
import zlib
from typing import IO, Any, Callable, Iterator

import orjson

from replay.errors import InputError, LogFormatError
from replay.readers import records as checks
from replay.readers.base import DEFAULT_MAX_RECORD_BYTES, register_reader
from replay.types import Completion, Location, LogRecord, built
from replay.wire.anthropic import completion_from_message, is_message
from replay.wire.openai import completion_from_body

_SKIP_CHUNK = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)
_OPENERS: dict[bytes, Callable[..., Any]] = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}
_REFUSED = {
    b"\x28\xb5\x2f\xfd": "compressed with zstd: decompress it first (zstd -d)",
    b"PK\x03\x04": "a zip archive: extract the .jsonl file from it",
    b"\xff\xfe": "UTF-16 text: save it as UTF-8",
    b"\xfe\xff": "UTF-16 text: save it as UTF-8",
}


def open_log(path: str) -> IO[bytes]:
    """Open by content, not by name: gzip, bzip2 and xz are read whatever the suffix."""
    try:
        with open(path, "rb") as probe:
            head = probe.read(6)
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a log file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for magic, opener in _OPENERS.items():
        if head.startswith(magic):
            handle: IO[bytes] = opener(path, "rb")  # each returns a binary file in "rb" mode
            return handle
    for magic, problem in _REFUSED.items():
        if head.startswith(magic):
            raise InputError(f"{path}: {problem}")
    if path.endswith(".gz"):
        raise InputError(f"{path}: not a gzip file (the name ends in .gz, the content is not gzip)")
    return open(path, "rb")


def log_lines(handle: IO[bytes], cap: int) -> Iterator[tuple[int, bytes, int]]:
    """``(line number, line, size without the newline)``; a line over ``cap`` bytes comes
    back empty with its size, its bytes skipped in chunks, so memory stays bounded
    whatever the line's length."""
    readline = functools.partial(handle.readline, cap + 1)
    for line_no, raw in enumerate(iter(readline, b""), start=1):
        if raw.endswith(b"\n"):
            yield line_no, raw, len(raw) - 1
            continue
        if len(raw) <= cap:  # the last line, without a newline
            yield line_no, raw, len(raw)
            continue
        size = len(raw)
        while True:
            rest = handle.readline(_SKIP_CHUNK)
            size += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
        yield line_no, b"", size


@register_reader("shadow")
def read_shadow(path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[LogRecord | LogFormatError]:
    """Yield every non-blank line as a record or as the error that explains why it is not one."""
    line_no = 0
    with open_log(path) as handle:
        try:
            for line_no, raw, size in log_lines(handle, max_record_bytes):
                if size > max_record_bytes:
                    yield LogFormatError(Location(path, line_no), too_long(size, max_record_bytes))
                    continue
                if line_no == 1 and raw.startswith(UTF8_BOM):
                    raw = raw[len(UTF8_BOM):]
                if not raw.strip():
                    continue
                location = built(Location, path=path, line=line_no, index=None)
                try:
                    yield parse_record(raw, location)
                except ValueError as exc:
                    yield LogFormatError(location, str(exc))
        except READ_ERRORS as exc:  # compressed data cut short or corrupt: nothing after it can be read
            raise InputError(f"{path}:{line_no + 1}: cannot read the file from here ({exc})") from None


def too_long(size: int, cap: int) -> str:
    return (f"record is {size / 2**20:,.1f} MB, over the {cap / 2**20:g} MB limit"
            " (raise max_record_mb or --max-record-mb to read it)")  # fmt: skip


def parse_record(raw: bytes | str, location: Location = Location("")) -> LogRecord:
    try:
        obj = orjson.loads(raw)
        unusual = False
    except orjson.JSONDecodeError:
        try:  # the standard library also reads NaN and Infinity, and words its errors better
            obj = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
        except RecursionError:  # orjson stops at 1024 levels; json.loads recurses until Python's limit
            raise ValueError("not valid JSON (nested too deeply)") from None
        unusual = True
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if _brackets(raw) > checks.MAX_DEPTH:  # counting is cheap; only a line with many pays for the walk
        checks.shallow(obj)
    record_id = obj.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise ValueError("'id' is required and must be a non-empty string")
    request = checks.request(obj.get("request"))
    response = checks.response(obj.get("response"))
    latency_ms, ttft_ms = checks.number(obj, "latency_ms"), checks.number(obj, "ttft_ms")
    record = built(
        LogRecord,
        id=record_id,
        request=request,
        read_answer=no_answer if response is None else answer_reader(response, latency_ms, ttft_ms),
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        status=checks.optional(obj, "status", int),
        error=obj.get("error"),
        timestamp=checks.timestamp(obj.get("timestamp")),
        metadata=checks.optional(obj, "metadata", dict) or {},
        location=location,
    )
    if unusual:  # only json.loads yields NaN or an infinity: none may reach a request or the store
        checks.finite(obj)
    return record


def no_answer() -> None:
    return None


def answer_reader(response: dict[str, Any], latency_ms: float | None, ttft_ms: float | None) -> Callable[[], Completion]:
    """The parser of the logged answer's dialect: a chat completion, or an Anthropic message
    (``"type": "message"``, its ``content`` a list of blocks)."""
    parse = completion_from_message if is_message(response) else completion_from_body
    return functools.partial(parse, response, latency_ms=latency_ms, ttft_ms=ttft_ms)


def _brackets(raw: bytes | str) -> int:
    if isinstance(raw, bytes):
        return raw.count(b"[") + raw.count(b"{")
    return raw.count("[") + raw.count("{")
