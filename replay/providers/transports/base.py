"""What every transport shares: the session and response interfaces, the failure they raise,
the limits they apply, and the gzip/deflate decoder native and aiohttp use.

Transports (:mod:`.native`, :mod:`.aiohttp_transport`, :mod:`.httpx_transport`) import this
module and nothing of each other's, as httpx's ``_transports`` do over ``base.py``.
"""

from __future__ import annotations

import asyncio
import re
import sys
import zlib
from typing import Any, AsyncIterator, Awaitable, Protocol


class TransportFailure(Exception):
    """A request that got no usable HTTP answer.

    ``kind`` is connection_error (no answer), timeout, truncated_stream (the server answered,
    then the body was cut short) or bad_response (an answer replay cannot read; ``status``
    set, so it is not retried)."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class Response(Protocol):
    status: int
    headers: dict[str, str]
    """Lower-cased names."""

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in network-sized pieces (one await per read, not per line)."""
        ...
    async def read(self) -> bytes: ...
    async def close(self) -> None: ...


class Session(Protocol):
    decodes: frozenset[str]
    """The ``Content-Encoding`` values this client decodes before handing on the body."""

    async def post(self, url: str, content: bytes, timeout_s: float) -> Response: ...
    async def close(self) -> None: ...


STALE_WINDOW_S = 0.5
"""A reused connection that fails this soon after the request, with no byte of answer,
had been closed by the server: the request is sent again on a new connection."""
TERMINATOR_WAIT_S = 0.05
"""How long closing a response waits for the end of a body whose content the reader already has."""
TAIL_BYTES = 1 << 16
"""At most this much of an unread tail is read to keep the connection; more, and it is closed."""
MAX_HEADER_BYTES = 100 * 1024
"""Largest response header block (native, and httpx through h11) or header line (aiohttp) accepted."""
MAX_HEADERS = 1000
INFLATES = frozenset({"gzip", "x-gzip", "deflate"})
"""The encodings replay decodes itself (native and aiohttp), with :class:`Inflated`."""
INFLATED_PIECE = 1 << 18
"""At most this much is inflated at a time: a 200 KB gzip bomb of 200 MB is refused at the cap, not held whole."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CLIENT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def check_header(name: str, value: str) -> None:
    """Raise ``ValueError`` for a header this client must not send as given."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"header name {name!r} is not a valid HTTP token")
    if name.lower() in _CLIENT_HEADERS:
        raise ValueError(f"header {name!r} is set by the HTTP client, not by the scenario")
    if any(char in value for char in "\r\n\0"):
        raise ValueError(f"header {name!r} contains a line break")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name!r} has characters HTTP headers cannot carry") from None


def proxied(url: str) -> bool:
    """Whether ``HTTPS_PROXY``/``HTTP_PROXY`` (and ``NO_PROXY``) send ``url`` through a proxy.

    The native transport does not speak to proxies, so such an arm goes through httpx,
    which does, as the official SDKs do. Loopback addresses never go through a proxy."""
    import ipaddress
    from urllib.parse import urlsplit
    from urllib.request import getproxies_environment
    from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]  # public since 3.0, missing from typeshed

    parts = urlsplit(url)
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        if ipaddress.ip_address(host).is_loopback:
            return False
    except ValueError:
        pass
    proxies = getproxies_environment()
    if parts.scheme not in proxies and "all" not in proxies:
        return False
    return not proxy_bypass_environment(host, proxies)


class Inflated:
    """A gzip or deflate body, inflated at most :data:`INFLATED_PIECE` bytes at a time
    (so that a compressed bomb cannot fill memory in one step)."""

    def __init__(self, source: AsyncIterator[bytes], encoding: str, status: int) -> None:
        self._source = source
        self._encoding = encoding
        self._status = status
        self._decoder: Any = None
        self._pending = b""

    def __aiter__(self) -> "Inflated":
        return self

    async def __anext__(self) -> bytes:
        while True:
            data, self._pending = self._pending, b""
            if not data:
                try:
                    data = await self._source.__anext__()
                except StopAsyncIteration:
                    return self._end()
            decoder = self._decoder or self._start(data)
            try:
                out: bytes = decoder.decompress(data, INFLATED_PIECE)
            except zlib.error as exc:
                raise self._failure(str(exc)) from None
            self._pending = decoder.unconsumed_tail
            if out:
                return out

    def _start(self, data: bytes) -> Any:
        # "deflate" should be zlib-wrapped (RFC 9110) but some servers send raw deflate
        wrapped = self._encoding != "deflate" or (len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0)
        self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32 if wrapped else -zlib.MAX_WBITS)
        return self._decoder

    def _end(self) -> bytes:
        decoder = self._decoder
        if decoder is None:
            raise StopAsyncIteration
        self._decoder = None
        rest: bytes = decoder.flush()
        if not decoder.eof:
            raise self._failure("the compressed body ends before its end")
        if rest:
            return rest
        raise StopAsyncIteration

    def _failure(self, reason: str) -> TransportFailure:
        return TransportFailure("bad_response", f"cannot decode the {self._encoding} body: {reason}", self._status)


def headers_too_large() -> TransportFailure:
    return TransportFailure("response_too_large", f"response headers larger than {MAX_HEADER_BYTES // 1024} KB: stopped reading")


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def bounded(awaitable: Awaitable[None], seconds: float) -> None:
    """Wait at most ``seconds``; ``asyncio.timeout`` (3.11+) spares the task ``wait_for`` creates."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            await awaitable
        return
    await asyncio.wait_for(awaitable, seconds)
