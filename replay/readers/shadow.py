"""The canonical shadow log: JSON Lines (optionally gzip), one production request a line.

    {"id": "req-1", "request": {...chat-completions body...}, "response": {...},
     "latency_ms": 812, "ttft_ms": 240, "status": 200, "error": null,
     "timestamp": "2026-11-01T12:00:00Z", "metadata": {"category": "billing"}}
"""

from __future__ import annotations

import gzip
import json
import math
from datetime import datetime
from typing import IO, Any, Iterator

from replay import fastjson
from replay.errors import InputError, LogFormatError
from replay.readers.base import register_reader
from replay.types import LogRecord


def _open(path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


@register_reader("shadow")
def read_shadow(path: str) -> Iterator[tuple[int, LogRecord | LogFormatError]]:
    """Yield every non-blank line as a record or as the error that explains why it is not one."""
    line_no = 0
    with _open(path) as handle:
        try:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    yield line_no, parse_record(raw, f"{path}:{line_no}")
                except ValueError as exc:
                    yield line_no, LogFormatError(path, line_no, str(exc))
        except (OSError, EOFError) as exc:  # not gzip after all, or cut short: nothing after it can be read
            raise InputError(f"{path}:{line_no + 1}: cannot read the file from here ({exc})") from None


def parse_record(raw: bytes | str, source: str = "") -> LogRecord:
    try:
        obj = fastjson.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    record_id = obj.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise ValueError("'id' is required and must be a non-empty string")
    return LogRecord(
        id=record_id,
        request=_request(obj.get("request")),
        response=_optional(obj, "response", dict),
        latency_ms=_number(obj, "latency_ms"),
        ttft_ms=_number(obj, "ttft_ms"),
        status=_optional(obj, "status", int),
        error=obj.get("error"),
        timestamp=_timestamp(obj.get("timestamp")),
        metadata=_optional(obj, "metadata", dict) or {},
        source=source,
    )


def _request(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("'request' is required and must be a chat-completions request object")
    messages = value.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'request.messages' must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError(f"'request.messages[{index}]' must be an object with a 'role'")
    return value


def _optional(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"'{key}' must be {'an integer' if kind is int else 'an object'}")
    return value


def _number(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError(f"'{key}' must be a finite, non-negative number")
    return float(value)


def _timestamp(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            return value
        except ValueError:
            pass
    raise ValueError(f"'timestamp' must be an ISO 8601 string, got {value!r}")
