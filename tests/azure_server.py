"""A local Azure OpenAI data-plane server on 127.0.0.1, in Azure's shapes.

``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` with an ``api-key``
header; a missing or wrong key is Azure's 401, an unknown deployment its 404
``DeploymentNotFound``, a missing ``api-version`` its 404 ``Resource not found``. A stream opens
with the ``prompt_filter_results`` chunk (no choices, empty model) and every content chunk
carries ``content_filter_results``, as Azure's do. ``[azure:429*N]`` in the last user message
answers N times with Azure's 429 (its message says when to retry, ``retry-after`` only with
``[azure:429h*N]``).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from replay.mockserver import MockServer, ServerConfig, last_user_text

KEY = "azure-test-key-0123456789"
ANSWER = "Parcel 7 is in Oslo."
DEPLOYMENT = "gpt-4o-mini-prod"
_DIRECTIVE = re.compile(r"\[azure:(429h?)\*(\d+)\]")
_FILTERS = {kind: {"filtered": False, "severity": "safe"} for kind in ("hate", "self_harm", "sexual", "violence")}


class AzureServer(MockServer):
    def __init__(self) -> None:
        super().__init__(ServerConfig(latency_ms=5))
        self.requests: list[dict] = []
        """Per request: the path, the query, the headers and the body."""
        self._refused: dict[str, int] = {}

    async def _handle(self, method, path, headers, raw, writer):
        url = urlsplit(path)
        query = parse_qs(url.query)
        body = json.loads(raw) if raw else {}
        self.requests.append({"path": url.path, "query": query, "headers": dict(headers), "body": body})
        if headers.get("api-key") != KEY:
            message = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key"
                       " for an active subscription and use a correct regional API endpoint for your resource.")  # fmt: skip
            await self._send_json(writer, 401, {"error": {"code": "401", "message": message}})
            return True
        match = re.fullmatch(r"/openai/deployments/([^/]+)/chat/completions", url.path)
        if not match or "api-version" not in query:
            await self._send_json(writer, 404, {"error": {"code": "404", "message": "Resource not found"}})
            return True
        if match.group(1) != DEPLOYMENT:
            message = "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."
            await self._send_json(writer, 404, {"error": {"code": "DeploymentNotFound", "message": message}})
            return True
        prompt = last_user_text(body)
        limited = _DIRECTIVE.search(prompt)
        if limited and self._refused.get(prompt, 0) < int(limited.group(2)):
            self._refused[prompt] = self._refused.get(prompt, 0) + 1
            message = (f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {query['api-version'][0]}"
                       " have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.")  # fmt: skip
            extra = {"retry-after": "1", "retry-after-ms": "1000"} if limited.group(1) == "429h" else {}
            await self._send_json(writer, 429, {"error": {"code": "429", "message": message}}, extra)
            return True
        await self._azure_stream(writer, body)
        return True

    async def _azure_stream(self, writer, body) -> None:
        def event(payload) -> bytes:
            line = f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()
            return f"{len(line):x}\r\n".encode() + line + b"\r\n"

        base = {"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1733000000, "model": "gpt-4o-mini-2024-07-18",
                "system_fingerprint": "fp_az"}  # fmt: skip
        opening = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                   "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _FILTERS}]}  # fmt: skip
        pieces = [opening]
        for i, text in enumerate(("", "Parcel 7 ", "is in Oslo.")):
            delta = {"content": text, **({"role": "assistant"} if i == 0 else {})}
            pieces.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None,
                                                "content_filter_results": {} if i == 0 else _FILTERS}]})  # fmt: skip
        pieces.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "content_filter_results": {}}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            pieces.append({**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}})
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
        writer.write(head + b"".join(event(piece) for piece in pieces) + event("[DONE]") + b"0\r\n\r\n")
        await writer.drain()
