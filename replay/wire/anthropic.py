"""The Anthropic Messages wire format: a non-streamed message or its event stream -> :class:`Completion`.

One parser for both ends, as :mod:`replay.wire.openai` is: the shadow reader normalises a
logged Messages answer with it, the Anthropic provider a live one. What the comparison
sees is OpenAI's vocabulary: text blocks joined, ``tool_use`` blocks as tool calls (their
``input`` as a JSON string), ``stop_reason`` as a finish reason (:data:`FINISH_REASONS`),
and ``prompt_tokens`` as the whole input (Anthropic's ``input_tokens`` excludes the cache
tokens; OpenAI's ``prompt_tokens`` includes them), the cache tokens kept beside it.
"""

from __future__ import annotations

import json
from typing import Any

from replay.types import Completion, ToolCall, Usage, built

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic's ``stop_reason`` as OpenAI's ``finish_reason``. A refusal is ``content_filter``
(as LiteLLM and Anthropic's OpenAI compatibility layer map it): the safety comparator
counts that finish as a refusal, so a refusing Claude compares with a refusing GPT."""
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status each error type comes with: an ``error`` event after a 200 is classified as
the answer it stands for (``overloaded_error`` mid-stream is a 529, retried)."""


def finish_reason(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(str(stop_reason), str(stop_reason)[:40])


def usage_from(usage: dict[str, Any] | None) -> Usage:
    """Anthropic usage as one record: ``prompt_tokens`` is input plus cache writes plus cache reads."""
    if not usage:
        return Usage()
    fresh = _count(usage.get("input_tokens"))
    write = _count(usage.get("cache_creation_input_tokens"))
    read = _count(usage.get("cache_read_input_tokens"))
    prompt = None if fresh is None and write is None and read is None else (fresh or 0) + (write or 0) + (read or 0)
    return built(Usage, prompt_tokens=prompt, completion_tokens=_count(usage.get("output_tokens")), estimated=False,
                 cache_write_tokens=write, cache_read_tokens=read)  # fmt: skip


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def arguments_of(tool_input: Any) -> str:
    """A ``tool_use`` block's ``input`` (an object) as OpenAI's ``arguments`` (a JSON string)."""
    return json.dumps(tool_input if tool_input is not None else {}, ensure_ascii=False)


def completion_from_message(body: dict[str, Any], *, latency_ms: float | None, ttft_ms: float | None) -> Completion:
    """Read a non-streamed Messages answer (``{"type": "message", "content": [...], ...}``)."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in body.get("content") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            calls.append(built(ToolCall, id=block.get("id"), name=str(block.get("name") or ""),
                               arguments=arguments_of(block.get("input"))))  # fmt: skip
    return _completion(texts, calls, body.get("stop_reason"), usage_from(body.get("usage")), body.get("model"),
                       body.get("id"), latency_ms, ttft_ms)  # fmt: skip


def _completion(texts: list[str], calls: list[ToolCall], stop_reason: Any, usage: Usage, model: Any,
                response_id: Any, latency_ms: float | None, ttft_ms: float | None) -> Completion:  # fmt: skip
    return built(
        Completion,
        text="".join(texts) if texts or not calls else None,
        tool_calls=tuple(calls),
        refusal=None,
        finish_reason=finish_reason(stop_reason),
        usage=usage,
        model=model if isinstance(model, str) else None,
        system_fingerprint=None,
        ttft_ms=ttft_ms,
        latency_ms=latency_ms,
        response_id=response_id if isinstance(response_id, str) else None,
        ratelimit_wait_s=None,
    )


class MessageStreamError(Exception):
    """The stream carried an ``error`` event (after the 200), or an event replay cannot read."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class MessageStream:
    """Reassembles a Messages event stream (``event:``/``data:`` lines) into one :class:`Completion`.

    Pure: feed it the body's bytes with their arrival times. TTFT is the first
    ``content_block_delta``; text deltas are joined per block, ``input_json_delta`` fragments
    concatenated per ``tool_use`` block; usage is ``message_start``'s, updated by each
    ``message_delta`` (whose counts are cumulative). ``ping`` and unknown events are skipped,
    as the official SDK skips them."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self.blocks: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.first_token_at: float | None = None
        self.started = False
        self.done = False
        self.events = 0
        self._partial = b""

    def feed_bytes(self, data: bytes, now: float) -> None:
        """Feed raw body bytes as they arrive; lines may be split across reads."""
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                self.feed_data(line[5:].strip(), now)
            if self.done:
                return

    def feed_data(self, payload: bytes, now: float) -> None:
        """One ``data:`` payload; the event's ``type`` field names it (it repeats the ``event:`` line)."""
        try:
            event = json.loads(payload)
        except ValueError:
            raise MessageStreamError(f"unreadable stream event: {payload[:80]!r}") from None
        if not isinstance(event, dict):
            raise MessageStreamError(f"unexpected stream event: {payload[:80]!r}")
        self.feed(event, now)

    def feed(self, event: dict[str, Any], now: float) -> None:
        kind = event.get("type")
        if kind == "error":
            raise _stream_error(event.get("error"))
        self.events += 1
        if kind == "message_start":
            self._start(event.get("message") or {})
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            self.blocks[_index(event)] = {"type": block.get("type"), "id": block.get("id"), "name": block.get("name"),
                                          "text": [block.get("text") or ""], "json": [], "input": block.get("input")}  # fmt: skip
        elif kind == "content_block_delta":
            self._delta(_index(event), event.get("delta") or {}, now)
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self._usage(event.get("usage"))
        elif kind == "message_stop":
            self.done = True

    def _start(self, message: dict[str, Any]) -> None:
        self.started = True
        self.model = message.get("model") if isinstance(message.get("model"), str) else None
        self.response_id = message.get("id") if isinstance(message.get("id"), str) else None
        self._usage(message.get("usage"))

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.usage.update({key: value for key, value in usage.items() if value is not None})

    def _delta(self, index: int, delta: dict[str, Any], now: float) -> None:
        if self.first_token_at is None:
            self.first_token_at = now
        block = self.blocks.setdefault(index, {"type": None, "id": None, "name": None, "text": [], "json": [], "input": None})
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"].append(delta.get("text") or "")
        elif kind == "input_json_delta":
            block["json"].append(delta.get("partial_json") or "")

    @property
    def complete(self) -> bool:
        """Whole once it said ``message_stop``, or at least gave its stop reason."""
        return self.done or self.stop_reason is not None

    def result(self, ended_at: float) -> Completion:
        texts: list[str] = []
        calls: list[ToolCall] = []
        for _, block in sorted(self.blocks.items()):
            if block["type"] == "text":
                texts.append("".join(block["text"]))
            elif block["type"] == "tool_use":
                arguments = "".join(block["json"]) or arguments_of(block["input"])
                calls.append(built(ToolCall, id=block["id"], name=str(block["name"] or ""), arguments=arguments))
        ttft = None if self.first_token_at is None else (self.first_token_at - self.started_at) * 1000
        return _completion(texts, calls, self.stop_reason, usage_from(self.usage), self.model, self.response_id,
                           (ended_at - self.started_at) * 1000, ttft)  # fmt: skip


def _index(event: dict[str, Any]) -> int:
    index = event.get("index", 0)
    return index if isinstance(index, int) else 0


def _stream_error(error: Any) -> MessageStreamError:
    error = error if isinstance(error, dict) else {"message": str(error)}
    kind = str(error.get("type") or "api_error")[:100]
    message = str(error.get("message") or "error event in stream")[:1000]
    return MessageStreamError(f"error event after the 200: {kind}: {message}", code=kind, status=ERROR_STATUS.get(kind, 500))


def error_details(body: Any) -> tuple[str, str | None]:
    """The message and type of an error body ``{"type": "error", "error": {"type", "message"}}``."""
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        message = error.get("message") or json.dumps(error)[:200]
        kind = error.get("type") or error.get("code")
        return str(message)[:1000], None if kind is None else str(kind)[:100]
    return str(error)[:200], None


def is_message(body: Any) -> bool:
    """Whether an answer is a Messages answer rather than a chat completion."""
    return isinstance(body, dict) and "choices" not in body and (body.get("type") == "message" or isinstance(body.get("content"), list))
