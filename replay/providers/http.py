"""Interchangeable HTTP sessions for providers: native (default), aiohttp and httpx.

Measured against a local 50 ms endpoint on 2 cores, 2,000 streamed requests cost about
0.4 ms of client CPU each through aiohttp and 0.6-0.7 ms through httpx (even on the
``httpx-aiohttp`` transport). At concurrency 256 the client is CPU-bound, so the default
is replay's own lean HTTP/1.1 client (:mod:`replay.providers.native`). ``transport:
aiohttp`` and ``transport: httpx`` stay for what only they offer: proxies, compression,
``httpx.MockTransport`` and vcrpy cassettes (vcrpy patches aiohttp and httpx).
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
    from urllib.request import getproxies_environment, proxy_bypass_environment

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
                out = decoder.decompress(data, INFLATED_PIECE)
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
        rest = decoder.flush()
        if not decoder.eof:
            raise self._failure("the compressed body ends before its end")
        if rest:
            return rest
        raise StopAsyncIteration

    def _failure(self, reason: str) -> TransportFailure:
        return TransportFailure("bad_response", f"cannot decode the {self._encoding} body: {reason}", self._status)


def headers_too_large() -> TransportFailure:
    return TransportFailure("response_too_large", f"response headers larger than {MAX_HEADER_BYTES // 1024} KB: stopped reading")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- aiohttp --------------------------------------------------------------------------


class _AiohttpResponse:
    def __init__(self, response: Any) -> None:
        self._response = response
        self.status = response.status
        self.headers = {key.lower(): value for key, value in response.headers.items()}

    def chunks(self) -> AsyncIterator[bytes]:
        encoding = self.headers.get("content-encoding", "").strip().lower()
        raw = self._raw_chunks()
        return raw if encoding not in INFLATES else Inflated(raw, encoding, self.status)

    async def _raw_chunks(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for data in self._response.content.iter_any():
                yield data
        except asyncio.TimeoutError as exc:
            raise TransportFailure("timeout", _describe(exc) or "timed out") from None
        except aiohttp.ClientPayloadError as exc:
            raise TransportFailure("truncated_stream", f"response body cut short: {_describe(exc)}") from None
        except (aiohttp.ClientError, OSError) as exc:  # the server answered: whatever breaks now cuts the body short
            raise TransportFailure("truncated_stream", f"response body cut short: {_describe(exc)}") from None

    async def read(self) -> bytes:
        return b"".join([data async for data in self.chunks()])

    async def close(self) -> None:
        """Back to the pool once read to its end: a streamed answer's reader stops at ``[DONE]``,
        a moment before the end of the body, and an answer not read to its end closes its connection."""
        try:
            if not self._response.content.at_eof():
                await _bounded(self._drain(), TERMINATOR_WAIT_S)
        except Exception:  # noqa: BLE001  a timeout or a broken tail: the answer is kept, the connection closed
            pass
        finally:
            self._response.release()

    async def _drain(self) -> None:
        content, drained = self._response.content, 0
        while not content.at_eof() and drained < TAIL_BYTES:
            drained += len(await content.readany())


class AiohttpSession:
    def __init__(self, headers: dict[str, str], max_connections: int) -> None:
        # Import and build everything now, not on the first request: the first request's
        # send must not be delayed after the pacer released it, or two could arrive together.
        import aiohttp

        self._aiohttp = aiohttp
        # Decoded here, as on the native transport: aiohttp's own decoder fails an answer it
        # cannot decode as a malformed one, before its status and headers can be seen.
        self.decodes = INFLATES
        headers = {"accept-encoding": "gzip, deflate", **headers}
        connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300)
        # No cookie jar: replayed requests must not carry state from one answer into the next.
        # Header limits as large as httpx's (aiohttp's own, 8 KB a line and 128 headers, fail real gateways).
        self._session = aiohttp.ClientSession(
            connector=connector, headers=headers, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            max_line_size=MAX_HEADER_BYTES, max_field_size=MAX_HEADER_BYTES, max_headers=MAX_HEADERS,
        )  # fmt: skip
        self._timeouts: dict[float, Any] = {}

    async def post(self, url: str, content: bytes, timeout_s: float) -> Response:
        aiohttp = self._aiohttp
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(timeout_s, 10.0), sock_read=timeout_s)
            self._timeouts[timeout_s] = timeout
        loop = asyncio.get_running_loop()
        for last in (False, True):
            sent_at = loop.time()
            try:
                response = await self._session.post(url, data=content, timeout=timeout, allow_redirects=False)
            except asyncio.TimeoutError as exc:
                raise TransportFailure("timeout", _describe(exc) or "timed out") from None
            except aiohttp.ClientConnectorError as exc:
                raise TransportFailure("connection_error", _describe(exc)) from None
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if not last and loop.time() - sent_at < STALE_WINDOW_S:
                    continue  # a kept-alive connection the server had just closed: sent once more, as native does
                raise TransportFailure("connection_error", f"no response: {_describe(exc)}") from None
            except aiohttp.ClientResponseError as exc:
                if "Got more than" in exc.message or "Too many headers" in exc.message:
                    raise headers_too_large() from None
                raise TransportFailure("connection_error", f"malformed HTTP response: {_describe(exc)}") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise TransportFailure("connection_error", _describe(exc)) from None
            return _AiohttpResponse(response)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._session.close()


# --- httpx ---------------------------------------------------------------------------


class _HttpxResponse:
    def __init__(self, response: Any) -> None:
        self._response = response
        self._bytes = response.aiter_bytes()  # one iterator for the reader and close(): httpx reads a body once
        self.status = response.status_code
        self.headers = {key.lower(): value for key, value in response.headers.items()}

    async def chunks(self) -> AsyncIterator[bytes]:
        import httpx

        try:
            async for data in self._bytes:
                yield data
        except httpx.TimeoutException as exc:
            raise TransportFailure("timeout", _describe(exc)) from None
        except httpx.DecodingError as exc:
            raise TransportFailure("bad_response", f"cannot decode the body: {_describe(exc)}", self.status) from None
        except httpx.TransportError as exc:  # the server answered: whatever breaks now cuts the body short
            raise TransportFailure("truncated_stream", f"response body cut short: {_describe(exc)}") from None

    async def read(self) -> bytes:
        return b"".join([data async for data in self.chunks()])

    async def close(self) -> None:
        """Back to the pool once read to its end (see :meth:`_AiohttpResponse.close`)."""
        try:
            if not self._response.is_closed:  # httpx closes a response once its body is read to the end
                await _bounded(self._drain(), TERMINATOR_WAIT_S)
        except Exception:  # noqa: BLE001  a timeout or a broken tail: the answer is kept, the connection closed
            pass
        finally:
            await self._response.aclose()

    async def _drain(self) -> None:
        drained = 0
        async for data in self._bytes:
            drained += len(data)
            if drained >= TAIL_BYTES:
                return


class HttpxSession:
    def __init__(self, headers: dict[str, str], max_connections: int, transport: Any = None) -> None:
        import httpx

        try:  # what httpx decodes depends on what is installed (brotli, zstandard)
            from httpx._decoders import SUPPORTED_DECODERS
        except ImportError:  # a private module: if it moves, the two httpx always decodes
            SUPPORTED_DECODERS = {"gzip": None, "deflate": None}
        self.decodes = frozenset(SUPPORTED_DECODERS) - {"identity"}
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(headers=headers, limits=limits, transport=transport)

    async def post(self, url: str, content: bytes, timeout_s: float) -> Response:
        import httpx

        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        loop = asyncio.get_running_loop()
        for last in (False, True):
            sent_at = loop.time()
            try:
                request = self._client.build_request("POST", url, content=content, timeout=timeout)
                return _HttpxResponse(await self._client.send(request, stream=True))
            except httpx.TimeoutException as exc:
                raise TransportFailure("timeout", _describe(exc)) from None
            except httpx.ConnectError as exc:
                raise TransportFailure("connection_error", _describe(exc)) from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if _disconnected(exc) and not last and loop.time() - sent_at < STALE_WINDOW_S:
                    continue  # a kept-alive connection the server had just closed: sent once more, as native does
                if "Receive buffer too long" in str(exc):  # h11's bound on the header block
                    raise headers_too_large() from None
                what = "no response" if _disconnected(exc) else "malformed HTTP response"
                raise TransportFailure("connection_error", f"{what}: {_describe(exc)}") from None
            except httpx.TransportError as exc:
                raise TransportFailure("connection_error", _describe(exc)) from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._client.aclose()


def _disconnected(exc: BaseException) -> bool:
    """An httpx error that means the connection closed before an answer (not a malformed one)."""
    import httpx

    return not isinstance(exc, httpx.RemoteProtocolError) or "disconnected" in str(exc).lower()


async def _bounded(awaitable: Awaitable[None], seconds: float) -> None:
    """Wait at most ``seconds``; ``asyncio.timeout`` (3.11+) spares the task ``wait_for`` creates."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            await awaitable
        return
    await asyncio.wait_for(awaitable, seconds)


def make_session(name: str, headers: dict[str, str], max_connections: int, transport: Any = None) -> Session:
    if name == "httpx" or transport is not None:
        return HttpxSession(headers, max_connections, transport)
    if name == "aiohttp":
        return AiohttpSession(headers, max_connections)
    from replay.providers.native import NativeSession

    return NativeSession(headers, max_connections)
