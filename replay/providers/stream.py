"""Reassemble an OpenAI chat-completions SSE stream into one :class:`Completion`.

Pure: feed it decoded ``data:`` payloads with their arrival times. Content is
concatenated, tool-call fragments are joined by ``index``, the finish reason and the
usage chunk (``choices: []``, or ``null`` from vLLM-style servers; with a ``cost`` from
OpenRouter) are kept. Comment lines (``: OPENROUTER PROCESSING``, keep-alives) are skipped. TTFT is
the first chunk carrying non-empty content, a tool call or a refusal.
"""

from __future__ import annotations

import json
from typing import Any

from replay import fastjson
from replay.types import Completion, ToolCall
from replay.wire.openai import reported_cost, usage_from


class StreamError(Exception):
    """The stream carried an error event, or ended before it was complete."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class StreamAssembler:
    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.fingerprint: str | None = None
        self.response_id: str | None = None
        self.first_token_at: float | None = None
        self.done = False
        self.chunks = 0
        self._partial = b""

    def feed_bytes(self, data: bytes, now: float) -> None:
        """Feed raw body bytes as they arrive; lines may be split across reads."""
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if line:
                self.feed_line(line, now)
            if self.done:
                return

    def feed_line(self, line: bytes, now: float) -> None:
        """Feed one line of the event stream (``data: ...``, comments and blanks ignored)."""
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return
        try:
            chunk = fastjson.loads(payload)
        except json.JSONDecodeError:
            raise StreamError(f"unreadable stream event: {payload[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise StreamError(f"unexpected stream event: {payload[:80]!r}")
        self.feed(chunk, now)

    def feed(self, chunk: dict[str, Any], now: float) -> None:
        if "error" in chunk and chunk["error"]:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            raise StreamError(str(error.get("message", "error event in stream")), code=error.get("code"))
        self.chunks += 1
        self.model = chunk.get("model") or self.model
        self.fingerprint = chunk.get("system_fingerprint") or self.fingerprint
        self.response_id = chunk.get("id") or self.response_id
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            self._delta(choice.get("delta") or {}, now)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _delta(self, delta: dict[str, Any], now: float) -> None:
        produced = False
        if delta.get("content"):
            self.text.append(delta["content"])
            produced = True
        if delta.get("refusal"):
            self.refusal.append(delta["refusal"])
            produced = True
        for fragment in delta.get("tool_calls") or ():
            slot = self.tools.setdefault(fragment.get("index", 0), {"id": None, "name": "", "arguments": ""})
            function = fragment.get("function") or {}
            slot["id"] = fragment.get("id") or slot["id"]
            slot["name"] += function.get("name") or ""
            slot["arguments"] += function.get("arguments") or ""
            produced = True
        if produced and self.first_token_at is None:
            self.first_token_at = now

    @property
    def complete(self) -> bool:
        """A stream is whole once it said [DONE], or at least gave its finish reason."""
        return self.done or self.finish_reason is not None

    def result(self, ended_at: float) -> Completion:
        tool_calls = tuple(
            ToolCall(id=slot["id"], name=slot["name"], arguments=slot["arguments"])
            for _, slot in sorted(self.tools.items())
        )
        return Completion(
            text="".join(self.text) if self.text or not tool_calls else None,
            tool_calls=tool_calls,
            refusal="".join(self.refusal) or None,
            finish_reason=self.finish_reason,
            usage=usage_from(self.usage),
            model=self.model,
            system_fingerprint=self.fingerprint,
            ttft_ms=None if self.first_token_at is None else (self.first_token_at - self.started_at) * 1000,
            latency_ms=(ended_at - self.started_at) * 1000,
            response_id=self.response_id,
            cost_usd=reported_cost(self.usage),
        )
