"""``helicone``: Helicone exports with bodies (``npx @helicone/export --include-body --format jsonl``,
or rows of ``/v1/request/query-clickhouse``), one request a line.

Read: ``request_id``, ``request_body`` (the raw provider body: chat completions or Anthropic
Messages), ``response_body``, ``response_status``, ``request_created_at``, ``delay_ms``,
``time_to_first_token``, ``request_user_id``, ``request_properties`` (custom properties, as
metadata), ``provider``, ``costUSD``. A row whose bodies were left in storage
(``signed_body_url``) is an error that says to export with ``--include-body``.
"""

from __future__ import annotations

from typing import Any

from replay.readers.base import register_reader
from replay.readers.objects import as_dict, json_text, object_reader, record
from replay.types import Location, LogRecord


def _convert(obj: dict[str, Any], location: Location) -> LogRecord:
    request = json_text(obj.get("request_body"))
    if request is None and obj.get("signed_body_url"):
        raise ValueError("'request_body' is not in the export (the bodies are behind signed_body_url:"
                         " export with --include-body)")  # fmt: skip
    response = json_text(obj.get("response_body"))
    status = obj.get("response_status")
    status = int(status) if isinstance(status, str) and status.isdigit() else status
    failed = isinstance(status, int) and status >= 400
    properties = as_dict(obj.get("request_properties"))
    return record(
        location,
        id=obj.get("request_id"),
        id_field="request_id",
        request=request,
        messages_field="request_body.messages",
        response=None if failed or not isinstance(response, dict) or not response else response,
        response_field="response_body",
        latency_ms=obj.get("delay_ms"),
        ttft_ms=obj.get("time_to_first_token"),
        status=status if isinstance(status, int) and status > 0 else None,
        error=(response.get("error", response) if isinstance(response, dict) else response) if failed else None,
        timestamp=obj.get("request_created_at"),
        metadata={"user": obj.get("request_user_id"), "provider": obj.get("provider"),
                  "model": obj.get("response_model") or obj.get("model"), "cost_usd": obj.get("costUSD"),
                  **properties},  # fmt: skip
    )


read_helicone = register_reader("helicone")(object_reader(_convert))
