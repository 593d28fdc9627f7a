"""A small OpenAI-compatible chat server on 127.0.0.1, for the demo, tests and benchmarks.

Plain asyncio HTTP/1.1 with keep-alive and chunked SSE, so it can misbehave precisely:
a directive in the last user message scripts the answer to that request, e.g.
``[mock:500*2]`` (two 500s, then a normal answer), ``[mock:429*1]`` (a 429 with
``retry-after-ms``), ``[mock:drop*1]`` (close the connection without an answer),
``[mock:truncate*1]`` (cut the stream mid-way), ``[mock:quota]`` (429
``insufficient_quota``), ``[mock:401]``, ``[mock:nousage]``, ``[mock:tool]`` (answer
with a tool call), ``[mock:slow=800]`` (800 ms latency). With ``rpm`` set it enforces
the limit like providers do, in one-second windows (at most rpm/60 in any second).
A gateway's dialect is configured: ``headers`` on every answer, ``usage_extra`` in every
usage (OpenRouter's ``cost``), ``comments`` for OpenRouter's SSE comment lines.

``POST /v1/embeddings`` answers every input with a deterministic vector (words hashed into
``embedding_dims`` signed counts: texts sharing words point the same way); a directive in
any input scripts the whole call as for chat (``[mock:429*1]``, ``[mock:500*2]``, ``[mock:401]``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

_DIRECTIVE = re.compile(r"\[mock:([a-z0-9]+)(?:=(\d+))?(?:\*(\d+))?\]")


@dataclass
class ServerConfig:
    latency_ms: float = 50.0
    ttft_ms: float | None = None
    """Defaults to a third of the latency."""
    chunks: int = 4
    rpm: float | None = None
    model: str | None = None
    """Reported model name; defaults to the requested one."""
    answers: dict[str, str] = field(default_factory=dict)
    """Answer text by the last user message; others get a deterministic generated answer."""
    embedding_dims: int = 64
    embedding_latency_ms: float = 5.0
    respond: Callable[[dict[str, Any]], str | None] | None = None
    """Computes the answer text from the request body (a scripted judge); None falls back to ``answers``."""
    headers: dict[str, str] = field(default_factory=dict)
    """Sent with every answer, streamed or not (a gateway's ``x-litellm-response-cost``...)."""
    usage_extra: dict[str, Any] = field(default_factory=dict)
    """Merged into every answer's usage (OpenRouter's ``cost``...)."""
    comments: bool = False
    """Stream SSE comment lines (``: OPENROUTER PROCESSING``) before the first event and between the others."""


@dataclass
class Stats:
    requests: int = 0
    rate_limited: int = 0
    arrivals: list[float] = field(default_factory=list)
    authorization: set[str] = field(default_factory=set)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    embedding_batches: list[int] = field(default_factory=list)
    """Inputs per embeddings call answered with vectors, in arrival order."""
    embedding_calls: int = 0
    """Embeddings calls received, those answered with an error included."""


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def messages_key(body: dict[str, Any]) -> str:
    """The conversation as one string: answers looked up by it match one logged request exactly."""
    return json.dumps(body.get("messages") or [], sort_keys=True, ensure_ascii=False)


def embedding(text: str, dims: int = 64) -> list[float]:
    """A deterministic vector: each word adds +-1 at a place its hash picks."""
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        vector[int.from_bytes(digest[:3], "little") % dims] += 1.0 if digest[3] & 1 else -1.0
    return vector


def generated_answer(prompt: str) -> str:
    """A deterministic answer that varies with the prompt."""
    words = _DIRECTIVE.sub("", prompt).split()
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    return f"Thanks for asking. About '{' '.join(words[:6])}': reference {digest[:8]}."


class MockServer:
    def __init__(self, config: ServerConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or ServerConfig()
        self.host, self.port = host, port
        self.stats = Stats()
        self._seen: dict[str, int] = {}
        self._window: deque[float] = deque()
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # --- lifecycle -------------------------------------------------------------------

    async def serve(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> "MockServer":
        """Serve from a background thread; returns once the port is open.

        Raises ``OSError`` (the port is taken, the host is not local) in the caller's thread."""
        ready = threading.Event()
        failed: list[OSError] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.serve())
            except OSError as exc:
                failed.append(exc)
                ready.set()
                self._loop.close()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="mock-openai")
        self._thread.start()
        ready.wait(10)
        if failed:
            self._server = None
            raise failed[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return

        async def close() -> None:
            assert self._server is not None
            self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)
        if self._thread is None or not self._thread.is_alive():
            self._loop.close()  # not left to the garbage collector, which may run it at any time
        self._server = None

    def __enter__(self) -> "MockServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP ----------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                keep = await self._handle(method, path, headers, body, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes, writer: asyncio.StreamWriter) -> bool:
        if method == "GET" and path.rstrip("/") in ("/health", "/v1/models"):
            payload = {"status": "ok"} if path.startswith("/health") else {"object": "list", "data": []}
            await self._send_json(writer, 200, payload)
            return True
        if method == "POST" and path.rstrip("/").endswith("/embeddings"):
            return await self._embeddings(writer, raw, headers)
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            await self._send_json(writer, 404, _error("not found", "not_found"))
            return True
        try:
            body = json.loads(raw)
        except ValueError:
            await self._send_json(writer, 400, _error("body is not JSON", "invalid_json"))
            return True
        stats = self.stats
        stats.requests += 1
        now = time.monotonic()
        stats.arrivals.append(now)
        if "authorization" in headers:
            stats.authorization.add(headers["authorization"])
        stats.bodies.append(body)
        if self.config.rpm and not self._admit(now):
            stats.rate_limited += 1
            await self._send_json(writer, 429, _error("rate limit reached", "rate_limit_exceeded"), {"retry-after-ms": "1000"})
            return True
        prompt = last_user_text(body)
        directive = self._directive(prompt, body)
        return await self._answer(writer, body, prompt, directive)

    def _admit(self, now: float) -> bool:
        per_second = max(1, int(self.config.rpm / 60)) if self.config.rpm else 0
        window = self._window
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= per_second:
            return False
        window.append(now)
        return True

    def _directive(self, prompt: str, body: dict[str, Any]) -> tuple[str, int] | None:
        match = _DIRECTIVE.search(prompt)
        if not match:
            return None
        kind, value, times = match.group(1), int(match.group(2) or 0), match.group(3)
        key = hashlib.sha1(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        if times is not None and seen >= int(times):
            return None
        return kind, value

    async def _embeddings(self, writer: asyncio.StreamWriter, raw: bytes, headers: dict[str, str]) -> bool:
        try:
            body = json.loads(raw)
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        except (ValueError, KeyError, TypeError):
            await self._send_json(writer, 400, _error("expected {model, input}", "invalid_request"))
            return True
        self.stats.embedding_calls += 1
        if "authorization" in headers:
            self.stats.authorization.add(headers["authorization"])
        await asyncio.sleep(self.config.embedding_latency_ms / 1000)
        kind, _ = self._directive(" ".join(map(str, inputs)), {"messages": inputs}) or ("", 0)
        if kind.isdigit() and int(kind) >= 400:
            extra = {"retry-after-ms": "20"} if kind == "429" else {}
            await self._send_json(writer, int(kind), _error(f"scripted {kind}", "scripted"), extra)
            return True
        if kind == "quota":
            await self._send_json(writer, 429, _error("You exceeded your current quota", "insufficient_quota"))
            return True
        if kind == "drop":
            return False
        self.stats.embedding_batches.append(len(inputs))
        dims = self.config.embedding_dims
        data = [{"object": "embedding", "index": i, "embedding": embedding(str(text), dims)} for i, text in enumerate(inputs)]
        tokens = sum(len(str(text).split()) for text in inputs)
        await self._send_json(writer, 200, {"object": "list", "data": data, "model": body.get("model", "mock"),
                                            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})  # fmt: skip
        return True

    async def _answer(self, writer: asyncio.StreamWriter, body: dict[str, Any], prompt: str, directive: tuple[str, int] | None) -> bool:
        kind, value = directive or ("", 0)
        latency = (value if kind == "slow" else self.config.latency_ms) / 1000
        if kind.isdigit() and int(kind) >= 400:
            status = int(kind)
            extra = {"retry-after-ms": "200"} if status == 429 else {}
            await asyncio.sleep(latency / 4)
            await self._send_json(writer, status, _error(f"scripted {status}", "scripted"), extra)
            return True
        if kind == "quota":
            await self._send_json(writer, 429, _error("You exceeded your current quota", "insufficient_quota"))
            return True
        if kind == "drop":
            await asyncio.sleep(latency / 4)
            return False
        answers = self.config.answers
        computed = self.config.respond(body) if self.config.respond is not None else None
        text = computed or answers.get(messages_key(body)) or answers.get(prompt) or generated_answer(prompt)
        model = self.config.model or body.get("model", "mock")
        tool = kind == "tool"
        prompt_tokens = max(1, len(json.dumps(body.get("messages", []))) // 4)
        completion_tokens = max(1, len(text.split()))
        usage = None if kind == "nousage" else {
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens, **self.config.usage_extra,
        }  # fmt: skip
        if not body.get("stream"):
            await asyncio.sleep(latency)
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else text, "refusal": None}
            if tool:
                message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": json.dumps({"q": prompt[:20]})}}]
            payload = {
                "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()), "model": model,
                "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}],
            }  # fmt: skip
            if usage:
                payload["usage"] = usage
            await self._send_json(writer, 200, payload, self.config.headers)
            return True
        return await self._stream(writer, body, text, model, usage, tool, latency, truncate=kind == "truncate")

    async def _stream(self, writer: asyncio.StreamWriter, body: dict[str, Any], text: str, model: str,
                      usage: dict[str, int] | None, tool: bool, latency: float, truncate: bool) -> bool:  # fmt: skip
        ttft = self.config.ttft_ms / 1000 if self.config.ttft_ms is not None else latency / 3
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.config.headers.items()).encode()
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n" + extra + b"\r\n"
        comment = b": OPENROUTER PROCESSING\n\n" if self.config.comments else b""
        base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model, "system_fingerprint": "fp_mock"}  # fmt: skip

        def event(payload: dict[str, Any] | str) -> bytes:
            data = payload if isinstance(payload, str) else json.dumps({**base, **payload})
            line = comment + f"data: {data}\n\n".encode()
            return f"{len(line):x}\r\n".encode() + line + b"\r\n"

        def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
            chunk: dict[str, Any] = {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}
            if (body.get("stream_options") or {}).get("include_usage"):
                chunk["usage"] = None
            return event(chunk)

        writer.write(head + delta({"role": "assistant", "content": ""}))
        await asyncio.sleep(ttft)
        if tool:
            args = json.dumps({"q": last_user_text(body)[:20]})
            pieces = [delta({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}]})]
            pieces += [delta({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 8]}}]}) for i in range(0, len(args), 8)]
        else:
            n = max(1, self.config.chunks)
            step = max(1, -(-len(text) // n))
            pieces = [delta({"content": text[i:i + step]}) for i in range(0, len(text), step)]
        # The first piece leaves at TTFT, the rest at the full latency: two waits per answer
        # keep the server cheap enough not to be the bottleneck of a benchmark.
        writer.write(pieces[0])
        if truncate:
            await writer.drain()
            return False  # close mid-stream: no terminating chunk
        await writer.drain()
        await asyncio.sleep(max(0.0, latency - ttft))
        # What is ready at the same instant goes out in one write, as a buffering server sends it.
        tail = [*pieces[1:], delta({}, "tool_calls" if tool else "stop")]
        if usage and (body.get("stream_options") or {}).get("include_usage"):
            tail.append(event({"choices": [], "usage": usage}))
        tail += [event("[DONE]"), b"0\r\n\r\n"]
        writer.write(b"".join(tail))
        await writer.drain()
        return True

    async def _send_json(self, writer: asyncio.StreamWriter, status: int, payload: dict[str, Any],
                         headers: dict[str, str] | None = None) -> None:  # fmt: skip
        data = json.dumps(payload).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        writer.write(
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n{extra}\r\n".encode() + data
        )
        await writer.drain()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            408: "Request Timeout", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}  # fmt: skip


def _error(message: str, code: str) -> dict[str, Any]:
    kind = "insufficient_quota" if code == "insufficient_quota" else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def answers_from_log(path: str) -> dict[str, str]:
    """Map each logged request's last user message to its logged answer text."""
    from replay.readers import iter_records

    answers: dict[str, str] = {}
    for record in iter_records([path], skip_invalid=True):
        content = record.answer.text if record.answer else None
        if isinstance(content, str):
            answers[messages_key(record.request)] = content
            answers.setdefault(last_user_text(record.request), content)
    return answers


def demo_candidate(answers: dict[str, str]) -> dict[str, str]:
    """The demo's candidate: the logged answers with the regressions a cheaper model shows.

    Deterministic per conversation: about 40% of JSON answers come wrapped in a
    Markdown code fence (invalid for ``response_format: json_object``), a few JSON
    answers get a field wrong, some text answers are reworded and a few refused.
    """
    import hashlib

    out = {}
    for key, text in answers.items():
        roll = int(hashlib.blake2b(key.encode(), digest_size=4).hexdigest(), 16) % 100
        if text.lstrip().startswith("{"):
            if roll < 40:
                text = f"```json\n{text}\n```"
            elif roll < 50:
                fields = json.loads(text)
                fields["urgent"] = not fields.get("urgent")
                text = json.dumps(fields)
        elif roll < 20:
            text = "Thanks for reaching out! " + text
        elif roll < 23:
            text = "I'm sorry, but I can't help with that."
        out[key] = text
    return out
