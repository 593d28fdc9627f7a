"""replay's own HTTP/1.1 client for the replay hot path: asyncio protocols and a keep-alive pool.

Why not aiohttp here: at high concurrency the client is CPU-bound, and a bare aiohttp
client spends enough CPU on each streamed request to take the engine benchmark far past
its target on its own (figures: the README's benchmarks). This client does only what a replay
needs: POST a body to an ``http://`` or ``https://`` origin over kept-alive connections and
hand back the body as it arrives. The HTTP framing itself (status line, headers, chunked
transfer coding, keep-alive rules) is parsed by ``httptools``, the llhttp bindings that
uvicorn uses, not by code written here.

Out of scope on purpose: redirects (never followed by a replay), proxies (an arm whose
endpoint a proxy variable applies to goes through httpx instead, see
:func:`replay.providers.transports.base.proxied`), asking for compression (``Accept-Encoding:
identity`` is sent, though a gzip or deflate body a server sends anyway is decoded),
HTTP/2. An arm can also pick ``transport: aiohttp`` or ``transport: httpx``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass
from typing import AsyncIterator
from urllib.parse import quote, urlsplit

import httptools

from replay.providers.transports.base import (
    INFLATES,
    MAX_HEADER_BYTES,
    STALE_WINDOW_S,
    TAIL_BYTES,
    TERMINATOR_WAIT_S,
    Inflated,
    TransportFailure,
    check_header,
    headers_too_large,
)

CONNECT_TIMEOUT_S = 10.0
IDLE_EXPIRY_S = 4.0
"""A kept-alive connection idle longer is closed, not reused: servers commonly drop idle
connections after 5 s (uvicorn, Node), and a request sent as they do is lost."""
_INFORMATIONAL = range(100, 200)
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
"""Characters a path or query keeps as they are; anything else (a space, non-ASCII) is percent-encoded."""
HIGH_WATER = 1 << 20
"""Bytes buffered from one response before the socket stops being read (flow control)."""


@dataclass(frozen=True)
class _Target:
    key: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    head: bytes
    """The request line and headers, up to the ``Content-Length`` value."""


class _Response:
    """One response as it arrives: status and headers first, then the body in pieces."""

    def __init__(self, conn: "_Connection") -> None:
        self._conn = conn
        self.status = 0
        self.headers: dict[str, str] = {}
        self._pieces: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._complete = False
        self._error: TransportFailure | None = None

    # --- fed by the connection ---

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._pieces.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._conn.pause()
        self._wake()

    def _finish(self) -> None:
        self._complete = True
        self._wake()

    def _fail(self, error: TransportFailure) -> None:
        self._error = error
        self._wake()

    # --- read by the provider ---

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, decoded. An iterator object, not an async generator: the
        reader stops at ``[DONE]``, and every generator left unfinished costs a finaliser
        round trip through the event loop, on every request."""
        encoding = self.headers.get("content-encoding")
        if encoding is None or encoding.strip().lower() not in INFLATES:
            return self
        return Inflated(self, encoding.strip().lower(), self.status)

    def __aiter__(self) -> "_Response":
        return self

    async def __anext__(self) -> bytes:
        while True:
            pieces = self._pieces
            if pieces:
                data = pieces.popleft() if len(pieces) == 1 else b"".join(pieces)
                pieces.clear()
                self._buffered = 0
                self._conn.resume()
                return data
            if self._complete:
                raise StopAsyncIteration
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.chunks()])

    async def close(self) -> None:
        """Back to the pool when the answer is complete. A streamed answer's reader stops at
        ``[DONE]``, often a moment before the chunked terminator: wait briefly for it, or
        every streamed request would cost a new connection; a long unread tail (an answer
        refused as too large) closes the connection instead."""
        try:
            if not self._complete and self._error is None and not self._conn.closed and self._buffered < HIGH_WATER:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + TERMINATOR_WAIT_S
                drained = 0
                while not self._complete and self._error is None and not self._conn.closed and drained < TAIL_BYTES:
                    drained += self._buffered
                    self._pieces.clear()
                    self._buffered = 0
                    self._conn.resume()
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    self._waiter = waiter = loop.create_future()
                    timer = loop.call_later(remaining, _settle, waiter)
                    try:
                        await waiter
                    finally:
                        timer.cancel()
                        self._waiter = None
        finally:
            self._conn.release(self)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; parses with ``httptools`` and serves one exchange at a time."""

    def __init__(self, session: "NativeSession", key: tuple[str, str, int]) -> None:
        self.session = session
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: _Response | None = None
        self.headers_future: asyncio.Future[None] | None = None
        self.received = False
        self.closed = False
        self.paused = False
        self.framed = True
        self.keep_alive = True
        self.idle_since = 0.0
        self.sent_at = 0.0
        self._informational = False
        self._header_list: list[tuple[str, str]] = []
        self.unsolicited = b""  # the first bytes the server sent unasked (another protocol's greeting)
        self._head_bytes = 0

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: the connection cannot be trusted again
            self.unsolicited = self.unsolicited or data[:60]
            self.abort()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("connection_error", "the server switched protocols (101): not an HTTP answer")
            self.abort()
        except httptools.HttpParserError as exc:
            if self.response is not None and self.response._complete:  # bytes after a whole answer
                self.keep_alive = False
                return
            self._fail("connection_error", f"malformed HTTP response: {exc}")
            self.abort()
        else:
            if self.headers_future is not None:  # still in the status line and headers: bound them
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEADER_BYTES:
                    self._fail_with(headers_too_large())
                    self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is None or response._complete:
            return
        if self.headers_future is None and not self.framed and exc is None:  # close-delimited body: EOF ends it
            response._finish()
            return
        reason = f"{type(exc).__name__}: {exc}" if exc else "server closed the connection"
        if self.headers_future is not None:
            self._fail("connection_error", f"no response: {reason}")
        else:
            self._fail("truncated_stream", f"response body cut short: {reason}")

    # --- httptools callbacks ---

    def on_message_begin(self) -> None:
        if self.response is not None and self.response._complete:
            # a second answer to one request: keep the first, never reuse this connection
            raise RuntimeError("unexpected bytes after the answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_list.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if status in _INFORMATIONAL:  # 100 Continue, 103 Early Hints: the answer follows (101 fails in data_received)
            self._informational = True
            self._header_list = []
            return
        response.status = status
        response.headers = dict(self._header_list)
        chunked = "chunked" in response.headers.get("transfer-encoding", "").lower()
        self.framed = chunked or "content-length" in response.headers
        self.keep_alive = self.parser.should_keep_alive()
        future, self.headers_future = self.headers_future, None
        if future is not None and not future.done():
            future.set_result(None)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._feed(body)

    def on_message_complete(self) -> None:
        assert self.response is not None
        if self._informational:
            self._informational = False
            return
        self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        self.response._finish()

    # --- used by the session and the response ---

    def _fail(self, kind: str, message: str) -> None:
        self._fail_with(TransportFailure(kind, message))

    def _fail_with(self, error: TransportFailure) -> None:
        future, self.headers_future = self.headers_future, None
        if future is not None and not future.done():
            future.set_exception(error)
        elif self.response is not None:
            self.response._fail(error)

    async def exchange(self, data: bytes) -> _Response:
        """Send one request; return once its status and headers have arrived."""
        if not self.reusable():  # closed, or spoke before being asked (see data_received)
            if self.unsolicited:
                raise TransportFailure("connection_error", f"not an HTTP server: it spoke first ({self.unsolicited!r})")
            raise TransportFailure("connection_error", "the server closed the connection before the request was sent")
        assert self.transport is not None
        self.response = response = _Response(self)
        self.parser = httptools.HttpResponseParser(self)
        self._header_list = []
        self.received = False
        self._head_bytes = 0
        self.framed = True
        self._informational = False
        loop = asyncio.get_running_loop()
        self.headers_future = loop.create_future()
        future = self.headers_future
        self.sent_at = loop.time()
        self.transport.write(data)
        try:
            await future
        except BaseException:
            self.abort()
            raise
        return response

    def pause(self) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def release(self, response: _Response) -> None:
        """Back to the pool if the exchange ended cleanly and both sides keep the connection alive."""
        if self.response is not response:
            return
        self.response = None
        if response._complete and self.keep_alive and not self.closed and not response._pieces:
            self.session._park(self)
        else:
            self.abort()

    def reusable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class NativeSession:
    """A keep-alive pool per origin, at most ``max_connections`` idle connections kept."""

    decodes = INFLATES
    """What a server sends compressed despite ``Accept-Encoding: identity`` is decoded."""

    def __init__(self, headers: dict[str, str], max_connections: int) -> None:
        for name, value in headers.items():
            check_header(name, value)
        self._headers = {name.lower(): value for name, value in headers.items()}
        self._headers.setdefault("accept-encoding", "identity")
        self._max_idle = max(1, max_connections)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is not None:
            return target
        try:
            target = self._targets[url] = self._parse_target(url)
        except (ValueError, UnicodeError) as exc:
            raise TransportFailure("connection_error", f"cannot send to {url!r}: {exc}") from None
        return target

    def _parse_target(self, url: str) -> _Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("http:// or https:// URLs only")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        default_port = port == (443 if tls else 80)
        host_header = parts.hostname if default_port else f"{parts.hostname}:{port}"
        if ":" in parts.hostname:  # IPv6 literal
            host_header = f"[{parts.hostname}]" if default_port else f"[{parts.hostname}]:{port}"
        host = parts.hostname.encode("idna").decode("ascii") if not parts.hostname.isascii() else parts.hostname
        host_header = host_header.replace(parts.hostname, host)
        path = quote(parts.path or "/", safe=_PATH_SAFE) + (f"?{quote(parts.query, safe=_PATH_SAFE)}" if parts.query else "")
        lines = [f"POST {path} HTTP/1.1", f"host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in self._headers.items()]
        head = ("\r\n".join(lines) + "\r\ncontent-length: ").encode("latin-1")
        return _Target((parts.scheme, host, port), host, port, tls, head)

    async def post(self, url: str, content: bytes, timeout_s: float) -> _Response:
        target = self._target(url)
        data = b"".join((target.head, str(len(content)).encode(), b"\r\n\r\n", content))
        loop = asyncio.get_running_loop()
        conn = self._take(target.key, loop.time())
        if conn is not None:
            try:
                return await conn.exchange(data)
            except TransportFailure:
                if conn.received or loop.time() - conn.sent_at > STALE_WINDOW_S:
                    raise
                # A kept-alive connection the server had closed just before: the request is
                # sent once more on a new connection, as browsers and the mature clients do.
        conn = await self._connect(target, timeout_s)
        return await conn.exchange(data)

    def _take(self, key: tuple[str, str, int], now: float) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.reusable() and now - conn.idle_since < IDLE_EXPIRY_S:
                return conn
            conn.abort()
        return None

    def _park(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if self._closed or len(idle) >= self._max_idle:
            conn.abort()
        else:
            conn.idle_since = asyncio.get_running_loop().time()
            idle.append(conn)

    async def _connect(self, target: _Target, timeout_s: float) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if target.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self, target.key), target.host, target.port, ssl=context,
                    server_hostname=target.host if context else None,
                ),
                min(timeout_s, CONNECT_TIMEOUT_S),
            )  # fmt: skip
        except asyncio.TimeoutError:
            raise TransportFailure("timeout", f"connecting to {target.host}:{target.port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise TransportFailure("connection_error", f"{type(exc).__name__}: {exc}") from None
        return conn

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
