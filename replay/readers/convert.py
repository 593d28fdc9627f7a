"""``replay logs convert --to shadow``: any readable log written as the canonical shadow format.

The logged answer is written as the chat-completion body the run reads it as (text, tool calls,
refusal, finish reason, usage, model, id), whatever the source's own shape was.
"""

from __future__ import annotations

import os
from typing import IO, Any, Callable

import orjson

from replay.errors import InputError, LogFormatError
from replay.readers.base import ReadStats, iter_records
from replay.types import Completion, LogRecord

TARGETS = ("shadow",)


def shadow_line(record: LogRecord) -> dict[str, Any]:
    line: dict[str, Any] = {"id": record.id, "request": record.request}
    answer = record.answer
    if answer is not None:
        line["response"] = _body(answer)
    for key in ("latency_ms", "ttft_ms", "status", "error", "timestamp"):
        value = getattr(record, key)
        if value is not None:
            line[key] = value
    if record.metadata:
        line["metadata"] = record.metadata
    return line


def _body(answer: Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if answer.refusal is not None:
        message["refusal"] = answer.refusal
    if answer.tool_calls:
        message["tool_calls"] = [{"id": call.id, "type": "function",
                                  "function": {"name": call.name, "arguments": call.arguments}}
                                 for call in answer.tool_calls]  # fmt: skip
    body: dict[str, Any] = {"object": "chat.completion", "choices": [
        {"index": 0, "message": message, "finish_reason": answer.finish_reason}]}  # fmt: skip
    for key, value in (("id", answer.response_id), ("model", answer.model), ("system_fingerprint", answer.system_fingerprint)):
        if value is not None:
            body[key] = value
    usage = answer.usage
    if usage.prompt_tokens is not None or usage.completion_tokens is not None:
        body["usage"] = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
    return body


def convert(paths: list[str], out: str, *, fmt: str = "auto", to: str = "shadow", skip_invalid: bool = False,
            stats: ReadStats | None = None, on_invalid: Callable[[LogFormatError], None] | None = None) -> int:  # fmt: skip
    """Write every record of ``paths`` to ``out`` (``-``: stdout); the file appears whole or not at all."""
    if to not in TARGETS:
        raise InputError(f"--to: unknown target '{to}' (known: {', '.join(TARGETS)})")
    if out != "-" and any(os.path.realpath(out) == os.path.realpath(path) for path in paths):
        raise InputError(f"-o: '{out}' is one of the inputs: write to another file")
    records = iter_records(paths, fmt=fmt, skip_invalid=skip_invalid, stats=stats, on_invalid=on_invalid)
    if out == "-":
        import sys

        return _write(records, sys.stdout.buffer)
    partial = f"{out}.partial"
    try:
        with open(partial, "wb") as handle:
            count = _write(records, handle)
        os.replace(partial, out)
    except OSError as exc:
        raise InputError(f"{out}: cannot write ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return count


def _write(records: Any, handle: IO[bytes]) -> int:
    count = 0
    for record in records:
        handle.write(orjson.dumps(shadow_line(record)) + b"\n")
        count += 1
    return count
