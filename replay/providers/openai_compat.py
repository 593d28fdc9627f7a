"""OpenAI-compatible chat completions (one attempt, streamed by default) and embeddings.

The Authorization header is built here from the named environment variable and goes
nowhere but the socket: every error message and answer passes a
:class:`~replay.secrets.Scrubber` before it leaves this module, so a key an endpoint
echoes back reaches neither the store nor the terminal.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import re
import sys
import time
from array import array
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin

from replay import __version__, fastjson
from replay.errors import InputError
from replay.providers.base import Provider, ProviderError, register_provider
from replay.providers.transports import Response, TransportFailure, check_header, make_session, proxied
from replay.providers.stream import StreamAssembler, StreamError
from replay.providers.openai_policy import DEFAULT_PARAMS, FLAGGED, api_key_for, max_output_tokens, plan_retry, ratelimit_reset, sent_params
from replay.retry import MAX_HINT_S, RetryPlan
from replay.wire.adapt import ANTHROPIC, messages_to_chat, request_format
from replay.wire.openai import completion_from_body
from replay.secrets import Scrubber
from replay.tokens import estimate_prompt_tokens
from replay.types import Completion, Embedded

if TYPE_CHECKING:
    from replay.config import Arm

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
USER_AGENT = f"replay/{__version__}"
"""Sent on every transport: some gateways and WAFs refuse requests without one."""
DEFAULT_MAX_RESPONSE_MB = 10.0
"""``limits.max_response_mb``: a larger answer is an error (``response_too_large``), read no further."""
_SSE_FIELDS = (b":", b"data:", b"event:", b"id:", b"retry:")
"""How a line of an event stream starts."""
ERROR_BODY_BYTES = 1 << 16
"""How much of an error answer is read: its message is in the first few hundred bytes."""


GATEWAY_COST = "x-litellm-response-cost"
"""A LiteLLM proxy's price of the answer in USD, by its own price map and the proxy's custom prices;
read on whole answers only: a stream's headers leave before its cost can be known."""


def header_cost(value: str) -> float | None:
    """A cost header's value in USD, None when it is no usable number (LiteLLM sends ``None``)."""
    try:
        cost = float(value)
    except ValueError:
        return None
    return cost if math.isfinite(cost) and cost >= 0 else None


def expand_header(name: str, value: str) -> str:
    """Replace ``${VAR}`` with the environment's value; a missing variable is an input error."""

    def lookup(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in os.environ:
            raise InputError(f"header '{name}' needs the environment variable {var}, which is not set")  # named by arm in check_arm
        return os.environ[var]

    expanded = _ENV_REF.sub(lookup, value)
    try:
        check_header(name, expanded)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return expanded


def header_secrets(headers: dict[str, str]) -> list[str]:
    """What the headers take from the environment: each ``${VAR}`` value, and the whole value it is part of."""
    secrets = []
    for name, value in headers.items():
        variables = _ENV_REF.findall(value)
        if variables:
            secrets += [os.environ.get(var, "") for var in variables]
            secrets.append(expand_header(name, value))
    return secrets


def _error_details(text: str) -> tuple[str, str | None]:
    """The message and code of an error body (already scrubbed: cutting it first could leave half a key).

    Reads OpenAI's ``{"error": {"message", "type", "code"}}`` and its relatives: LiteLLM's (the code
    a string of the status), OpenRouter's (a numeric code, ``metadata``), Google's (a JSON list of
    one ``{"error": {"code", "message", "status"}}``, as Gemini's OpenAI-compatible endpoint answers)."""
    try:
        body = json.loads(text)
    except ValueError:
        return text[:200].strip() or "(empty body)", None
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        body = body[0]
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        message = error.get("message") or json.dumps(error)[:200]
        return str(message)[:1000], _code(error)
    return str(error)[:200], None


def _code(error: dict[str, Any]) -> str | None:
    """What kind of error: its ``code``, unless that only repeats the HTTP status (LiteLLM's ``"429"``,
    OpenRouter's ``402``, Google's ``400``): then its ``type`` or Google's ``status`` says more."""
    code = error.get("code")
    if code is None or isinstance(code, (int, float)) or (isinstance(code, str) and code.isdigit()):
        metadata = error.get("metadata")
        if isinstance(metadata, dict) and ("flagged_input" in metadata or "reasons" in metadata):
            return FLAGGED  # OpenRouter's moderation: this input was flagged, not the arm refused
        code = error.get("type") or error.get("status") or code
    return None if code is None else str(code)[:100]


def too_large(limit: int, status: int) -> ProviderError:
    return ProviderError(
        f"answer larger than {limit / 1e6:g} MB (limits.max_response_mb): stopped reading it",
        status=status, error_class="response_too_large",
    )  # fmt: skip


@register_provider("openai")
class OpenAICompatProvider(Provider):
    default_params = DEFAULT_PARAMS
    default_api_key_env: ClassVar[str | None] = None
    """Where the key is read from when the arm names no ``api_key_env`` (Anthropic's, Azure's);
    None: such an arm sends no key."""
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        params: dict[str, Any],
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = True,
        max_connections: int = 16,
        transport: str = "native",
        httpx_transport: Any = None,
        max_response_mb: float = DEFAULT_MAX_RESPONSE_MB,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.params = params
        self.stream = stream
        self.max_response_bytes = int(max_response_mb * 1_000_000)
        request_headers = {"content-type": "application/json", "accept": "application/json", "user-agent": USER_AGENT}
        request_headers.update({name.lower(): expand_header(name, value) for name, value in (headers or {}).items()})
        if api_key:
            request_headers["authorization"] = f"Bearer {api_key}"
        self.scrubber = Scrubber([api_key, *header_secrets(headers or {})])
        if transport == "native" and proxied(self.url):
            transport = "httpx"
        self.transport = transport
        self._session = make_session(transport, request_headers, max_connections, httpx_transport, endpoint=base_url)

    @classmethod
    def from_arm(cls, name: str, arm: Arm) -> OpenAICompatProvider:
        return cls(
            base_url=arm.base_url,
            model=arm.model,
            params=arm.params,
            api_key=api_key_for(name, arm.api_key_env or cls.default_api_key_env),
            headers=arm.headers,
            stream=arm.stream,
            max_connections=arm.limits.concurrency,
            transport=arm.transport,
            max_response_mb=arm.limits.max_response_mb,
        )

    @classmethod
    def check_arm(cls, name: str, arm: Arm) -> None:
        try:
            api_key_for(name, arm.api_key_env or cls.default_api_key_env)
        except InputError as exc:
            if arm.api_key_env or cls.default_api_key_env is None:
                raise
            raise InputError(f"{exc} (provider {arm.provider} reads it unless api_key_env says otherwise)") from None
        for header, value in arm.headers.items():
            try:
                expand_header(header, value)
            except InputError as exc:
                raise InputError(f"{name}.headers.{header}: {exc}") from None

    def retry_plan(self, error: ProviderError, attempt: int, max_attempts: int, rng: random.Random) -> RetryPlan:
        return plan_retry(
            attempt=attempt, max_attempts=max_attempts, status=error.status, error_code=error.code,
            headers=error.headers, transport_error=error.transport, rng=rng,
        )  # fmt: skip

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        return estimate_prompt_tokens(body, self.model)

    def max_output_tokens(self, body: dict[str, Any]) -> int | None:
        return max_output_tokens(body)

    def sent_params(self, body: dict[str, Any]) -> dict[str, Any]:
        params = sent_params(body)
        lossy = getattr(body, "lossy", None)
        if lossy:
            params["lossy"] = list(lossy)
        return params

    def build_body(self, request: dict[str, Any]) -> dict[str, Any]:
        """The logged request with the arm's model and parameters; a logged Anthropic Messages
        request adapted to a chat request first (what that loses is in the body's ``lossy``)."""
        if request_format(request) == ANTHROPIC:
            body: dict[str, Any] = messages_to_chat(request)
        else:
            body = dict(request)  # top-level keys only change; the logged request stays untouched
        body["model"] = self.model
        body.update(self.params)
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return body

    async def send(self, body: dict[str, Any], timeout_s: float) -> Completion:
        started = time.perf_counter()
        try:
            try:
                response = await self._session.post(self.url, fastjson.dumps_bytes(body), timeout_s)
                try:
                    completion = await self._read(response, body, started)
                finally:
                    await response.close()
            except TransportFailure as exc:
                latency_ms = (time.perf_counter() - started) * 1000
                raise ProviderError(str(exc), status=exc.status, error_class=exc.kind, latency_ms=latency_ms) from None
        except ProviderError as exc:
            raise self._scrubbed(exc) from None
        completion = self.scrubber.completion(completion)
        if GATEWAY_COST in response.headers and completion.cost_usd is None and not body.get("stream"):
            completion = replace(completion, cost_usd=header_cost(response.headers[GATEWAY_COST]))
        wait = self._ratelimit_wait(response.headers)
        return replace(completion, ratelimit_wait_s=wait) if wait else completion

    def _ratelimit_wait(self, headers: dict[str, str]) -> float | None:
        """How long the arm should wait after this answer: its rate-limit headers say a limit is spent
        (at most :data:`~replay.retry.MAX_HINT_S`, as for a retry's hint)."""
        wait = ratelimit_reset(headers)
        return None if wait is None else min(wait, MAX_HINT_S)

    def _text(self, raw: bytes) -> str:
        """What an endpoint sent, as text without the arm's secrets."""
        return self.scrubber.text(raw.decode("utf-8", errors="replace"))

    def excerpt(self, raw: bytes) -> str:
        return repr(self._text(raw[:4096])[:80])

    def _scrubbed(self, error: ProviderError) -> ProviderError:
        scrub = self.scrubber
        return ProviderError(
            scrub.text(error.message), status=error.status, code=scrub.optional(error.code),
            error_class=error.error_class, headers=error.headers, latency_ms=error.latency_ms,
        )  # fmt: skip

    async def _read(self, response: Response, body: dict[str, Any], started: float) -> Completion:
        status, headers = response.status, response.headers
        if status >= 400:
            text = self._text(await self._body(response, ERROR_BODY_BYTES, cut=True))
            raise self.http_error(status, headers, text, (time.perf_counter() - started) * 1000)
        if 300 <= status < 400:
            raise self._redirect(status, headers)
        self._check_answer(status, headers)
        if body.get("stream"):  # whatever the content type says: a server may label a stream as JSON, or answer JSON
            return await self._read_stream(response, started)
        return self._whole(await self._body(response, self.max_response_bytes), status, headers, started)

    def http_error(self, status: int, headers: dict[str, str], text: str, latency_ms: float) -> ProviderError:
        """The failed attempt an error answer (``text``, already scrubbed) stands for; a provider
        whose API says more in its error bodies (Gemini's retry delay) reads it here."""
        message, code = _error_details(text)
        return ProviderError(message, status=status, code=code, headers=headers, latency_ms=latency_ms)

    def _redirect(self, status: int, headers: dict[str, str]) -> ProviderError:
        location = headers.get("location")
        target = self.scrubber.text(urljoin(self.url, location))[:500] if location else "nowhere (no Location header)"
        return ProviderError(
            f"redirect to {target}: replay does not follow redirects; fix base_url",
            status=status, error_class="redirect", headers=headers,
        )  # fmt: skip

    def _check_answer(self, status: int, headers: dict[str, str]) -> None:
        """Refuse before reading what cannot be read: an encoding this client does not decode, a declared size over the cap."""
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.strip().lower() not in self._session.decodes | {"identity"}:
            raise ProviderError(
                f"the server compressed its answer with {encoding.strip().lower()[:40]!r}, which the {self.transport}"
                f" transport cannot decode (it accepts {', '.join(sorted(self._session.decodes)) or 'identity'})",
                status=status, error_class="bad_response",
            )  # fmt: skip
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_response_bytes:
            raise too_large(self.max_response_bytes, status)

    async def _body(self, response: Response, limit: int, cut: bool = False) -> bytes:
        """The whole body, at most ``limit`` bytes: past it, ``response_too_large`` (or, with ``cut``, what came so far)."""
        parts, size = [], 0
        async for data in response.chunks():
            size += len(data)
            if size > limit:
                if cut:
                    parts.append(data[: limit - size + len(data)])
                    break
                raise too_large(limit, response.status)
            parts.append(data)
        return b"".join(parts)

    def _whole(self, raw: bytes, status: int, headers: dict[str, str], started: float) -> Completion:
        try:
            parsed = fastjson.loads(raw)
        except ValueError:
            raise ProviderError(f"response is not JSON: {self.excerpt(raw)}", error_class="bad_response", status=status) from None
        if not isinstance(parsed, dict) or ("choices" not in parsed and "error" in parsed):
            message, code = _error_details(self._text(raw))
            raise ProviderError(f"not a chat completion: {message}", status=status, code=code, error_class="bad_response")
        if parsed.get("error"):  # an error met after the 200, in the answer (OpenRouter's): a failed attempt, retried
            message, code = _error_details(self._text(raw))
            raise ProviderError(message, code=code, error_class="stream_error")
        latency = (time.perf_counter() - started) * 1000
        return completion_from_body(parsed, latency_ms=latency, ttft_ms=latency)

    async def _read_stream(self, response: Response, started: float) -> Completion:
        assembler = StreamAssembler(started)
        clock = time.perf_counter
        limit, size = self.max_response_bytes, 0
        before_events: list[bytes] = []  # what arrived before the first event: the body, when the server did not stream
        try:
            async for data in response.chunks():
                size += len(data)
                if size > limit:
                    raise too_large(limit, response.status)
                if not assembler.chunks:
                    before_events.append(data)
                assembler.feed_bytes(data, clock())
                if assembler.done:
                    break
        except StreamError as exc:
            raise ProviderError(str(exc), status=exc.status, code=exc.code, error_class="stream_error") from None
        except TransportFailure as exc:
            if exc.status is not None:  # an answer that cannot be read (bad_response), not a broken stream
                raise
            if not assembler.complete:
                raise TransportFailure(exc.kind, f"stream broken after {assembler.chunks} chunks ({exc})") from None
        if assembler.complete:
            return assembler.result(clock())
        raw = b"".join(before_events).strip()
        if not assembler.chunks and raw:
            return self.not_streamed(raw, response.status, response.headers, started)
        raise TransportFailure(
            "truncated_stream", f"stream ended after {assembler.chunks} chunks without a finish reason or [DONE]"
        )

    def not_streamed(self, raw: bytes, status: int, headers: dict[str, str], started: float) -> Completion:
        """A streamed request answered with a whole body: a JSON completion is the answer; anything else is named."""
        if raw[:1] == b"{":
            return self._whole(raw, status, headers, started)
        kind = headers.get("content-type") or "no content type"
        if "event-stream" in kind or raw.startswith(_SSE_FIELDS):  # a stream, only comments so far: cut short
            raise TransportFailure("truncated_stream", "stream ended after 0 chunks without a finish reason or [DONE]")
        raise ProviderError(
            f"expected an event stream, got {kind[:60]}: {self.excerpt(raw)}", status=status, error_class="bad_response"
        )

    async def aclose(self) -> None:
        await self._session.close()


class OpenAIEmbeddingsProvider(OpenAICompatProvider):
    """OpenAI-compatible ``/v1/embeddings``: many texts a call, one float32 vector each.

    The chat provider's sibling: the same key, headers, scrubbing, transports, error bodies,
    answer cap and retry policy; only the path, the body and the answer differ. Floats are
    asked for (every compatible server speaks them); a base64 answer is read too."""

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None, headers: dict[str, str] | None = None,
                 max_connections: int = 16, transport: str = "native", max_response_mb: float = DEFAULT_MAX_RESPONSE_MB,
                 httpx_transport: Any = None) -> None:  # fmt: skip
        super().__init__(base_url=base_url, model=model, params={}, api_key=api_key, headers=headers, stream=False,
                         max_connections=max_connections, transport=transport, httpx_transport=httpx_transport,
                         max_response_mb=max_response_mb)  # fmt: skip
        self.url = base_url.rstrip("/") + "/embeddings"

    @classmethod
    def for_endpoint(cls, name: str, arm: Arm) -> OpenAIEmbeddingsProvider:
        return cls(base_url=arm.base_url, model=arm.model, api_key=api_key_for(name, arm.api_key_env), headers=arm.headers,
                   max_connections=arm.limits.concurrency, transport=arm.transport,
                   max_response_mb=arm.limits.max_response_mb)  # fmt: skip

    def embeddings_body(self, texts: list[str]) -> dict[str, Any]:
        return {"model": self.model, "input": texts}

    async def embed(self, body: dict[str, Any], timeout_s: float) -> Embedded:
        """Send one attempt of an embeddings request; raise :class:`ProviderError` on any failure."""
        started = time.perf_counter()
        try:
            try:
                response = await self._session.post(self.url, fastjson.dumps_bytes(body), timeout_s)
                try:
                    raw, status, headers = await self._embedding_body(response, started), response.status, response.headers
                finally:
                    await response.close()
            except TransportFailure as exc:
                latency_ms = (time.perf_counter() - started) * 1000
                raise ProviderError(str(exc), status=exc.status, error_class=exc.kind, latency_ms=latency_ms) from None
            embedded = self._vectors(raw, len(body["input"]), status, (time.perf_counter() - started) * 1000)
        except ProviderError as exc:
            raise self._scrubbed(exc) from None
        wait = self._ratelimit_wait(headers)
        return replace(embedded, ratelimit_wait_s=wait) if wait else embedded

    async def _embedding_body(self, response: Response, started: float) -> bytes:
        status = response.status
        if status >= 400:
            message, code = _error_details(self._text(await self._body(response, ERROR_BODY_BYTES, cut=True)))
            raise ProviderError(message, status=status, code=code, headers=response.headers,
                                latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
        if 300 <= status < 400:
            raise self._redirect(status, response.headers)
        self._check_answer(status, response.headers)
        return await self._body(response, self.max_response_bytes)

    def _vectors(self, raw: bytes, count: int, status: int, latency_ms: float) -> Embedded:
        try:
            parsed = fastjson.loads(raw)
        except ValueError:
            raise ProviderError(f"response is not JSON: {self.excerpt(raw)}", error_class="bad_response", status=status) from None
        items = parsed.get("data") if isinstance(parsed, dict) else None
        if not isinstance(items, list):
            message, code = _error_details(self._text(raw))
            raise ProviderError(f"not an embeddings answer: {message}", status=status, code=code, error_class="bad_response")
        try:
            vectors = _ordered_vectors(items, count)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ProviderError(f"not an embeddings answer: {exc}", status=status, error_class="bad_response") from None
        usage = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else {}
        tokens = usage.get("prompt_tokens")
        dims = len(vectors[0]) // 4 if vectors else 0
        return Embedded(tuple(vectors), dims, tokens if isinstance(tokens, int) else None, latency_ms)


def _ordered_vectors(items: list[Any], count: int) -> list[bytes]:
    """The vectors by their ``index`` as float32 bytes; any gap, duplicate, length mismatch or
    non-finite number is a ValueError naming it."""
    if len(items) != count:
        raise ValueError(f"{len(items)} vectors for {count} inputs")
    by_index: dict[int, bytes] = {}
    for position, item in enumerate(items):
        index = item.get("index", position) if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count or index in by_index:
            raise ValueError(f"item {position} has no usable index")
        by_index[index] = _float32(item.get("embedding"))
    vectors = [by_index[index] for index in range(count)]
    if len({len(vector) for vector in vectors}) > 1 or not vectors[0]:
        raise ValueError("the vectors are empty or differ in length")
    return vectors


def _float32(embedding: Any) -> bytes:
    if isinstance(embedding, str):  # encoding_format: base64, little-endian float32
        packed = array("f", base64.b64decode(embedding, validate=True))
    elif isinstance(embedding, list) and all(type(x) in (int, float) for x in embedding):
        packed = array("f", embedding)
    else:
        raise ValueError("an embedding is neither a list of numbers nor base64")
    if sys.byteorder == "big":
        packed.byteswap()
    if not all(map(math.isfinite, packed)):
        raise ValueError("an embedding holds a number beyond float32")
    return packed.tobytes()
