"""``csv`` and ``jsonl`` with a field mapping: home-grown logs, no converter to write.

    format: csv
    mapping: {id: request_id, messages: payload.messages, response_text: output,
              latency_ms: duration, metadata.category: route}

Each mapping value is a column (CSV) or key (JSON Lines), then a dotted path into it; a CSV cell
(or a JSON string) holding JSON is parsed on the way (``payload.messages``); a number selects
a list item (``choices.0.message.content``). A key holding dots is found as a whole first.

Targets: ``id`` (required); the request as ``request`` (a whole chat body), ``messages`` or
``prompt`` (a user message's text), with ``system`` and ``model``; the answer as ``response`` (a
whole body) or ``response_text``; ``latency_ms``, ``ttft_ms``, ``status``, ``error``,
``timestamp`` (ISO 8601 or epoch seconds), ``prompt_tokens``, ``completion_tokens``, and any
``metadata.NAME``. A scenario's mapping registers its reader as ``csv+mapping:<digest>``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from typing import IO, Any, Iterator

import orjson

from replay.errors import InputError, LogFormatError
from replay.readers.base import DEFAULT_MAX_RECORD_BYTES, READERS
from replay.readers.objects import chat_body, iso, read_objects, record
from replay.readers.shadow import open_log
from replay.types import Location, LogRecord

KINDS = ("csv", "jsonl")
TARGETS = ("id", "request", "messages", "prompt", "system", "model", "response", "response_text", "latency_ms",
           "ttft_ms", "status", "error", "timestamp", "prompt_tokens", "completion_tokens")  # fmt: skip
_NUMBERS = ("latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "status")
_MISSING = object()


def check_mapping(mapping: Any, where: str = "mapping") -> dict[str, str]:
    """The mapping, or an ``InputError`` naming the bad key (``mapping.laytency_ms: unknown target``)."""
    if not isinstance(mapping, dict) or not mapping:
        raise InputError(f"{where}: expected a mapping of target: source field")
    for target, source in mapping.items():
        if not isinstance(target, str) or (target not in TARGETS and not target.startswith("metadata.")):
            import difflib

            hint = difflib.get_close_matches(str(target), TARGETS, n=1)
            raise InputError(f"{where}.{target}: unknown target" + (f" (did you mean '{hint[0]}'?)" if hint else
                             f" (expected {', '.join(TARGETS)} or metadata.NAME)"))  # fmt: skip
        if not isinstance(source, str) or not source:
            raise InputError(f"{where}.{target}: expected a field name or dotted path")
    if "id" not in mapping:
        raise InputError(f"{where}.id: missing required target (the record's id)")
    if not {"request", "messages", "prompt"} & set(mapping):
        raise InputError(f"{where}: map the request: request, messages or prompt")
    return dict(mapping)


def mapped_format(kind: str, mapping: dict[str, str]) -> str:
    """Register the reader of ``kind`` with ``mapping``; its format name, stable for the same mapping."""
    if kind not in KINDS:
        raise InputError(f"mapping: is for format csv or jsonl, not '{kind}'")
    digest = hashlib.sha256(orjson.dumps(mapping, option=orjson.OPT_SORT_KEYS)).hexdigest()[:8]
    name = f"{kind}+mapping:{digest}"
    if name not in READERS:
        reader = MappedReader(kind, check_mapping(mapping))
        READERS[name] = reader
    return name


def _needs_mapping(path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[LogRecord]:
    raise InputError(f"{path}: format csv or jsonl needs a mapping: of its fields (see the README's 'Log formats')")
    yield  # a generator, like every reader


for _kind in KINDS:
    READERS[_kind] = _needs_mapping


def _get(obj: Any, path: str) -> Any:
    if isinstance(obj, dict) and path in obj:
        return obj[path]
    head, _, rest = path.partition(".")
    if isinstance(obj, str) and obj[:1] in "[{":
        try:
            obj = orjson.loads(obj)
        except orjson.JSONDecodeError:
            return _MISSING
        return _get(obj, path)
    if isinstance(obj, dict):
        value = obj.get(head, _MISSING)
    elif isinstance(obj, list) and head.isdigit() and int(head) < len(obj):
        value = obj[int(head)]
    else:
        return _MISSING
    if not rest or value is _MISSING:
        return value
    return _get(value, rest)


def _json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _number(value: Any, target: str, source: str) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"'{source}' (mapped to {target}) must be a number, got {value[:40]!r}") from None
        return int(number) if target in ("status", "prompt_tokens", "completion_tokens") and number.is_integer() else number
    return value


def _rows(path: str, text: IO[str], cap: int) -> Iterator[tuple[Location, Any] | LogFormatError]:
    """Rows with the line each starts on. The csv module's cell limit is process-wide: it is
    raised to ``cap`` only while a row is parsed, never while this generator waits (``replay
    review`` reads its CSV files with the default)."""
    reader = csv.DictReader(text)
    line = 0
    while True:
        default = csv.field_size_limit(cap)
        try:
            if line == 0:
                if reader.fieldnames is None:  # reads the header: the first record starts after it
                    return
                line = reader.line_num + 1
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}:{reader.line_num}: not readable as CSV ({exc})") from None
        finally:
            csv.field_size_limit(default)
        location = Location(path, line)
        line = reader.line_num + 1
        if None in row:
            yield LogFormatError(location, f"{len(row[None])} more cell(s) than the header has columns")
            continue
        yield location, row


class MappedReader:
    """A csv or jsonl reader bound to one mapping."""

    def __init__(self, kind: str, mapping: dict[str, str]) -> None:
        self.kind, self.mapping = kind, mapping

    def __call__(self, path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[LogRecord | LogFormatError]:
        rows = self._csv_rows(path, max_record_bytes) if self.kind == "csv" else read_objects(path, max_record_bytes)
        for item in rows:
            if isinstance(item, LogFormatError):
                yield item
                continue
            location, row = item
            try:
                yield self.convert(row, location)
            except ValueError as exc:
                yield LogFormatError(location, str(exc))

    def _csv_rows(self, path: str, cap: int) -> Iterator[tuple[Location, Any] | LogFormatError]:
        with open_log(path) as handle:
            yield from _rows(path, io.TextIOWrapper(handle, encoding="utf-8-sig", newline=""), max(cap, 2**17))

    def _value(self, row: Any, target: str) -> Any:
        source = self.mapping.get(target)
        if source is None:
            return None
        value = _get(row, source)
        if value is _MISSING:
            raise ValueError(f"'{source}' (mapped to {target}) is missing")
        if value == "" and self.kind == "csv":
            return None
        return _number(value, target, source) if target in _NUMBERS else value

    def convert(self, row: Any, location: Location) -> LogRecord:
        if not isinstance(row, dict):
            raise ValueError(f"expected a JSON object, got {type(row).__name__}")
        value = self._value
        request = _json(value(row, "request")) if "request" in self.mapping else {}
        request = dict(request) if isinstance(request, dict) else request
        if isinstance(request, dict):
            if "messages" in self.mapping:
                request["messages"] = _json(value(row, "messages"))
            elif "prompt" in self.mapping:
                request["messages"] = [{"role": "user", "content": value(row, "prompt")}]
            system = value(row, "system")
            if system is not None and isinstance(request.get("messages"), list):
                request["messages"] = [{"role": "system", "content": system}, *request["messages"]]
            model = value(row, "model")
            if model is not None:
                request["model"] = model
        response = _json(value(row, "response"))
        if response is not None and not isinstance(response, dict):
            raise ValueError(f"'{self.mapping['response']}' (mapped to response) must be a JSON object")
        if response is None and value(row, "response_text") is not None:
            tokens = {"prompt_tokens": value(row, "prompt_tokens"), "completion_tokens": value(row, "completion_tokens")}
            response = chat_body(str(value(row, "response_text")),
                                 usage=tokens if any(count is not None for count in tokens.values()) else None)
        metadata = {target[len("metadata."):]: value(row, target) for target in self.mapping if target.startswith("metadata.")}
        return record(
            location,
            id=value(row, "id"),
            id_field=self.mapping["id"],
            request=request,
            messages_field=self.mapping.get("messages", self.mapping.get("prompt", "request.messages")),
            response=response,
            response_field=self.mapping.get("response", "response"),
            latency_ms=value(row, "latency_ms"),
            ttft_ms=value(row, "ttft_ms"),
            status=value(row, "status"),
            error=value(row, "error"),
            timestamp=iso(value(row, "timestamp"), self.mapping.get("timestamp", "timestamp")),
            metadata=metadata,
        )
