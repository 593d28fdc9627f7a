"""Local servers in the dialects of the gateways and endpoints people put in front of models, on
127.0.0.1: a LiteLLM proxy, OpenRouter, Gemini's OpenAI-compatible endpoint and a local server
(vLLM, llama.cpp, Ollama) that sends no usage in its streams. Each is the mock server with that
endpoint's paths, key check, error bodies and headers, in the shapes their documentation gives.

A directive in the last user message scripts an error, N times: ``[litellm:429*1]``,
``[litellm:budget*1]``; ``[openrouter:402*1]``, ``[openrouter:flagged*1]``, ``[openrouter:midstream*1]``;
``[gemini:429*1]`` (with a ``RetryInfo``), ``[gemini:daily*1]`` (a per-day ``QuotaFailure``).
"""

from __future__ import annotations

import json
import re

from replay.mockserver import MockServer, ServerConfig, last_user_text

_DIRECTIVE = re.compile(r"\[(litellm|openrouter|gemini):([a-z0-9]+)\*(\d+)\]")


class DialectServer(MockServer):
    """The mock server behind a key check and the scripted errors of one dialect."""

    key = ""
    paths: tuple[str, ...] = ("/v1/chat/completions",)

    def __init__(self, **config) -> None:
        super().__init__(ServerConfig(latency_ms=5, **config))
        self.requests: list[dict] = []
        """Per request: the path, the headers and the body."""
        self._scripted: dict[str, int] = {}

    async def _handle(self, method, path, headers, raw, writer):
        body = json.loads(raw) if raw else {}
        self.requests.append({"path": path, "headers": dict(headers), "body": body})
        if method != "POST" or path not in self.paths:
            await self._send_json(writer, 404, {"error": {"message": f"no route {path}", "code": 404}})
            return True
        if self.key and headers.get("authorization") != f"Bearer {self.key}":
            status, error = self.unauthorized(headers.get("authorization", ""))
            await self._send_json(writer, status, error)
            return True
        scripted = self._scripted_error(body)
        if scripted is not None:
            status, error, extra = scripted
            await self._send(writer, status, error, extra)
            return True
        refused = self.refused(body)
        if refused is not None:
            await self._send(writer, 400, refused, {})
            return True
        return await super()._handle(method, path, headers, raw, writer)

    async def _send(self, writer, status, error, extra) -> None:
        data = json.dumps(error).encode()
        head = "".join(f"{name}: {value}\r\n" for name, value in extra.items())
        writer.write(f"HTTP/1.1 {status} Error\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n"
                     f"{head}\r\n".encode() + data)  # fmt: skip
        await writer.drain()

    def _scripted_error(self, body):
        prompt = last_user_text(body)
        match = _DIRECTIVE.search(prompt)
        if not match or self._scripted.get(prompt, 0) >= int(match.group(3)):
            return None
        self._scripted[prompt] = self._scripted.get(prompt, 0) + 1
        return self.error(match.group(2), body)

    def unauthorized(self, authorization: str) -> tuple[int, object]:
        return 401, {"error": {"message": "unauthorized", "code": 401}}

    def error(self, kind: str, body: dict) -> tuple[int, object, dict[str, str]]:
        raise ValueError(f"no scripted error {kind!r}")

    def refused(self, body: dict) -> object | None:
        """The 400 body for a request carrying a parameter this endpoint refuses, None otherwise."""
        return None


class LiteLLMProxy(DialectServer):
    """A LiteLLM proxy: ``/chat/completions`` and ``/v1/chat/completions``, a virtual key, errors as
    ``{"error": {"message", "type", "param", "code": "429"}}`` (the code a string), and on every
    answer its ``x-litellm-*`` headers (a stream's cost header says 0: its headers leave first)."""

    key = "sk-" + "litellm-virtual-0123456789abcdef"  # built: no tracked file holds a key-shaped string
    paths = ("/chat/completions", "/v1/chat/completions")
    COST = "0.000512"
    ROUTED = "gpt-4o-mini-2024-07-18"

    def __init__(self, **config) -> None:
        headers = {"x-litellm-model-id": "b1946ac92492d2347c6235b4d2611184", "x-litellm-model-group": "support-model",
                   "x-litellm-model-api-base": "https://api.openai.com", "x-litellm-response-duration-ms": "212.5",
                   "x-ratelimit-remaining-requests": "9999", "x-ratelimit-limit-requests": "10000"}  # fmt: skip
        super().__init__(headers=headers, model=self.ROUTED, **config)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"  # the proxy's root: it serves /chat/completions there too

    async def _send_json(self, writer, status, payload, headers=None):
        if status == 200 and "choices" in payload:  # a whole answer: its cost is known when its headers leave
            headers = {**(headers or {}), "x-litellm-response-cost": self.COST}
        await super()._send_json(writer, status, payload, headers)

    async def _stream(self, writer, body, *args, **kwargs):
        self.config.headers["x-litellm-response-cost"] = "0.0"  # a stream's headers leave before its cost is known
        return await super()._stream(writer, body, *args, **kwargs)

    def unauthorized(self, authorization):
        received = authorization.removeprefix("Bearer ")  # the proxy quotes the key it was given
        message = f"Authentication Error, Invalid proxy server token passed. Received API Key = {received}, Key Hash (Token) =None. Unable to find token in cache or `LiteLLM_VerificationTokenTable`"
        return 401, {"error": {"message": message, "type": "auth_error", "param": "None", "code": "401"}}

    def error(self, kind, body):
        if kind == "429":
            message = "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for gpt-4o-mini"
            return 429, {"error": {"message": message, "type": "throttling_error", "param": None, "code": "429"}}, {"retry-after": "0.05"}
        if kind == "budget":
            message = "Budget has been exceeded! Current cost: 5.0021, Max budget: 5.0"
            return 400, {"error": {"message": message, "type": "budget_exceeded", "param": None, "code": "400"}}, {}
        return super().error(kind, body)


class OpenRouter(DialectServer):
    """OpenRouter: ``/api/v1/chat/completions``, ``: OPENROUTER PROCESSING`` comments in its streams,
    ``usage.cost`` in credits (US dollars) on every answer, ``{"error": {"code": 402, "message",
    "metadata"}}`` errors, and errors after the 200 as an SSE event with ``finish_reason: error``."""

    key = "sk-or-" + "v1-0123456789abcdef0123456789abcdef"
    paths = ("/api/v1/chat/completions",)
    COST = 0.00087

    def __init__(self, **config) -> None:
        super().__init__(comments=True, usage_extra={"cost": self.COST, "is_byok": False,
                                                     "prompt_tokens_details": {"cached_tokens": 0}}, **config)  # fmt: skip

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/v1"

    def error(self, kind, body):
        if kind == "402":
            message = "This request requires more credits, or fewer max_tokens. You requested up to 50 tokens, but can only afford 12."
            return 402, {"error": {"code": 402, "message": message, "metadata": {"limit_source": "openrouter_credits"}}}, {}
        if kind == "flagged":
            metadata = {"reasons": ["harassment"], "flagged_input": "...", "provider_name": "OpenAI", "model_slug": body.get("model")}
            return 403, {"error": {"code": 403, "message": "openai/gpt-4o requires moderation on OpenAI. Your input was flagged for \"harassment\".", "metadata": metadata}}, {}
        return super().error(kind, body)

    async def _answer(self, writer, body, prompt, directive):
        match = _DIRECTIVE.search(prompt)
        if match and match.group(2) == "midstream" and self._scripted.get(prompt, 0) < int(match.group(3)):
            self._scripted[prompt] = self._scripted.get(prompt, 0) + 1
            if body.get("stream"):
                await self._midstream_error(writer, body)
            else:  # a whole answer carries the error in its body, with a 200
                await self._send_json(writer, 200, {
                    "id": "gen-1", "object": "chat.completion", "model": body["model"], "provider": "OpenAI",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "error"}],
                    "error": {"code": 502, "message": "Provider returned error", "metadata": {"provider_name": "OpenAI"}}})  # fmt: skip
            return True
        return await super()._answer(writer, body, prompt, directive)

    def _scripted_error(self, body):
        match = _DIRECTIVE.search(last_user_text(body))
        return None if match and match.group(2) == "midstream" else super()._scripted_error(body)

    async def _midstream_error(self, writer, body) -> None:
        base = {"id": "gen-1", "object": "chat.completion.chunk", "created": 1733000000, "model": body["model"], "provider": "OpenAI"}
        events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Parcel "}, "finish_reason": None}]},
                  {**base, "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
                   "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}]  # fmt: skip
        payload = b": OPENROUTER PROCESSING\n\n" + b"".join(f"data: {json.dumps(event)}\n\n".encode() for event in events)
        payload += b"data: [DONE]\n\n"
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: "
                     + str(len(payload)).encode() + b"\r\n\r\n" + payload)  # fmt: skip
        await writer.drain()


class GeminiEndpoint(DialectServer):
    """Gemini's OpenAI-compatible endpoint: ``/v1beta/openai/chat/completions``, a Bearer key, errors
    as Google's JSON list of one error, a 400 ``API_KEY_INVALID`` for a wrong key, ``Unknown name``
    400s for the parameters it has not (``seed``, ``prompt_cache_key``, ``frequency_penalty``, ``top_k``),
    every one a request carries named in one message."""

    key = "AIza" + "SyTest0123456789abcdefghijklmnopqr"
    paths = ("/v1beta/openai/chat/completions",)
    REFUSED = ("seed", "prompt_cache_key", "frequency_penalty", "top_k")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1beta/openai"

    @staticmethod
    def google_error(code: int, message: str, status: str, details: list) -> list:
        return [{"error": {"code": code, "message": message, "status": status, "details": details}}]

    def unauthorized(self, authorization):
        details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}}]  # fmt: skip
        return 400, self.google_error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", details)

    def refused(self, body):
        names = [key for key in self.REFUSED if key in body]
        if not names:
            return None
        messages = [f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.' for name in names]
        violations = [{"description": message} for message in messages]
        return self.google_error(400, "\n".join(messages), "INVALID_ARGUMENT",
                                 [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}])

    def error(self, kind, body):
        quota = "GenerateRequestsPerDayPerProjectPerModel-FreeTier" if kind == "daily" else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
        details = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                    "quotaId": quota, "quotaDimensions": {"location": "global", "model": body.get("model")}, "quotaValue": "10"}]},
                   {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.05s"}]  # fmt: skip
        message = "You exceeded your current quota, please check your plan and billing details."
        return 429, self.google_error(429, message, "RESOURCE_EXHAUSTED", details), {}


class LocalServer(DialectServer):
    """vLLM, llama.cpp or Ollama on a laptop: no key, ``/v1/chat/completions``, and streams without a
    usage chunk; with ``strict`` it refuses ``stream_options`` as older vLLM does (``extra_forbidden``)."""

    def __init__(self, strict: bool = False, **config) -> None:
        super().__init__(**config)
        self.strict = strict

    def refused(self, body):
        if self.strict and "stream_options" in body:
            message = ("[{'type': 'extra_forbidden', 'loc': ('body', 'stream_options'), 'msg': 'Extra inputs are not permitted',"
                       " 'input': {'include_usage': True}}]")  # fmt: skip
            return {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": 400}
        return None

    async def _answer(self, writer, body, prompt, directive):
        return await super()._answer(writer, body, prompt, directive or ("nousage", 0))
