"""What the readers of other tools' exports share: JSON objects streamed from JSON Lines, and a
:class:`LogRecord` built from the fields each source maps, checked as the shadow reader checks its own.

A source's record becomes a chat-completions ``request`` and, when the answer was logged, a
chat-completion ``response`` body (or an Anthropic message), so the run reads every source alike.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import orjson

from replay.errors import InputError, LogFormatError
from replay.readers import records as checks
from replay.readers.base import DEFAULT_MAX_RECORD_BYTES
from replay.readers.shadow import READ_ERRORS, UTF8_BOM, answer_reader, log_lines, no_answer, open_log, too_long
from replay.types import Location, LogRecord, built



def read_objects(path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[tuple[Location, Any] | LogFormatError]:
    """Every non-blank line of a JSON Lines file (gzip, bzip2, xz read alike) as ``(location, value)``."""
    return _lines(path, max_record_bytes, None)


def _lines(path: str, max_record_bytes: int, convert: Callable[[dict[str, Any], Location], Any] | None) -> Iterator[Any]:
    """The lines of a JSON Lines file parsed, and with ``convert`` each object converted in the same
    loop: one generator a line, not two (the conversions raise ValueError or a shape error only,
    so the read errors caught around them are the file's)."""
    line_no = 0
    with open_log(path) as handle:
        try:
            for line_no, raw, size in log_lines(handle, max_record_bytes):
                location = built(Location, path=path, line=line_no, index=None)
                if size > max_record_bytes:
                    yield LogFormatError(location, too_long(size, max_record_bytes))
                    continue
                if line_no == 1 and raw.startswith(UTF8_BOM):
                    raw = raw[len(UTF8_BOM):]
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    yield LogFormatError(location, f"not valid JSON ({exc})")
                    continue
                if convert is None:
                    yield location, obj
                    continue
                if type(obj) is not dict:
                    yield LogFormatError(location, f"expected a JSON object, got {type(obj).__name__}")
                    continue
                try:
                    converted = convert(obj, location)
                except ValueError as exc:
                    yield LogFormatError(location, str(exc))
                    continue
                except SHAPE_ERRORS as exc:  # a field of an unexpected type deep in the object
                    yield LogFormatError(location, unexpected_shape(exc))
                    continue
                if type(converted) is list:
                    yield from converted
                else:
                    yield converted
        except READ_ERRORS as exc:
            raise InputError(f"{path}:{line_no + 1}: cannot read the file from here ({exc})") from None


SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError)
"""What converting an object of an unforeseen shape raises (a list where an object belongs...)."""


def unexpected_shape(exc: Exception) -> str:
    said = str(exc)
    said = said if len(said) <= 120 else said[:117] + "..."
    return f"a field has an unexpected shape ({type(exc).__name__}: {said}): not a record of this format"


def object_reader(convert: Callable[[dict[str, Any], Location], Any]) -> Callable[..., Iterator[Any]]:
    """A reader from a function turning one JSON object into a record, a ``Skipped`` or a list
    of them (a line holding several spans); a ``ValueError`` becomes the located error, and so
    does a type error on a field of an unforeseen shape."""

    def read(path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[Any]:
        return _lines(path, max_record_bytes, convert)

    read.__doc__ = convert.__doc__
    return read


def record(
    location: Location,
    *,
    id: Any,
    request: Any,
    response: dict[str, Any] | None,
    latency_ms: Any = None,
    ttft_ms: Any = None,
    status: Any = None,
    error: Any = None,
    timestamp: Any = None,
    metadata: dict[str, Any] | None = None,
    id_field: str = "id",
    messages_field: str = "request.messages",
    response_field: str = "response",
) -> LogRecord:
    """A checked record: the same checks and messages as a shadow line; ``id_field``,
    ``messages_field`` and ``response_field`` name the source's own fields in messages."""
    if type(id) is not str:  # the usual id is a str: one check
        id = str(id) if isinstance(id, int) and not isinstance(id, bool) else id if isinstance(id, str) else None
    if not id:
        raise ValueError(f"'{id_field}' is required and must be a non-empty string")
    try:
        request = checks.request(request)
    except ValueError as exc:
        raise ValueError(str(exc).replace("'request.messages", f"'{messages_field}", 1)) from None
    try:
        response = checks.response(response)
    except ValueError as exc:
        raise ValueError(str(exc).replace("'response", f"'{response_field}", 1)) from None
    latency, ttft = _milliseconds(latency_ms, "latency_ms"), _milliseconds(ttft_ms, "ttft_ms")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        raise ValueError(f"'status' must be an integer, got {checks.shown(status)}")
    return built(
        LogRecord,
        id=id,
        request=request,
        read_answer=no_answer if response is None else answer_reader(response, latency, ttft),
        latency_ms=latency,
        ttft_ms=ttft,
        status=status,
        error=error,
        timestamp=checks.timestamp(timestamp),
        metadata={key: value for key, value in (metadata or {}).items() if value is not None},
        location=location,
    )


def _milliseconds(value: Any, key: str) -> float | None:
    """``checks.number`` of a duration, a float in range (the usual one) taken as it is."""
    if value is None or (type(value) is float and 0.0 <= value < math.inf):
        return value
    return checks.number({key: value}, key)


def chat_body(text: Any, *, model: Any = None, finish_reason: Any = None, usage: dict[str, Any] | None = None,
              tool_calls: list[dict[str, Any]] | None = None, response_id: Any = None) -> dict[str, Any]:  # fmt: skip
    """A chat-completion body from an answer's parts (sources that log the text, not the body)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {"object": "chat.completion", "choices": [{"index": 0, "message": message,
                                                                       "finish_reason": finish_reason}]}  # fmt: skip
    if model is not None:
        body["model"] = model
    if response_id is not None:
        body["id"] = response_id
    if usage:
        body["usage"] = usage
    return body


def seconds_between(start: Any, end: Any, field: str) -> float | None:
    """Milliseconds from ``start`` to ``end``: ISO 8601 strings or epoch seconds; None when either is absent."""
    if start is None or end is None:
        return None
    begin, finish = instant(start, field), instant(end, field)
    return round(max(0.0, (finish - begin) * 1000.0), 3)


def durations(start: Any, *ends: tuple[Any, str]) -> list[float | None]:
    """``seconds_between(start, end, field)`` for each ``(end, field)``, ``start`` parsed once."""
    begin: float | None = None
    found: list[float | None] = []
    for end, field in ends:
        if start is None or end is None:
            found.append(None)
            continue
        if begin is None:
            begin = instant(start, field)
        found.append(round(max(0.0, (instant(end, field) - begin) * 1000.0), 3))
    return found


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)


def instant(value: Any, field: str) -> float:
    """Epoch seconds from an ISO 8601 string or a number of seconds."""
    if type(value) is not str and isinstance(value, (int, float)) and not isinstance(value, bool):  # text, the usual, goes on
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:  # what .timestamp() computes (whole microseconds / 10**6), without its slow tz machinery
            return (moment - (_EPOCH_UTC if moment.tzinfo else _EPOCH)).total_seconds()
    raise ValueError(f"'{field}' must be an ISO 8601 time or epoch seconds, got {checks.shown(value)}")


def iso(value: Any, field: str) -> str | None:
    """An ISO 8601 timestamp (``Z``) from a string or epoch seconds; None when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        checks.timestamp(value)
        return value
    return datetime.fromtimestamp(instant(value, field), tz=timezone.utc).isoformat().replace("+00:00", "Z")


def label(value: Any, default: str) -> str:
    """A short name from the log (an observation's type, a run's type) for a skip reason: a string
    of at most 40 characters as it is, anything else as ``default``."""
    return value if isinstance(value, str) and 0 < len(value) <= 40 else default


def json_text(value: Any) -> Any:
    """A field that may hold JSON as text (exports that store bodies or columns as strings)
    decoded; anything else, or text that is not JSON, as it is."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is an object, else an empty one (a missing or odd field reads as nothing)."""
    return value if isinstance(value, dict) else {}


def dig(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...``, None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


