"""Local HTTP servers for agent-session tests: a chat endpoint whose answers (text or tool
calls) a test scripts from the request, and a "tool" endpoint that only counts who calls it.

The chat endpoint speaks OpenAI chat completions without streaming (``stream: false`` arms),
which is all a session test needs of the protocol; the streaming dialect is checked against
the official SDK in test_mockserver_sdk.py.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Script = Callable[[dict[str, Any]], dict[str, Any]]
"""Request body -> the assistant message to answer (``content`` and/or ``tool_calls``)."""


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "_Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class AgentServer(_Server):
    """Answers each chat request with ``script(body)``; keeps every body received, in order."""

    def __init__(self, script: Script, redirect_to: str | None = None) -> None:
        self.script = script
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with server.lock:
                    server.bodies.append(body)
                if redirect_to is not None:
                    self.send_response(307)
                    self.send_header("location", redirect_to)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                message = {"role": "assistant", "content": None, **server.script(body)}
                finish = "tool_calls" if message.get("tool_calls") else "stop"
                payload = json.dumps({
                    "id": f"chatcmpl-{len(server.bodies)}", "object": "chat.completion", "model": body.get("model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        super().__init__(Handler)


class ToolHost(_Server):
    """A live endpoint a tool definition names: it must never be contacted. Counts every hit."""

    def __init__(self) -> None:
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _hit(self) -> None:
                server.hits += 1
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = do_DELETE = _hit

        super().__init__(Handler)


def tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
