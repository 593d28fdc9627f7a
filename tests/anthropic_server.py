"""A local Anthropic Messages server on 127.0.0.1 (``POST /v1/messages``), for the provider's tests.

It speaks the protocol the official SDK reads (tests/test_anthropic_server.py checks it with
the ``anthropic`` package as the client): named SSE events ``message_start``,
``content_block_start``/``_delta``/``_stop``, ``message_delta``, ``message_stop`` and ``ping``,
or one JSON message when the request does not stream. A directive in the last user text
scripts the answer to that request: ``[a:529*2]`` (two 529 ``overloaded_error``, then the
answer), ``[a:429*1]`` (a 429 with ``retry-after``), ``[a:error*1]`` (a 200 whose stream
carries an ``error`` event), ``[a:401]``, ``[a:credit]`` (a 400 "credit balance is too low"),
``[a:echo]`` (the answer echoes the key), ``[a:echo500]`` (a 500 whose error echoes it),
``[a:cache]`` (usage with cache tokens), ``[a:refusal]``, ``[a:limit]`` (an answer with
``anthropic-ratelimit-requests-remaining: 0``), ``[a:cut]`` (a stream that ends after its
first delta, without ``message_stop``), ``[a:long]`` (a long answer). A request with tools answers with a ``tool_use`` block, its input streamed as
``input_json_delta`` fragments.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

KEY = "sk-ant-api03-" + "Qx7" * 20
ANSWER = "Parcel 7 is in Oslo."
_DIRECTIVE = re.compile(r"\[a:([a-z0-9]+)(?:\*(\d+))?\]")


@dataclass
class Seen:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
            return str(content)
    return ""


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode()


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_test"}


class AnthropicServer:
    def __init__(self) -> None:
        self.seen = Seen()
        self._counts: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "AnthropicServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _scripted(self, text: str) -> str | None:
        """The directive's fault while it has times left (each prompt counted on its own)."""
        match = _DIRECTIVE.search(text)
        if not match:
            return None
        fault, times = match.group(1), match.group(2)
        seen = self._counts.get(text, 0)
        self._counts[text] = seen + 1
        return fault if times is None or seen < int(times) else None

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.bodies.append(body)
        self.seen.headers.append({k.lower(): v for k, v in request.headers.items()})
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if KEY not in (request.headers.get("x-api-key"), bearer):  # the SDK 2.x sends the key as a bearer token
            return web.json_response(error_body("authentication_error", "invalid x-api-key"), status=401)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", request.headers.get("anthropic-version", "")):
            return web.json_response(error_body("invalid_request_error", "anthropic-version required"), status=400)
        fault = self._scripted(last_user_text(body))
        failure = _failure(fault)
        if failure is not None:
            return failure
        message = _message(body, fault)
        headers = _limit_headers() if fault == "limit" else {}
        if not body.get("stream"):
            return web.json_response(message, headers={"request-id": "req_test", **headers})
        return await self._stream(request, message, fault, headers)

    async def _stream(self, request: web.Request, message: dict[str, Any], fault: str | None, headers: dict[str, str]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "request-id": "req_test", **headers})
        await response.prepare(request)
        for event in _events(message):
            await response.write(event)
            if fault == "error" and event.startswith(b"event: content_block_delta"):
                await response.write(sse("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}))
                break
            if fault == "cut" and event.startswith(b"event: content_block_delta"):
                break  # the stream ends cleanly, without message_delta or message_stop
        await response.write_eof()
        return response


def _failure(fault: str | None) -> web.Response | None:
    if fault == "529":
        return web.json_response(error_body("overloaded_error", "Overloaded"), status=529)
    if fault == "429":
        return web.json_response(error_body("rate_limit_error", "Number of requests has exceeded your rate limit"),
                                 status=429, headers={"retry-after": "0.05"})  # fmt: skip
    if fault == "401":
        return web.json_response(error_body("authentication_error", "invalid x-api-key"), status=401)
    if fault == "credit":
        message = "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing."
        return web.json_response(error_body("invalid_request_error", message), status=400)
    if fault == "echo500":
        return web.json_response(error_body("api_error", f"upstream saw x-api-key: {KEY}"), status=500)
    return None


def _limit_headers() -> dict[str, str]:
    reset = (datetime.now(timezone.utc) + timedelta(seconds=0.2)).isoformat().replace("+00:00", "Z")
    return {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset}  # fmt: skip


def _message(body: dict[str, Any], fault: str | None) -> dict[str, Any]:
    usage = {"input_tokens": 21, "output_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    if fault == "cache":
        usage.update(cache_creation_input_tokens=1000, cache_read_input_tokens=4000)
    choice = body.get("tool_choice") or {}
    if body.get("tools"):
        name = choice.get("name") if choice.get("type") == "tool" else body["tools"][0]["name"]
        tool_input = {"text": ANSWER} if choice.get("type") == "tool" else {"parcel": "7", "city": "Oslo"}
        content = [{"type": "tool_use", "id": "toolu_01", "name": name, "input": tool_input}]
        stop = "tool_use"
    else:
        text = f"echo {KEY}" if fault == "echo" else ANSWER * 40_000 if fault == "long" else ANSWER
        content = [{"type": "text", "text": text}]
        stop = "refusal" if fault == "refusal" else "end_turn"
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": body.get("model"), "content": content,
            "stop_reason": stop, "stop_sequence": None, "usage": usage}  # fmt: skip


def _events(message: dict[str, Any]) -> list[bytes]:
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [sse("message_start", {"message": start}), sse("ping", {})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(sse("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
            half = len(block["text"]) // 2
            for piece in (block["text"][:half], block["text"][half:]):
                events.append(sse("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}}))
        else:
            events.append(sse("content_block_start", {"index": index, "content_block": {**block, "input": {}}}))
            raw = json.dumps(block["input"])
            for piece in (raw[:7], raw[7:]):
                events.append(sse("content_block_delta", {"index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(sse("content_block_stop", {"index": index}))
    events.append(sse("message_delta", {"delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                        "usage": {"output_tokens": usage["output_tokens"]}}))  # fmt: skip
    events.append(sse("message_stop", {}))
    return events
