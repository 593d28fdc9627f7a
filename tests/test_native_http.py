"""The native HTTP/1.1 client against scripted servers on 127.0.0.1: framing, keep-alive, failures, TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
import time
from typing import Awaitable, Callable

import pytest

from replay.providers.transports.base import TransportFailure
from replay.providers.transports import native
from replay.providers.transports.native import HIGH_WATER, NativeSession

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    """Counts connections and keeps every request head it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        self.heads.append(head)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        body = await reader.readexactly(length)
        self.bodies.append(body)
        return body

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        finally:
            writer.close()


async def start(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> tuple[Server, asyncio.Server, int]:
    server = Server(handler)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=ssl_context)
    return server, listener, listener.sockets[0].getsockname()[1]


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra + b"content-length: %d\r\n\r\n" % len(body) + body


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
    while (body := await server.read_request(reader)) is not None:
        writer.write(ok(b'{"echo": ' + body + b"}"))
        await writer.drain()


async def post(session: NativeSession, port: int, body: bytes = b'{"a": 1}', path: str = "/v1/chat/completions"):
    response = await session.post(f"http://127.0.0.1:{port}{path}", body, 5.0)
    try:
        return response.status, response.headers, await response.read()
    finally:
        await response.close()


def two_posts(handler: Handler, pause: float = 0.0):
    """Two requests through one session to a server running ``handler``: (server, first, second)."""

    async def main():
        server, listener, port = await start(handler)
        session = NativeSession({}, 4)
        first = await post(session, port)
        await asyncio.sleep(pause)
        second = await post(session, port)
        await session.close()
        listener.close()
        return server, first, second

    return asyncio.run(main())


def test_content_length_answers_reuse_one_kept_alive_connection():
    async def main():
        server, listener, port = await start(keep_answering)
        session = NativeSession({"authorization": "Bearer k", "content-type": "application/json"}, 4)
        answers = [await post(session, port, b'{"n": %d}' % n) for n in range(3)]
        await session.close()
        listener.close()
        return server, answers, port

    server, answers, port = asyncio.run(main())
    assert [body for _, _, body in answers] == [b'{"echo": {"n": %d}}' % n for n in range(3)]
    assert answers[0][0] == 200 and answers[0][1]["content-type"] == "application/json"
    assert server.connections == 1
    head = server.heads[0].decode()
    assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{port}\r\n" in head
    assert "authorization: Bearer k\r\n" in head and "content-length: 8\r\n" in head
    assert "accept-encoding: identity\r\n" in head


def test_chunked_body_is_handed_on_as_it_arrives():
    release = asyncio.Event()

    async def stream(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n")
        writer.write(b"6\r\ndata: \r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"8\r\n[DONE]\n\n\r\n0\r\n\r\n")
        await writer.drain()
        await server.read_request(reader)  # keeps the connection open until the client leaves

    async def main():
        _, listener, port = await start(stream)
        session = NativeSession({}, 4)
        response = await session.post(f"http://127.0.0.1:{port}/x", b"{}", 5.0)
        pieces = []
        async for data in response.chunks():
            pieces.append(data)
            release.set()  # the second piece is only sent once the first has been read
        await response.close()
        await session.close()
        listener.close()
        return pieces

    assert asyncio.run(main()) == [b"data: ", b"[DONE]\n\n"]


def test_a_body_delimited_by_closing_the_connection_is_read_to_the_end():
    async def close_delimited(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        await writer.drain()

    server, first, second = two_posts(close_delimited)
    assert first[2] == second[2] == b"all of it"
    assert server.connections == 2  # a connection the server closes is never reused


def test_a_kept_alive_connection_closed_by_the_server_is_replaced_without_an_error():
    async def one_answer_then_close(reader, writer, server):
        await server.read_request(reader)
        writer.write(ok(b"{}"))  # says keep-alive, then closes anyway (an idle timeout)
        await writer.drain()

    # the pause: the close reaches the client while the connection is idle
    server, first, second = two_posts(one_answer_then_close, pause=0.05)
    assert first[2] == second[2] == b"{}"
    assert server.connections == 2


def test_a_stale_connection_that_looks_open_is_retried_once_on_a_new_one():
    """The server closed the idle connection, but the client has not seen the close yet."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    closed = threading.Event()
    served: list[int] = []

    def serve() -> None:
        for number in (1, 2):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(ok(b'{"connection": %d}' % number))
                served.append(number)
                if number == 1:
                    conn.shutdown(socket.SHUT_RDWR)
            closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    async def main():
        session = NativeSession({}, 4)
        first = await post(session, port)
        closed.wait(5)  # blocks the loop: the client cannot notice the close before it reuses
        time.sleep(0.05)
        second = await post(session, port)
        await session.close()
        return first, second

    first, second = asyncio.run(main())
    thread.join(5)
    listener.close()
    assert (first[2], second[2]) == (b'{"connection": 1}', b'{"connection": 2}')
    assert served == [1, 2]


@pytest.mark.parametrize(
    ("reply", "kind", "message"),
    [
        (b"", "connection_error", "no response"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel", "truncated_stream", "cut short"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf", "truncated_stream", "cut short"),
        (b"NOT HTTP AT ALL\r\n\r\n", "connection_error", "malformed HTTP response"),
    ],
    ids=["closed-before-answer", "chunk-cut", "short-content-length", "garbage"],
)
def test_broken_answers_fail_with_the_kind_the_retry_policy_understands(reply, kind, message):
    async def broken(reader, writer, server):
        await server.read_request(reader)
        writer.write(reply)
        await writer.drain()

    async def main():
        _, listener, port = await start(broken)
        session = NativeSession({}, 4)
        try:
            with pytest.raises(TransportFailure) as info:
                await post(session, port)
            return info.value
        finally:
            await session.close()
            listener.close()

    failure = asyncio.run(main())
    assert failure.kind == kind
    assert message in str(failure)


def test_a_dead_port_is_a_connection_error():
    async def main():
        _, listener, port = await start(keep_answering)
        listener.close()
        await listener.wait_closed()
        session = NativeSession({}, 4)
        with pytest.raises(TransportFailure) as info:
            await post(session, port)
        return info.value

    failure = asyncio.run(main())
    assert failure.kind == "connection_error"
    assert "ConnectionRefusedError" in str(failure)


def test_an_abandoned_answer_closes_its_connection_instead_of_reusing_it():
    async def slow_second_half(reader, writer, server):
        while await server.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf ")
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(b"rest.")
            await writer.drain()

    async def main():
        server, listener, port = await start(slow_second_half)
        session = NativeSession({}, 4)
        response = await session.post(f"http://127.0.0.1:{port}/x", b"{}", 5.0)
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.05) if hasattr(asyncio, "timeout") else _timeout(0.05):
                await response.read()
        await response.close()
        answer = await post(session, port)
        await session.close()
        listener.close()
        return server, answer

    server, answer = asyncio.run(main())
    assert answer[2] == b"half rest."
    assert server.connections == 2


class _timeout:  # Python 3.10 has no asyncio.timeout
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def __aenter__(self):
        self.handle = asyncio.get_running_loop().call_later(self.seconds, asyncio.current_task().cancel)

    async def __aexit__(self, kind, exc, tb):
        self.handle.cancel()
        if kind is asyncio.CancelledError:
            raise asyncio.TimeoutError from None


def test_a_large_answer_is_read_whole_with_flow_control():
    payload = bytes(range(256)) * (3 * HIGH_WATER // 256)

    async def large(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(payload))
        writer.write(payload)
        await writer.drain()
        await server.read_request(reader)

    async def main():
        _, listener, port = await start(large)
        session = NativeSession({}, 4)
        response = await session.post(f"http://127.0.0.1:{port}/x", b"{}", 5.0)
        await asyncio.sleep(0.2)  # let the whole answer arrive unread: reading pauses past the mark
        paused = response._conn.paused
        body = await response.read()
        await response.close()
        await session.close()
        listener.close()
        return paused, body

    paused, body = asyncio.run(main())
    assert paused
    assert body == payload


def test_header_values_with_line_breaks_are_refused():
    with pytest.raises(ValueError, match="line break"):
        NativeSession({"x-tenant": "a\r\nx-injected: 1"}, 4)


def test_https_with_a_certificate_the_system_trusts(tmp_path, monkeypatch):
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    cert = authority.issue_cert("localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # what a company CA bundle looks like to OpenSSL

    async def main():
        server = Server(keep_answering)
        listener = await asyncio.start_server(server.serve, "localhost", 0, ssl=server_context)
        port = listener.sockets[0].getsockname()[1]
        session = NativeSession({}, 4)
        response = await session.post(f"https://localhost:{port}/v1/chat/completions", b"[1]", 5.0)
        body = await response.read()
        await response.close()
        untrusted = NativeSession({}, 4)
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(TransportFailure) as info:
            await untrusted.post(f"https://localhost:{port}/v1/chat/completions", b"[1]", 5.0)
        await session.close()
        listener.close()
        return server, body, info.value

    server, body, failure = asyncio.run(main())
    assert body == b'{"echo": [1]}'
    assert server.heads[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost:")
    assert failure.kind == "connection_error" and "CERTIFICATE_VERIFY_FAILED" in str(failure)


# --- protocol corners (found in review) ------------------------------------------------------


def _thread_server(reply: bytes, reset: bool = False) -> int:
    """Answer one request with ``reply`` then close (with a TCP reset when ``reset``)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(reply)
        time.sleep(0.05)
        if reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1]


@pytest.mark.parametrize(
    "reply, reset",
    [
        (b'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{"partial": ', True),
        (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n10\r\n{"partial": ', False),
    ],
    ids=["close-delimited-then-reset", "capitalised-chunked-then-close"],
)
def test_a_body_cut_short_is_never_taken_for_a_whole_one(reply, reset):
    async def main():
        session = NativeSession({}, 4)
        with pytest.raises(TransportFailure) as info:
            await post(session, _thread_server(reply, reset))
        return info.value

    assert asyncio.run(main()).kind == "truncated_stream"


def test_informational_answers_are_skipped_for_the_final_one():
    async def early_hints(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n")
        writer.write(ok(b'{"final": true}'))
        await writer.drain()
        await server.read_request(reader)

    async def main():
        _, listener, port = await start(early_hints)
        session = NativeSession({}, 4)
        answer = await post(session, port)
        await session.close()
        listener.close()
        return answer

    status, headers, body = asyncio.run(main())
    assert (status, body) == (200, b'{"final": true}')
    assert "link" not in headers


def test_switching_protocols_is_a_connection_error_not_an_answer():
    async def main():
        session = NativeSession({}, 4)
        with pytest.raises(TransportFailure) as info:
            await post(session, _thread_server(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"))
        return info.value

    failure = asyncio.run(main())
    assert failure.kind == "connection_error" and "101" in str(failure)


def test_a_server_that_closes_on_accept_fails_the_request_instead_of_hanging():
    async def close_at_once(reader, writer, server):
        writer.write(b"busy\r\n")
        await writer.drain()

    async def main():
        _, listener, port = await start(close_at_once)
        session = NativeSession({}, 4)
        try:
            async with asyncio.timeout(3) if hasattr(asyncio, "timeout") else _timeout(3):
                with pytest.raises(TransportFailure) as info:
                    await post(session, port)
        finally:
            listener.close()
        return info.value

    assert asyncio.run(main()).kind == "connection_error"


def test_bytes_after_a_whole_answer_keep_the_answer_and_drop_the_connection():
    async def answers_twice(reader, writer, server):
        while await server.read_request(reader) is not None:
            writer.write(ok(b'{"a":1}') + b"HTTP/1.1 500 Oops\r\ncontent-length: 5\r\n\r\nstray")
            await writer.drain()

    server, first, second = two_posts(answers_twice)
    assert first[0] == second[0] == 200 and first[2] == second[2] == b'{"a":1}'
    assert server.connections == 2


def test_a_request_the_server_worked_on_before_dropping_it_is_not_sent_twice(monkeypatch):
    monkeypatch.setattr(native, "STALE_WINDOW_S", 0.1)

    async def drops_the_second(reader, writer, server):
        await server.read_request(reader)
        writer.write(ok(b"{}"))
        await writer.drain()
        await server.read_request(reader)
        await asyncio.sleep(0.3)  # works on it, then fails without an answer

    async def main():
        server, listener, port = await start(drops_the_second)
        session = NativeSession({}, 4)
        await post(session, port)
        with pytest.raises(TransportFailure):
            await post(session, port)
        await session.close()
        listener.close()
        return server

    assert len(asyncio.run(main()).bodies) == 2  # not 3: the dropped request was not re-sent


def test_connections_idle_past_the_expiry_are_not_reused(monkeypatch):
    monkeypatch.setattr(native, "IDLE_EXPIRY_S", 0.05)

    async def main():
        server, listener, port = await start(keep_answering)
        session = NativeSession({}, 4)
        await post(session, port)
        await post(session, port)  # right away: reused
        await asyncio.sleep(0.1)
        await post(session, port)  # idle too long: a new connection
        await session.close()
        listener.close()
        return server

    assert asyncio.run(main()).connections == 2


def test_a_streamed_answer_keeps_its_connection_when_the_terminator_lags():
    from replay.providers.openai_compat import OpenAICompatProvider

    event = (b'data: {"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}'
             b"\n\ndata: [DONE]\n\n")  # fmt: skip

    async def lagging_terminator(reader, writer, server):
        while await server.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.005)  # uvicorn writes the terminator on its own
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async def main():
        server, listener, port = await start(lagging_terminator)
        provider = OpenAICompatProvider(base_url=f"http://127.0.0.1:{port}/v1", model="m", params={})
        texts = [(await provider.send(provider.build_body({"messages": [{"role": "user", "content": "x"}]}), 5)).text
                 for _ in range(3)]  # fmt: skip
        await provider.aclose()
        listener.close()
        return server, texts

    server, texts = asyncio.run(main())
    assert texts == ["hi"] * 3
    assert server.connections == 1


def test_paths_are_percent_encoded_and_bad_urls_fail_as_transport_errors():
    async def main():
        server, listener, port = await start(keep_answering)
        session = NativeSession({}, 4)
        await post(session, port, path="/v1/déploiement a/chat")
        with pytest.raises(TransportFailure) as info:
            await session.post("http://127.0.0.1:99999/v1", b"{}", 5.0)
        await session.close()
        listener.close()
        return server, info.value

    server, failure = asyncio.run(main())
    assert server.heads[0].startswith(b"POST /v1/d%C3%A9ploiement%20a/chat HTTP/1.1\r\n")
    assert failure.kind == "connection_error" and "99999" in str(failure)


@pytest.mark.parametrize("name", ["Host", "Content-Length", "x tenant"])
def test_headers_the_client_owns_or_that_are_not_tokens_are_refused(name):
    with pytest.raises(ValueError):
        NativeSession({name: "x"}, 4)


@pytest.mark.parametrize(
    "env, url, transport",
    [
        ({}, "https://api.example.com/v1", "native"),
        ({"HTTPS_PROXY": "http://proxy.internal:3128"}, "https://api.example.com/v1", "httpx"),
        ({"https_proxy": "http://proxy.internal:3128", "NO_PROXY": "example.com"}, "https://api.example.com/v1", "native"),
        ({"HTTP_PROXY": "http://proxy.internal:3128"}, "https://api.example.com/v1", "native"),  # http only
        ({"HTTPS_PROXY": "http://proxy.internal:3128", "HTTP_PROXY": "http://proxy.internal:3128"},
         "http://127.0.0.1:8000/v1", "native"),  # loopback never goes through a proxy
    ],
)
def test_an_arm_behind_a_proxy_goes_through_httpx(monkeypatch, env, url, transport):
    from replay.providers.openai_compat import OpenAICompatProvider

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    provider = OpenAICompatProvider(base_url=url, model="m", params={})
    assert provider.transport == transport
