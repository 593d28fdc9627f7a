"""OpenAI-compatible chat completions: one attempt, streamed by default.

The Authorization header is built here from the named environment variable and goes
nowhere but the socket: not the store, not an error message.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import replace
from typing import Any

from replay import fastjson
from replay.errors import InputError
from replay.providers.base import Provider, ProviderError, register_provider
from replay.providers.http import Response, TransportFailure, check_header, make_session, proxied
from replay.providers.stream import StreamAssembler, StreamError, completion_from_body
from replay.retry import ratelimit_reset
from replay.types import Completion

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_header(name: str, value: str) -> str:
    """Replace ``${VAR}`` with the environment's value; a missing variable is an input error."""

    def lookup(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in os.environ:
            raise InputError(f"header '{name}' needs the environment variable {var}, which is not set")  # named by arm in runner.check_arm
        return os.environ[var]

    expanded = _ENV_REF.sub(lookup, value)
    try:
        check_header(name, expanded)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return expanded


def _error_details(raw: bytes) -> tuple[str, str | None]:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode(errors="replace").strip() or "(empty body)", None
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        message = error.get("message") or json.dumps(error)[:200]
        return str(message), error.get("code") or error.get("type")
    return str(error)[:200], None


@register_provider("openai")
class OpenAICompatProvider(Provider):
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
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.params = params
        self.stream = stream
        request_headers = {"content-type": "application/json", "accept": "application/json"}
        request_headers.update({name: expand_header(name, value) for name, value in (headers or {}).items()})
        if api_key:
            request_headers["authorization"] = f"Bearer {api_key}"
        if transport == "native" and proxied(self.url):
            transport = "httpx"
        self.transport = transport
        self._session = make_session(transport, request_headers, max_connections, httpx_transport)

    def build_body(self, request: dict[str, Any]) -> dict[str, Any]:
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
            response = await self._session.post(self.url, fastjson.dumps_bytes(body), timeout_s)
            try:
                completion = await self._read(response, body, started)
            finally:
                await response.close()
        except TransportFailure as exc:
            raise ProviderError(str(exc), error_class=exc.kind, latency_ms=(time.perf_counter() - started) * 1000) from None
        wait = ratelimit_reset(response.headers)
        return replace(completion, ratelimit_wait_s=wait) if wait else completion

    async def _read(self, response: Response, body: dict[str, Any], started: float) -> Completion:
        if response.status >= 400:
            message, code = _error_details(await response.read())
            raise ProviderError(
                message, status=response.status, code=code, headers=response.headers,
                latency_ms=(time.perf_counter() - started) * 1000,
            )  # fmt: skip
        if body.get("stream"):
            return await self._read_stream(response, started)
        raw = await response.read()
        try:
            parsed = fastjson.loads(raw)
        except ValueError:
            raise ProviderError(f"response is not JSON: {raw[:80]!r}", error_class="bad_response", status=response.status) from None
        return completion_from_body(parsed, started, time.perf_counter())

    async def _read_stream(self, response: Response, started: float) -> Completion:
        assembler = StreamAssembler(started)
        clock = time.perf_counter
        try:
            async for data in response.chunks():
                assembler.feed_bytes(data, clock())
                if assembler.done:
                    break
        except StreamError as exc:
            raise ProviderError(str(exc), status=exc.status, code=exc.code, error_class="stream_error") from None
        except TransportFailure as exc:
            if not assembler.complete:
                raise TransportFailure(exc.kind, f"stream broken after {assembler.chunks} chunks ({exc})") from None
        if not assembler.complete:
            raise TransportFailure(
                "truncated_stream", f"stream ended after {assembler.chunks} chunks without a finish reason or [DONE]"
            )
        return assembler.result(clock())

    async def aclose(self) -> None:
        await self._session.close()
