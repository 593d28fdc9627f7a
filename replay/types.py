"""Frozen dataclasses passed one way between modules: reader → runner → store."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

T = TypeVar("T")

def built(cls: type[T], **values: Any) -> T:
    """An instance of the frozen dataclass ``cls`` from all its field values, without its
    ``__init__``: a frozen init pays an ``object.__setattr__`` per field, and the readers
    build several objects per log line. Fields left out read their class default; a field
    with a ``default_factory`` has none, so pass every such field."""
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


ARM_CANDIDATE = "candidate"
ARM_PRODUCTION = "production"
ARM_LOGGED = "logged"
"""The production answer read from the log, stored as an arm so comparisons need no log."""
ARM_NOISE = "noise"
"""Production asked a second time, for the noise floor's sub-sample: how much production
differs from itself (and, against the logged answers, from what it answered then)."""

PAIR_CANDIDATE = "candidate"
"""A candidate-vs-baseline pair: what the gates decide on."""
PAIR_NOISE = "noise"
"""A production-vs-production pair (the baseline and the ``noise`` arm): the noise floor."""
PAIR_KINDS = (PAIR_CANDIDATE, PAIR_NOISE)
COMPARED_ARM = {PAIR_CANDIDATE: ARM_CANDIDATE, PAIR_NOISE: ARM_NOISE}
"""The arm each kind of pair compares with the baseline."""


@dataclass(frozen=True)
class Location:
    """Where a record was read: a file and a line (JSON Lines) or a record index (a JSON
    array, a database table...). Its text is what messages print: ``PATH:LINE``."""

    path: str
    line: int | None = None
    index: int | None = None
    """The record's position in a source without lines, counted from 0."""

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        if self.index is not None:
            return f"{self.path}[{self.index}]"
        return self.path


@dataclass(frozen=True)
class LogRecord:
    """One past production request, as a reader hands it over: the request as sent, the
    logged answer already normalised into a provider-neutral :class:`Completion`."""

    id: str
    request: dict[str, Any]
    read_answer: Callable[[], Completion | None] = field(default=lambda: None, repr=False, compare=False)
    """Reads the logged answer: bound by the reader to its format's parser and the raw answer."""
    latency_ms: float | None = None
    ttft_ms: float | None = None
    status: int | None = None
    error: Any = None
    timestamp: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    location: Location = Location("")
    """Where the record was read, for messages."""

    @functools.cached_property
    def answer(self) -> Completion | None:
        """The logged production answer (its timing from the log), None when the log has none.

        Read on first use: checking a log (``logs validate``, a run's first pass) never
        looks at the answers, and normalising each would slow the reader."""
        return self.read_answer()


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
    cache_write_tokens: int | None = None
    """Of ``prompt_tokens``, those written to the prompt cache (Anthropic's
    ``cache_creation_input_tokens``), priced at the model's ``cache_write`` rate."""
    cache_read_tokens: int | None = None
    """Of ``prompt_tokens``, those read from the prompt cache (``cache_read_input_tokens``),
    priced at the model's ``cache_read`` rate."""


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
    cost_usd: float | None = None
    """What the endpoint itself says this answer cost (OpenRouter's ``usage.cost``, a LiteLLM proxy's
    ``x-litellm-response-cost``): it wins over the price table. None when it says nothing."""


@dataclass(frozen=True)
class Embedded:
    """What one successful embeddings attempt returned: a vector per input, in the inputs' order."""

    vectors: tuple[bytes, ...]
    """Each a little-endian float32 array of ``dims`` numbers (4 bytes a number)."""
    dims: int
    prompt_tokens: int | None = None
    latency_ms: float | None = None
    ratelimit_wait_s: float | None = None


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
