"""The Anthropic Messages API (``provider: anthropic``): one attempt, streamed by default.

The transport, the size caps, redirects and secret scrubbing are the OpenAI-compatible
provider's (this class extends it); what differs is the wire format
(:mod:`replay.wire.anthropic`), the policy (:mod:`.anthropic_policy`) and the request: a
logged OpenAI chat request is adapted (:func:`replay.wire.adapt.chat_to_messages`), a
logged Messages request sent as it is. The key goes in ``x-api-key`` from the arm's
``api_key_env`` (default ``ANTHROPIC_API_KEY``) as a ``${VAR}`` header, so the
:class:`~replay.secrets.Scrubber` knows it: an endpoint echoing it stores and prints
``[REDACTED]``.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from replay import fastjson
from replay.providers.anthropic_policy import (
    API_VERSION, DEFAULT_API_KEY_ENV, DEFAULT_MAX_TOKENS, DEFAULT_PARAMS, plan_retry, ratelimit_reset,
)  # fmt: skip
from replay.providers.base import ProviderError, register_provider
from replay.providers.openai_compat import DEFAULT_MAX_RESPONSE_MB, OpenAICompatProvider, too_large
from replay.providers.transports import Response, TransportFailure
from replay.retry import RetryPlan
from replay.tokens import count_text_tokens, estimate_prompt_tokens
from replay.types import Completion
from replay.wire.adapt import OPENAI, AdaptedBody, adapted, chat_to_messages, request_format
from replay.wire.anthropic import MessageStream, MessageStreamError, completion_from_message, error_details, is_message

if TYPE_CHECKING:
    from replay.config import Arm

PROMPT_KEYS = frozenset({"messages", "system", "tools"})
"""What a Messages request says besides its parameters."""


@register_provider("anthropic")
class AnthropicProvider(OpenAICompatProvider):
    default_api_key_env = DEFAULT_API_KEY_ENV
    default_params = DEFAULT_PARAMS

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        params: dict[str, Any],
        api_key_env: str = DEFAULT_API_KEY_ENV,
        headers: dict[str, str] | None = None,
        stream: bool = True,
        max_connections: int = 16,
        transport: str = "native",
        httpx_transport: Any = None,
        max_response_mb: float = DEFAULT_MAX_RESPONSE_MB,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        sent = {"x-api-key": "${%s}" % api_key_env, "anthropic-version": API_VERSION, **(headers or {})}
        super().__init__(base_url=base_url, model=model, params=params, headers=sent, stream=stream,
                         max_connections=max_connections, transport=transport, httpx_transport=httpx_transport,
                         max_response_mb=max_response_mb)  # fmt: skip
        self.url = base_url.rstrip("/") + "/messages"
        self.default_max_tokens = default_max_tokens

    @classmethod
    def from_arm(cls, name: str, arm: Arm) -> AnthropicProvider:
        cls.check_arm(name, arm)
        return cls(
            base_url=arm.base_url, model=arm.model, params=arm.params, api_key_env=arm.api_key_env or DEFAULT_API_KEY_ENV,
            headers=arm.headers, stream=arm.stream, max_connections=arm.limits.concurrency, transport=arm.transport,
            max_response_mb=arm.limits.max_response_mb, default_max_tokens=arm.default_max_tokens or DEFAULT_MAX_TOKENS,
        )  # fmt: skip

    def retry_plan(self, error: ProviderError, attempt: int, max_attempts: int, rng: random.Random) -> RetryPlan:
        return plan_retry(
            attempt=attempt, max_attempts=max_attempts, status=error.status, error_type=error.code, message=error.message,
            headers=error.headers, transport_error=error.transport, rng=rng,
        )  # fmt: skip

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        system = body.get("system")
        text = system if isinstance(system, str) else "".join(str(b.get("text", "")) for b in system or () if isinstance(b, dict))
        return estimate_prompt_tokens(body, self.model) + count_text_tokens(text, self.model)

    def max_output_tokens(self, body: dict[str, Any]) -> int | None:
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(body.get(key), int):
                return int(body[key])
        return None

    def sent_params(self, body: dict[str, Any]) -> dict[str, Any]:
        params = {key: value for key, value in body.items() if key not in PROMPT_KEYS}
        lossy = getattr(body, "lossy", ())
        if lossy:
            params["lossy"] = list(lossy)
        return params

    def build_body(self, request: dict[str, Any]) -> dict[str, Any]:
        if request_format(request) == OPENAI:
            body = chat_to_messages(request, self.default_max_tokens)
        else:
            body = adapted(request, [])
            body.setdefault("max_tokens", self.default_max_tokens)
        body["model"] = self.model
        body.update(self.params)
        body.lossy = _overridden(body.lossy, self.params)
        if self.stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        return body

    async def send(self, body: dict[str, Any], timeout_s: float) -> Completion:
        completion = await super().send(body, timeout_s)
        return _answer_from_tool(completion, getattr(body, "answer_tool", None))

    def _ratelimit_wait(self, headers: dict[str, str]) -> float | None:
        return ratelimit_reset(headers)

    def _whole(self, raw: bytes, status: int, headers: dict[str, str], started: float) -> Completion:
        try:
            parsed = fastjson.loads(raw)
        except ValueError:
            raise ProviderError(f"response is not JSON: {self.excerpt(raw)}", error_class="bad_response", status=status) from None
        if not is_message(parsed):
            message, code = error_details(parsed)
            raise ProviderError(f"not a message: {self.scrubber.text(message)}", status=status, code=code,
                                error_class="bad_response")  # fmt: skip
        latency = (time.perf_counter() - started) * 1000
        return completion_from_message(parsed, latency_ms=latency, ttft_ms=latency)

    async def _read_stream(self, response: Response, started: float) -> Completion:
        stream = MessageStream(started)
        clock = time.perf_counter
        limit, size = self.max_response_bytes, 0
        before_events: list[bytes] = []  # what arrived before the first event: the body, when the server did not stream
        try:
            async for data in response.chunks():
                size += len(data)
                if size > limit:
                    raise too_large(limit, response.status)
                if not stream.events:
                    before_events.append(data)
                stream.feed_bytes(data, clock())
                if stream.done:
                    break
        except MessageStreamError as exc:
            raise ProviderError(str(exc), status=exc.status, code=exc.code, error_class="stream_error") from None
        except TransportFailure as exc:
            if exc.status is not None:  # an answer that cannot be read (bad_response), not a broken stream
                raise
            if not stream.complete:
                raise TransportFailure(exc.kind, f"stream broken after {stream.events} events ({exc})") from None
        if stream.complete:
            return stream.result(clock())
        raw = b"".join(before_events).strip()
        if not stream.events and raw:
            return self.not_streamed(raw, response.status, response.headers, started)
        raise TransportFailure("truncated_stream", f"stream ended after {stream.events} events without message_stop")


def _overridden(lossy: tuple[str, ...], params: dict[str, Any]) -> tuple[str, ...]:
    """The notes left once the arm's ``params`` are applied: a note about a key they set is moot."""
    return tuple(note for note in lossy if note.split(" ", 1)[0] not in params)


def _answer_from_tool(completion: Completion, answer_tool: str | None) -> Completion:
    """A JSON ``response_format`` sent as a forced tool: the tool's input is the answer's text,
    as the OpenAI side would have answered it (finish ``stop``, no tool call)."""
    if answer_tool is None or len(completion.tool_calls) != 1 or completion.tool_calls[0].name != answer_tool:
        return completion
    finish = "stop" if completion.finish_reason == "tool_calls" else completion.finish_reason
    return replace(completion, text=completion.tool_calls[0].arguments, tool_calls=(), finish_reason=finish)


__all__ = ["AdaptedBody", "AnthropicProvider"]
