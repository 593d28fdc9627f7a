"""``transport: aiohttp``: for what only aiohttp offers (vcrpy cassettes patch it too)."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from replay.providers.transports.base import (
    INFLATES,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    STALE_WINDOW_S,
    TAIL_BYTES,
    TERMINATOR_WAIT_S,
    Inflated,
    Response,
    TransportFailure,
    bounded,
    describe,
    headers_too_large,
)


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
            raise TransportFailure("timeout", describe(exc) or "timed out") from None
        except aiohttp.ClientPayloadError as exc:
            raise TransportFailure("truncated_stream", f"response body cut short: {describe(exc)}") from None
        except (aiohttp.ClientError, OSError) as exc:  # the server answered: whatever breaks now cuts the body short
            raise TransportFailure("truncated_stream", f"response body cut short: {describe(exc)}") from None

    async def read(self) -> bytes:
        return b"".join([data async for data in self.chunks()])

    async def close(self) -> None:
        """Back to the pool once read to its end: a streamed answer's reader stops at ``[DONE]``,
        a moment before the end of the body, and an answer not read to its end closes its connection."""
        try:
            if not self._response.content.at_eof():
                await bounded(self._drain(), TERMINATOR_WAIT_S)
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
                raise TransportFailure("timeout", describe(exc) or "timed out") from None
            except aiohttp.ClientConnectorError as exc:
                raise TransportFailure("connection_error", describe(exc)) from None
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if not last and loop.time() - sent_at < STALE_WINDOW_S:
                    continue  # a kept-alive connection the server had just closed: sent once more, as native does
                raise TransportFailure("connection_error", f"no response: {describe(exc)}") from None
            except aiohttp.ClientResponseError as exc:
                if "Got more than" in exc.message or "Too many headers" in exc.message:
                    raise headers_too_large() from None
                raise TransportFailure("connection_error", f"malformed HTTP response: {describe(exc)}") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise TransportFailure("connection_error", describe(exc)) from None
            return _AiohttpResponse(response)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._session.close()
