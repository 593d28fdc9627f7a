"""``transport: httpx``: proxies, ``httpx.MockTransport`` and vcrpy cassettes.

httpx reads the raw body and replay inflates it with :class:`Inflated`, as on native and aiohttp:
httpx's own decoders inflate a whole network read at once (64 KB of a gzip bomb to 64 MB) before
replay's size cap sees any of it."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from replay.providers.transports.base import (
    INFLATES,
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


class _HttpxResponse:
    def __init__(self, response: Any) -> None:
        self._response = response
        # A response built in memory (``httpx.MockTransport``) was read, and decoded, by httpx already.
        self._in_memory = response.is_stream_consumed
        # One iterator for the reader and close(): httpx reads a body once.
        self._raw = _held(response.content) if self._in_memory else response.aiter_raw()
        self.status = response.status_code
        self.headers = {key.lower(): value for key, value in response.headers.items()}

    def chunks(self) -> AsyncIterator[bytes]:
        encoding = "" if self._in_memory else self.headers.get("content-encoding", "").strip().lower()
        raw = self._raw_chunks()
        return raw if encoding not in INFLATES else Inflated(raw, encoding, self.status)

    async def _raw_chunks(self) -> AsyncIterator[bytes]:
        import httpx

        try:
            async for data in self._raw:
                yield data
        except httpx.TimeoutException as exc:
            raise TransportFailure("timeout", describe(exc)) from None
        except httpx.TransportError as exc:  # the server answered: whatever breaks now cuts the body short
            raise TransportFailure("truncated_stream", f"response body cut short: {describe(exc)}") from None

    async def read(self) -> bytes:
        return b"".join([data async for data in self.chunks()])

    async def close(self) -> None:
        """Back to the pool once read to its end (see :meth:`_AiohttpResponse.close`)."""
        try:
            if not self._response.is_closed:  # httpx closes a response once its body is read to the end
                await bounded(self._drain(), TERMINATOR_WAIT_S)
        except Exception:  # noqa: BLE001  a timeout or a broken tail: the answer is kept, the connection closed
            pass
        finally:
            await self._response.aclose()

    async def _drain(self) -> None:
        drained = 0
        async for data in self._raw:
            drained += len(data)
            if drained >= TAIL_BYTES:
                return


class HttpxSession:
    def __init__(self, headers: dict[str, str], max_connections: int, transport: Any = None) -> None:
        import httpx

        # Decoded by replay, in bounded pieces (see the module's docstring); so only these are asked for.
        self.decodes = INFLATES
        headers = {"accept-encoding": "gzip, deflate", **headers}
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
                raise TransportFailure("timeout", describe(exc)) from None
            except httpx.ConnectError as exc:
                raise TransportFailure("connection_error", describe(exc)) from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if _disconnected(exc) and not last and loop.time() - sent_at < STALE_WINDOW_S:
                    continue  # a kept-alive connection the server had just closed: sent once more, as native does
                if "Receive buffer too long" in str(exc):  # h11's bound on the header block
                    raise headers_too_large() from None
                what = "no response" if _disconnected(exc) else "malformed HTTP response"
                raise TransportFailure("connection_error", f"{what}: {describe(exc)}") from None
            except httpx.TransportError as exc:
                raise TransportFailure("connection_error", describe(exc)) from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._client.aclose()


async def _held(content: bytes) -> AsyncIterator[bytes]:
    yield content


def _disconnected(exc: BaseException) -> bool:
    """An httpx error that means the connection closed before an answer (not a malformed one)."""
    import httpx

    return not isinstance(exc, httpx.RemoteProtocolError) or "disconnected" in str(exc).lower()
