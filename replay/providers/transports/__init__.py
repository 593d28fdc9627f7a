"""Interchangeable HTTP sessions for providers: native (default), aiohttp and httpx.

At high concurrency the client is CPU-bound, and aiohttp and httpx spend several times
the CPU per streamed request that a replay needs (figures: the README's benchmark
section), so the default is replay's own lean HTTP/1.1 client (:mod:`.native`).
``transport: aiohttp`` and ``transport: httpx`` stay for what only they offer: proxies,
compression, ``httpx.MockTransport`` and vcrpy cassettes (vcrpy patches aiohttp and httpx).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from replay.providers.transports.base import Response, Session, TransportFailure, check_header, proxied


def make_session(name: str, headers: dict[str, str], max_connections: int, transport: Any = None,
                 endpoint: str | None = None) -> Session:  # fmt: skip
    """The session an arm's ``transport`` names (httpx whenever a test hands in an httpx transport),
    refusing any host but ``endpoint``'s when one is given.

    Each transport is imported only when chosen: an arm on the native transport loads neither
    aiohttp nor httpx."""
    session: Session
    if name == "httpx" or transport is not None:
        from replay.providers.transports.httpx_transport import HttpxSession

        session = HttpxSession(headers, max_connections, transport)
    elif name == "aiohttp":
        from replay.providers.transports.aiohttp_transport import AiohttpSession

        session = AiohttpSession(headers, max_connections)
    else:
        from replay.providers.transports.native import NativeSession

        session = NativeSession(headers, max_connections)
    return session if endpoint is None else OneHost(session, endpoint)


class OneHost:
    """A session that sends only to one endpoint's host (scheme, host and port).

    replay talks to the configured arms, the judge and the embeddings endpoint, and to nothing
    else: not a URL a logged tool definition names, not one a candidate's tool call carries, not
    a redirect's target (no transport follows redirects). Every session is made through this
    guard, so that stays true of any request a later feature might build."""

    def __init__(self, session: Session, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        self._session = session
        self._prefix = f"{parts.scheme}://{parts.netloc}/"
        self.decodes = session.decodes

    async def post(self, url: str, content: bytes, timeout_s: float) -> Response:
        if not url.startswith(self._prefix) and url != self._prefix[:-1]:
            raise TransportFailure("refused_host", f"refused to send to {urlsplit(url).netloc or url!r}: not a configured endpoint")
        return await self._session.post(url, content, timeout_s)

    async def close(self) -> None:
        await self._session.close()


__all__ = ["OneHost", "Response", "Session", "TransportFailure", "check_header", "make_session", "proxied"]
