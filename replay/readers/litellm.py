"""``litellm``: LiteLLM StandardLoggingPayload records (callback ``standard_logging_object``, proxy
logs) and ``LiteLLM_SpendLogs`` exports, one JSON object a line.

Payload: ``id``, ``trace_id``, ``model``/``model_group``, ``messages``, ``model_parameters``,
``response`` (OpenAI-shaped), ``status`` (``success``/``failure``), ``error_str``, ``startTime``/
``endTime``/``completionStartTime`` (epoch seconds), ``request_tags``, ``end_user``, ``metadata``.
Spend log: ``request_id``, ``session_id``, ``messages``, ``proxy_server_request`` (the raw body),
``response``, ``spend``, ``user``, ISO times. The proxy stores no prompt unless
``general_settings.store_prompts_in_spend_logs: true``: such a record is an error that says so.
"""

from __future__ import annotations

from typing import Any

from replay.readers.base import register_reader
from replay.readers.objects import as_dict, dig, instant, iso, json_text, object_reader, record, seconds_between
from replay.readers.records import PARAMETERS
from replay.types import Location, LogRecord

NO_PROMPT = ("the prompt was not stored ('messages' is empty: LiteLLM's spend logs keep no prompt unless"
             " general_settings.store_prompts_in_spend_logs: true, and turn_off_message_logging drops it)")  # fmt: skip


def _request(obj: dict[str, Any]) -> dict[str, Any]:
    raw = json_text(obj.get("proxy_server_request"))
    messages = json_text(obj.get("messages"))
    if isinstance(raw, dict) and isinstance(raw.get("messages"), list) and raw["messages"]:
        request = {key: value for key, value in raw.items() if key == "messages" or key in PARAMETERS}
    elif isinstance(messages, list) and messages:
        params = json_text(obj.get("model_parameters")) or {}
        request = {key: value for key, value in params.items() if key in PARAMETERS} if isinstance(params, dict) else {}
        request["messages"] = messages
    else:
        raise ValueError(NO_PROMPT)
    request.setdefault("model", obj.get("model_group") or obj.get("model"))
    return request


def _convert(obj: dict[str, Any], location: Location) -> LogRecord:
    obj = as_dict(obj.get("standard_logging_object")) or obj
    spend_log = "request_id" in obj and "id" not in obj
    response = json_text(obj.get("response"))
    response = response if isinstance(response, dict) and response else None
    start, end, first = obj.get("startTime"), obj.get("endTime"), obj.get("completionStartTime")
    streamed = bool(obj.get("stream"))
    ttft = seconds_between(start, first, "completionStartTime") if first is not None and (
        streamed or (end is not None and instant(first, "completionStartTime") < instant(end, "endTime"))) else None
    failed = obj.get("status") == "failure"
    error = (obj.get("error_str") or dig(obj, "error_information", "error_message") or "failure") if failed else None
    code = dig(obj, "error_information", "error_code")
    status = int(code) if failed and isinstance(code, str) and code.isdigit() else (None if failed else 200)
    metadata = json_text(obj.get("metadata"))
    metadata = metadata if isinstance(metadata, dict) else {}
    return record(
        location,
        id=obj.get("request_id") if spend_log else obj.get("id"),
        id_field="request_id" if spend_log else "id",
        request=_request(obj),
        messages_field="messages",
        response=None if failed else response,
        latency_ms=seconds_between(start, end, "endTime"),
        ttft_ms=ttft,
        status=status,
        error=error,
        timestamp=iso(start, "startTime"),
        metadata={
            "model": obj.get("model"),
            "provider": obj.get("custom_llm_provider"),
            "user": obj.get("end_user") or obj.get("user") or metadata.get("user_api_key_user_id"),
            "session_id": obj.get("session_id") or obj.get("trace_id"),
            "tags": obj.get("request_tags") or None,
            "team": obj.get("team_id") or metadata.get("user_api_key_team_id"),
            "cost_usd": obj.get("response_cost", obj.get("spend")),
            "cache_hit": obj.get("cache_hit"),
        },
    )


read_litellm = register_reader("litellm")(object_reader(_convert))
