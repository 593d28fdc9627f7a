"""A scripted fault server on 127.0.0.1: each path answers a chat request in one wrong way.

The first path segment names the fault: ``POST /gzip/v1/chat/completions`` is answered
gzip-compressed, ``/redirect/...`` with a 302, and so on (:data:`FAULTS`). Raw bytes are
written by hand, so each misbehaviour is exactly what real servers were seen to do. It
runs on its own thread and event loop, so every transport (and the CLI) can be pointed
at it as at a real server.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import Awaitable, Callable

ANSWER = "Parcel 7 is in Oslo."
CHUNK = {"id": "chatcmpl-f", "object": "chat.completion.chunk", "model": "fault-model"}
COMPLETION = {
    "id": "chatcmpl-f", "object": "chat.completion", "model": "fault-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
}  # fmt: skip


def sse_events() -> bytes:
    """A whole streamed answer, as the SSE body (not yet framed)."""
    deltas = [{"role": "assistant", "content": ""}, {"content": "Parcel 7 "}, {"content": "is in Oslo."}]
    events = [{**CHUNK, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    events.append({**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**CHUNK, "choices": [], "usage": COMPLETION["usage"]})
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: [DONE]\n\n"


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def head(status: str, *headers: str) -> bytes:
    return ("HTTP/1.1 " + status + "\r\n" + "".join(line + "\r\n" for line in headers) + "\r\n").encode("latin-1")


@dataclass
class Request:
    fault: str
    headers: dict[str, str]
    body: dict
    raw_head: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def streamed(self) -> bool:
        return bool(self.body.get("stream"))

    def answer(self) -> bytes:
        """The right answer to this request: a chunked event stream, or a JSON body."""
        if self.streamed:
            return head("200 OK", "content-type: text/event-stream", "transfer-encoding: chunked") + chunked(sse_events()) + b"0\r\n\r\n"
        body = json.dumps(COMPLETION).encode()
        return head("200 OK", "content-type: application/json", f"content-length: {len(body)}") + body


@dataclass
class Stats:
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    bytes_sent: int = 0


Fault = Callable[[Request, "FaultServer"], Awaitable[bool]]
"""Answers one request; returns whether to keep the connection for the next one."""
FAULTS: dict[str, Fault] = {}


def fault(name: str) -> Callable[[Fault], Fault]:
    def register(function: Fault) -> Fault:
        FAULTS[name] = function
        return function

    return register


async def send(request: Request, server: "FaultServer", data: bytes) -> None:
    request.writer.write(data)
    server.stats.bytes_sent += len(data)
    await request.writer.drain()


# --- answers that are right, to check the transports against ---------------------------------------


@fault("ok")
async def _ok(request: Request, server: "FaultServer") -> bool:
    await send(request, server, request.answer())
    return True


@fault("lagging-terminator")
async def _lagging_terminator(request: Request, server: "FaultServer") -> bool:
    """uvicorn: the last chunk (the chunked terminator) is written on its own, a moment after [DONE]."""
    answer = request.answer()
    if not request.streamed:
        await send(request, server, answer)
        return True
    await send(request, server, answer[: -len(b"0\r\n\r\n")])
    await asyncio.sleep(0.005)
    await send(request, server, b"0\r\n\r\n")
    return True


@fault("close-after-stream")
async def _close_after_stream(request: Request, server: "FaultServer") -> bool:
    """llama.cpp: the answer says nothing about closing, then the connection is closed."""
    await send(request, server, request.answer())
    return False


@fault("slow-bytes")
async def _slow_bytes(request: Request, server: "FaultServer") -> bool:
    for index, byte in enumerate(request.answer()):
        await send(request, server, bytes([byte]))
        if index % 16 == 0:
            await asyncio.sleep(0.001)
    return True


@fault("huge-header")
async def _huge_header(request: Request, server: "FaultServer") -> bool:
    answer = request.answer()
    await send(request, server, answer.replace(b"\r\n", b"\r\nx-trace: " + b"t" * 16_000 + b"\r\n", 1))
    return True


@fault("many-headers")
async def _many_headers(request: Request, server: "FaultServer") -> bool:
    extra = b"".join(b"x-h%d: %d\r\n" % (n, n) for n in range(200))
    await send(request, server, request.answer().replace(b"\r\n", b"\r\n" + extra, 1))
    return True


def _compressed(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # raw deflate, as some servers send it
    return compressor.compress(data) + compressor.flush()


def _compressing(encoding: str) -> Fault:
    async def answer(request: Request, server: "FaultServer") -> bool:
        """Compressed though the client said ``Accept-Encoding: identity`` (or did not ask)."""
        name = "deflate" if encoding == "raw-deflate" else encoding
        if request.streamed:
            body = _compressed(encoding, sse_events())
            data = head("200 OK", "content-type: text/event-stream", f"content-encoding: {name}", "transfer-encoding: chunked")
            # in two chunks, so the decoder is fed across reads
            data += chunked(body[: len(body) // 2]) + chunked(body[len(body) // 2 :]) + b"0\r\n\r\n"
        else:
            body = _compressed(encoding, json.dumps(COMPLETION).encode())
            data = head("200 OK", "content-type: application/json", f"content-encoding: {name}", f"content-length: {len(body)}") + body
        await send(request, server, data)
        return True

    return answer


for _encoding in ("gzip", "deflate", "raw-deflate"):
    FAULTS[_encoding] = _compressing(_encoding)


@fault("bad-gzip")
async def _bad_gzip(request: Request, server: "FaultServer") -> bool:
    body = b"this was never gzip"
    await send(request, server, head("200 OK", "content-type: application/json", "content-encoding: gzip", f"content-length: {len(body)}") + body)
    return True


@fault("json-to-stream")
async def _json_to_stream(request: Request, server: "FaultServer") -> bool:
    """A server that ignores ``stream: true`` and answers a whole JSON body."""
    body = json.dumps(COMPLETION).encode()
    await send(request, server, head("200 OK", "content-type: application/json", f"content-length: {len(body)}") + body)
    return True


@fault("stream-labelled-json")
async def _stream_labelled_json(request: Request, server: "FaultServer") -> bool:
    """An event stream sent as ``application/json``."""
    await send(request, server, request.answer().replace(b"text/event-stream", b"application/json"))
    return True


@fault("json-untyped")
async def _json_untyped(request: Request, server: "FaultServer") -> bool:
    """The same, without a content type."""
    body = json.dumps(COMPLETION, indent=2).encode()
    await send(request, server, head("200 OK", f"content-length: {len(body)}") + body)
    return True


# --- answers that must be named ----------------------------------------------------------------------


@fault("redirect")
async def _redirect(request: Request, server: "FaultServer") -> bool:
    await send(request, server, head("302 Found", "location: https://api.example.com/v1/chat/completions", "content-length: 0"))
    return True


@fault("redirect-relative")
async def _redirect_relative(request: Request, server: "FaultServer") -> bool:
    await send(request, server, head("307 Temporary Redirect", "location: /v2/chat/completions", "content-length: 0"))
    return True


@fault("brotli")
async def _brotli(request: Request, server: "FaultServer") -> bool:
    body = b"\x1b\x00\xf8\xa5\x00"  # not decodable without brotli, and not meant to be
    await send(request, server, head("200 OK", "content-type: application/json", "content-encoding: br", f"content-length: {len(body)}") + body)
    return True


@fault("html")
async def _html(request: Request, server: "FaultServer") -> bool:
    body = b"<html><body>Sign in to the captive portal</body></html>"
    await send(request, server, head("200 OK", "content-type: text/html", f"content-length: {len(body)}") + body)
    return True


@fault("huge-body")
async def _huge_body(request: Request, server: "FaultServer") -> bool:
    """A 200 MB answer without a declared size, written until the client stops reading."""
    if request.streamed:
        await send(request, server, head("200 OK", "content-type: text/event-stream", "transfer-encoding: chunked"))
        piece = chunked(b": " + b"p" * 65_000 + b"\n")
    else:
        await send(request, server, head("200 OK", "content-type: application/json", "connection: close"))
        piece = b'{"pad": "' + b"p" * 65_000
    for _ in range(200_000_000 // len(piece)):
        await send(request, server, piece)
    return False


@fault("huge-declared")
async def _huge_declared(request: Request, server: "FaultServer") -> bool:
    await send(request, server, head("200 OK", "content-type: application/json", "content-length: 200000000"))
    for _ in range(200_000_000 // 65_536):
        await send(request, server, b" " * 65_536)
    return False


_BOMB: list[bytes] = []


@fault("gzip-bomb")
async def _gzip_bomb(request: Request, server: "FaultServer") -> bool:
    """200 MB of zeros in about 200 KB of gzip."""
    if not _BOMB:
        compressor = zlib.compressobj(9, wbits=31)
        zeros = bytes(1 << 20)
        _BOMB.append(b"".join(compressor.compress(zeros) for _ in range(200)) + compressor.flush())
    body = _BOMB[0]
    await send(request, server, head("200 OK", "content-type: application/json", "content-encoding: gzip", f"content-length: {len(body)}") + body)
    return True


@fault("endless-header")
async def _endless_header(request: Request, server: "FaultServer") -> bool:
    """A header line that never ends."""
    await send(request, server, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-pad: ")
    for _ in range(200_000_000 // 65_536):
        await send(request, server, b"p" * 65_536)
    return False


@fault("echo-401")
async def _echo_401(request: Request, server: "FaultServer") -> bool:
    message = f"Incorrect API key provided: {request.headers.get('authorization', '')}."
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
    await send(request, server, head("401 Unauthorized", "content-type: application/json", f"content-length: {len(body)}") + body)
    return True


@fault("echo-500")
async def _echo_500(request: Request, server: "FaultServer") -> bool:
    body = ("Internal error while handling\n" + request.raw_head).encode("latin-1")
    await send(request, server, head("500 Internal Server Error", "content-type: text/plain", f"content-length: {len(body)}") + body)
    return True


@fault("echo-answer")
async def _echo_answer(request: Request, server: "FaultServer") -> bool:
    """A debugging gateway that answers with the request's headers."""
    text = " ".join(f"{name}={value}" for name, value in request.headers.items())
    body = json.dumps({**COMPLETION, "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}).encode()
    await send(request, server, head("200 OK", "content-type: application/json", f"content-length: {len(body)}") + body)
    return True


# --- answers that break ------------------------------------------------------------------------------


@fault("banner")
async def _banner(request: Request, server: "FaultServer") -> bool:
    """Another protocol on the port: it answers a line of its own and hangs up."""
    await send(request, server, b"SSH-2.0-OpenSSH_9.6\r\n")
    return False


@fault("reset-mid-stream")
async def _reset_mid_stream(request: Request, server: "FaultServer") -> bool:
    first = sse_events().split(b"\n\n")[1] + b"\n\n"
    await send(request, server, head("200 OK", "content-type: text/event-stream", "transfer-encoding: chunked") + chunked(first))
    await asyncio.sleep(0.02)
    sock = request.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a TCP reset
    request.writer.transport.abort()
    return False


@fault("short-body")
async def _short_body(request: Request, server: "FaultServer") -> bool:
    """A 200 with a Content-Length the body never reaches."""
    body = (sse_events() if request.streamed else json.dumps(COMPLETION).encode())[:60]
    kind = "text/event-stream" if request.streamed else "application/json"
    await send(request, server, head("200 OK", f"content-type: {kind}", "content-length: 5000") + body)
    return False


@fault("comments-only")
async def _comments_only(request: Request, server: "FaultServer") -> bool:
    """An event stream that sends keep-alive comments, then ends without an event."""
    body = chunked(b": ping\n\n" * 3) + b"0\r\n\r\n"
    await send(request, server, head("200 OK", "content-type: text/event-stream", "transfer-encoding: chunked") + body)
    return True


@fault("stall")
async def _stall(request: Request, server: "FaultServer") -> bool:
    """The status line and headers, then nothing."""
    await send(request, server, head("200 OK", "content-type: text/event-stream", "transfer-encoding: chunked"))
    await asyncio.sleep(30)
    return False


class FaultServer:
    def __init__(self, greeting: bytes | None = None) -> None:
        """With ``greeting``, every connection gets it at once and is closed: another protocol's server."""
        self.greeting = greeting
        self.stats = Stats()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fault-server")

    def url(self, fault_name: str) -> str:
        """The ``base_url`` of an arm that meets ``fault_name``."""
        assert fault_name in FAULTS, fault_name
        return f"http://127.0.0.1:{self.port}/{fault_name}/v1"

    def __enter__(self) -> "FaultServer":
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._connection, "127.0.0.1", 0), self._loop)
        self._server = started.result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self.greeting is not None:
            writer.write(self.greeting)
            writer.close()
            return
        try:
            while (request := await self._read(reader, writer)) is not None:
                self.stats.requests.append(request)
                if not await FAULTS[request.fault](request, self):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):  # cancelled: the server stops
            pass
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
        try:
            raw = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = raw.split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))) or b"{}")
        fault_name = lines[0].split(" ")[1].strip("/").split("/")[0]
        return Request(fault_name, headers, body, raw, reader, writer)
