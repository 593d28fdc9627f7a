"""Interchangeable HTTP sessions for providers: native (default), aiohttp and httpx.

At high concurrency the client is CPU-bound, and aiohttp and httpx spend several times
the CPU per streamed request that a replay needs (figures: the README's benchmark
section), so the default is replay's own lean HTTP/1.1 client (:mod:`.native`).
``transport: aiohttp`` and ``transport: httpx`` stay for what only they offer: proxies,
compression, ``httpx.MockTransport`` and vcrpy cassettes (vcrpy patches aiohttp and httpx).
"""

from __future__ import annotations

from typing import Any

from replay.providers.transports.base import Response, Session, TransportFailure, check_header, proxied


def make_session(name: str, headers: dict[str, str], max_connections: int, transport: Any = None) -> Session:
    """The session an arm's ``transport`` names (httpx whenever a test hands in an httpx transport).

    Each transport is imported only when chosen: an arm on the native transport loads neither
    aiohttp nor httpx."""
    if name == "httpx" or transport is not None:
        from replay.providers.transports.httpx_transport import HttpxSession

        return HttpxSession(headers, max_connections, transport)
    if name == "aiohttp":
        from replay.providers.transports.aiohttp_transport import AiohttpSession

        return AiohttpSession(headers, max_connections)
    from replay.providers.transports.native import NativeSession

    return NativeSession(headers, max_connections)


__all__ = ["Response", "Session", "TransportFailure", "check_header", "make_session", "proxied"]
