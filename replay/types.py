"""Frozen dataclasses passed one way between modules: reader → runner → store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ARM_CANDIDATE = "candidate"
ARM_PRODUCTION = "production"
ARM_LOGGED = "logged"
"""The production answer read from the log, stored as an arm so comparisons need no log."""


@dataclass(frozen=True)
class LogRecord:
    """One past production request, as read from a shadow log."""

    id: str
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    status: int | None = None
    error: Any = None
    timestamp: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    """``PATH:LINE`` where the record was read, for messages."""


@dataclass(frozen=True)
class ToolCall:
    id: str | None
    name: str
    arguments: str
    """The arguments exactly as the model wrote them: a JSON string, maybe invalid."""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    estimated: bool = False
    """True when the server sent no usage and the counts come from tiktoken."""


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt; a request has one or more. Backoff time is never part of latency."""

    number: int
    started_at: float
    latency_ms: float | None
    http_status: int | None
    error_class: str | None = None
    error_message: str | None = None
    retry_after_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "started_at": self.started_at,
            "latency_ms": self.latency_ms,
            "http_status": self.http_status,
            "error_class": self.error_class,
            "error_message": self.error_message,
            "retry_after_s": self.retry_after_s,
        }


@dataclass(frozen=True)
class Completion:
    """What one successful attempt returned, reassembled from the stream when streaming."""

    text: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    finish_reason: str | None = None
    usage: Usage = Usage()
    model: str | None = None
    system_fingerprint: str | None = None
    ttft_ms: float | None = None
    latency_ms: float | None = None
    response_id: str | None = None
    ratelimit_wait_s: float | None = None
    """Set when the answer's ``x-ratelimit-remaining-*`` hit 0: the arm should wait this long."""


@dataclass(frozen=True)
class Outcome:
    """The final result of one request on one arm: a completion or an error, never both."""

    request_id: str
    arm: str
    status: str
    """``ok`` or ``error``."""
    completion: Completion | None
    attempts: tuple[Attempt, ...]
    params: dict[str, Any]
    """The sampling parameters actually sent (temperature, seed, max tokens...)."""
    http_status: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    cost_usd: float | None = None
