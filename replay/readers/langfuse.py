"""``langfuse``: a Langfuse observations export, one observation (or one API page,
``{"data": [...], "meta": ...}``) a line; only ``GENERATION`` observations are requests, the rest
(SPAN, EVENT...) are counted as skipped.

v1 (``/api/public/observations``): ``id``, ``traceId``, ``type``, ``model``, ``modelParameters``,
``input``, ``output``, ``startTime``, ``endTime``, ``completionStartTime``, ``latency`` and
``timeToFirstToken`` (seconds), ``usage{input,output,total}``, ``level``, ``statusMessage``.
v2 (``/api/public/v2/observations``) names the model ``providedModelName`` and the tokens
``usageDetails{input,output,total}``; both are read. Latency and TTFT come from the view's
seconds when present, else from the timestamps.
"""

from __future__ import annotations

from typing import Any

from replay.readers.base import Skipped, register_reader
from replay.readers.objects import as_dict, chat_body, label, object_reader, record, seconds_between
from replay.readers.records import PARAMETERS
from replay.types import Location, LogRecord


def _messages(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        return value["messages"]
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return value


def _answer(output: Any, model: Any, usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if output is None:
        return None
    if isinstance(output, dict) and "choices" in output:
        return output
    if isinstance(output, list) and output and isinstance(output[-1], dict):
        output = output[-1]
    if isinstance(output, dict):
        return chat_body(output.get("content"), model=model, usage=usage, tool_calls=output.get("tool_calls"),
                         finish_reason=output.get("finish_reason"))  # fmt: skip
    return chat_body(output if isinstance(output, str) else str(output), model=model, usage=usage)


def _usage(obj: dict[str, Any]) -> dict[str, Any] | None:
    usage = obj.get("usageDetails") or obj.get("usage") or {}
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input", usage.get("promptTokens")), usage.get("output", usage.get("completionTokens"))
    return {"prompt_tokens": prompt, "completion_tokens": completion} if prompt is not None or completion is not None else None


def _seconds(value: Any) -> float | None:
    return value * 1000.0 if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _convert(obj: dict[str, Any], location: Location) -> Any:
    if isinstance(obj.get("data"), list) and "type" not in obj:  # an API page
        return [_one(item, location) if isinstance(item, dict) else Skipped(location, "not an observation")
                for item in obj["data"]]  # fmt: skip
    return _one(obj, location)


def _one(obj: dict[str, Any], location: Location) -> LogRecord | Skipped:
    if obj.get("type") != "GENERATION":
        return Skipped(location, f"{label(obj.get('type'), 'untyped')} observation (only GENERATION is a request)")
    model = obj.get("providedModelName") or obj.get("model")
    params = as_dict(obj.get("modelParameters"))
    request = {key: value for key, value in params.items() if key in PARAMETERS}
    request["messages"] = _messages(obj.get("input"))
    if model is not None:
        request.setdefault("model", model)
    failed = obj.get("level") == "ERROR"
    latency = _seconds(obj.get("latency"))
    ttft = _seconds(obj.get("timeToFirstToken"))
    start = obj.get("startTime")
    return record(
        location,
        id=obj.get("id"),
        request=request,
        messages_field="input",
        response_field="output",
        response=None if failed else _answer(obj.get("output"), model, _usage(obj)),
        latency_ms=latency if latency is not None else seconds_between(start, obj.get("endTime"), "endTime"),
        ttft_ms=ttft if ttft is not None else seconds_between(start, obj.get("completionStartTime"), "completionStartTime"),
        error=(obj.get("statusMessage") or "ERROR") if failed else None,
        timestamp=start,
        metadata={
            "trace": obj.get("traceId"),
            "name": obj.get("name"),
            "user": obj.get("userId"),
            "session_id": obj.get("sessionId"),
            "tags": obj.get("tags") or None,
            "environment": obj.get("environment"),
            **as_dict(obj.get("metadata")),
        },
    )


read_langfuse = register_reader("langfuse")(object_reader(_convert))
