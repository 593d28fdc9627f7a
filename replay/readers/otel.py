"""``otel-genai``: OTLP JSON trace exports (the collector's file exporter: one
``{"resourceSpans": [...]}`` export request a line), the inference spans following the GenAI
semantic conventions; other spans are counted as skipped.

Read, newest first: ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (with
``gen_ai.system_instructions``) as JSON attributes; the deprecated events
``gen_ai.{system,user,assistant,tool}.message`` and ``gen_ai.choice``; the flat
``gen_ai.prompt.N.{role,content}`` / ``gen_ai.completion.N.*`` attributes. Capturing content is
opt-in: a span without any of them is an error that says so. Latency is the span's duration,
TTFT ``gen_ai.response.time_to_first_chunk`` (seconds), tokens ``gen_ai.usage.*``.
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any

import orjson

from replay.readers.base import Skipped, register_reader
from replay.readers.objects import chat_body, label, object_reader, record
from replay.readers.records import shown
from replay.types import Location

INFERENCE = {"chat", "text_completion", "generate_content"}
PARAMS = {"temperature": "temperature", "top_p": "top_p", "max_tokens": "max_tokens", "seed": "seed",
          "stop_sequences": "stop", "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty"}  # fmt: skip
_PARAM_KEYS = tuple((f"gen_ai.request.{key}", name) for key, name in PARAMS.items())
NO_CONTENT = ("the span has no prompt (capturing message content is opt-in:"
              " OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)")  # fmt: skip


def _value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as plain data."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:  # spelled out, not a loop over the keys: every attribute goes through here
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "doubleValue" in value:
        return value["doubleValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_value(item) for item in (value["arrayValue"] or {}).get("values") or ()]
    if "kvlistValue" in value:
        return _attributes((value["kvlistValue"] or {}).get("values"))
    return None


def _attributes(items: Any) -> dict[str, Any]:
    try:  # well-formed attributes, in one pass without exceptions (a try per item costs more)
        attributes: dict[str, Any] = {}
        for item in items or ():  # a loop: cheaper than a comprehension's own frame, a span has a score
            key, value = item["key"], item["value"]  # both before the value is read, as the fallback reads them
            attributes[key] = value["stringValue"] if "stringValue" in value else _value(value)
        return attributes
    except (KeyError, TypeError):
        return _odd_attributes(items)


def _odd_attributes(items: Any) -> dict[str, Any]:
    """Attributes with an item that is not ``{"key", "value": {...}}``: read one by one."""
    attributes: dict[str, Any] = {}
    for item in items or ():
        try:
            key, value = item["key"], item["value"]
            attributes[key] = value["stringValue"]  # most attributes: one dict lookup
        except (KeyError, TypeError):
            if isinstance(item, dict) and "key" in item:
                attributes[item["key"]] = _value(item.get("value"))
    return attributes


def _json(value: Any, field: str) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError(f"'{field}' must hold JSON") from None
    return value


def _parts_message(message: dict[str, Any]) -> dict[str, Any]:
    """A semconv message (``role``, ``parts``) as a chat message."""
    parts = message.get("parts")
    if type(parts) is list and len(parts) == 1:  # the usual one text part, without the general loop
        part = parts[0]
        if type(part) is dict and part.get("type") == "text" and type(part.get("content")) is str:
            return {"role": message.get("role"), "content": part["content"]}
    texts, calls, result = [], [], None
    for part in message.get("parts") or ():
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("content", "")))
        elif kind == "tool_call":
            arguments = part.get("arguments")
            calls.append({"id": part.get("id"), "type": "function", "function": {
                "name": part.get("name", ""), "arguments": arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()}})
        elif kind == "tool_call_response":
            result = {"role": "tool", "tool_call_id": part.get("id"), "content": _text(part.get("result"))}
    if result is not None:
        return result
    chat: dict[str, Any] = {"role": message.get("role"), "content": "".join(texts) if texts or not calls else None}
    if calls:
        chat["tool_calls"] = calls
    return chat


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _from_attributes(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    if "gen_ai.input.messages" in attrs:
        return _from_messages(attrs)
    return _from_flat(attrs)


def _from_messages(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The JSON attributes: ``gen_ai.input.messages`` (with ``gen_ai.system_instructions``) and
    ``gen_ai.output.messages``."""
    messages = [_parts_message(m) for m in _json(attrs["gen_ai.input.messages"], "gen_ai.input.messages") or ()]
    system = attrs.get("gen_ai.system_instructions")
    if system is not None:
        system = _json(system, "gen_ai.system_instructions")
    if system:
        messages.insert(0, {"role": "system", "content": _system_text(system)})
    outputs = attrs.get("gen_ai.output.messages")
    if outputs is None:
        return messages, None
    outputs = _json(outputs, "gen_ai.output.messages")
    if not outputs:
        return messages, None
    first = outputs[0]
    return messages, {"message": _parts_message(first), "finish_reason": first.get("finish_reason")}


def _system_text(system: Any) -> str:
    if not isinstance(system, list):
        return str(system)
    if len(system) == 1 and type(system[0]) is dict:  # the usual one text part
        return str(system[0].get("content", ""))
    return "".join(str(p.get("content", "")) for p in system if isinstance(p, dict))


_FLAT = ("gen_ai.prompt.", "gen_ai.completion.0.")


def _from_flat(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    """The flat ``gen_ai.prompt.N.*`` / ``gen_ai.completion.0.*`` attributes."""
    prompt: dict[int, dict[str, Any]] = {}
    completion: dict[str, Any] = {}
    for key, value in attrs.items():  # one pass for both families of flat attributes
        if not key.startswith(_FLAT):  # most keys: one test
            continue
        if key.startswith("gen_ai.prompt."):
            parts = key.split(".", 3)
            if len(parts) == 4 and parts[2].isdigit():
                prompt.setdefault(int(parts[2]), {})[parts[3]] = value
        elif key.startswith("gen_ai.completion.0."):
            completion[key.split(".", 3)[3]] = value
    if not prompt:
        return None, None
    messages = [{"role": item.get("role", "user"), "content": item.get("content", "")} for _, item in sorted(prompt.items())]
    answer = {"message": {"role": "assistant", "content": completion.get("content")},
              "finish_reason": completion.get("finish_reason")} if completion else None  # fmt: skip
    return messages, answer


def _from_events(events: Any) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    messages: list[dict[str, Any]] = []
    answer = None
    for event in events or ():
        name = event.get("name", "") if isinstance(event, dict) else ""
        attrs = _attributes(event.get("attributes")) if name else {}
        body = _value(event.get("body")) if isinstance(event, dict) and "body" in event else {}
        fields = {**(body if isinstance(body, dict) else {}), **attrs}
        role = name[len("gen_ai."):-len(".message")] if name.startswith("gen_ai.") and name.endswith(".message") else None
        if role in ("system", "user", "assistant", "tool"):
            message: dict[str, Any] = {"role": role, "content": fields.get("content")}
            if role == "tool":
                message["tool_call_id"] = fields.get("id")
            messages.append(message)
        elif name == "gen_ai.choice" and answer is None:
            inner = _json(fields.get("message"), "gen_ai.choice.message") or {}
            answer = {"message": {"role": "assistant", "content": inner.get("content", fields.get("content"))},
                      "finish_reason": fields.get("finish_reason")}  # fmt: skip
    return (messages or None), answer


def _flat_prompt(attrs: dict[str, Any]) -> bool:
    """Whether a span has a ``gen_ai.prompt.*`` attribute (a loop: ``any()`` of a generator costs more)."""
    for key in attrs:
        if key.startswith("gen_ai.prompt."):
            return True
    return False


def _span(span: dict[str, Any], resource: dict[str, Any], location: Location) -> Any:
    attrs = _attributes(span.get("attributes"))
    get = attrs.get  # a span's attributes are looked up a score of times
    operation = get("gen_ai.operation.name")
    if operation not in INFERENCE and not _flat_prompt(attrs):
        return Skipped(location, "not a GenAI inference span" if operation is None
                       else f"gen_ai.operation.name {shown(operation)}")  # fmt: skip
    messages, answer = _from_attributes(attrs)
    if messages is None:
        messages, answer = _from_events(span.get("events"))
    if messages is None:
        raise ValueError(f"span {label(span.get('spanId'), '(no spanId)')}: {NO_CONTENT}")
    request: dict[str, Any] = {"model": get("gen_ai.request.model"), "messages": messages}
    for key, name in _PARAM_KEYS:
        if key in attrs:
            request[name] = attrs[key]
    status = span.get("status") or {}
    failed = status.get("code") in (2, "STATUS_CODE_ERROR") or "error.type" in attrs
    response = None
    if answer is not None and not failed:
        message = answer["message"]
        finish = answer.get("finish_reason") or (get("gen_ai.response.finish_reasons") or [None])[0]
        prompt = attrs["gen_ai.usage.input_tokens"] if "gen_ai.usage.input_tokens" in attrs else get("gen_ai.usage.prompt_tokens")
        completion = attrs["gen_ai.usage.output_tokens"] if "gen_ai.usage.output_tokens" in attrs \
            else get("gen_ai.usage.completion_tokens")  # fmt: skip
        usage = {"prompt_tokens": prompt, "completion_tokens": completion} if prompt is not None or completion is not None else None
        response = chat_body(message.get("content"), model=get("gen_ai.response.model"), finish_reason=finish, usage=usage,
                             tool_calls=message.get("tool_calls"), response_id=get("gen_ai.response.id"))  # fmt: skip
    start: int | None
    end: int | None
    try:  # the usual times, both present: what _nanos does, without two calls
        start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
    except (KeyError, TypeError, ValueError):
        start, end = _nanos(span.get("startTimeUnixNano")), _nanos(span.get("endTimeUnixNano"))
    first_chunk = get("gen_ai.response.time_to_first_chunk")
    return record(
        location,
        id=span.get("spanId"),
        id_field="spanId",
        request=request,
        messages_field="gen_ai.input.messages",
        response=response,
        latency_ms=(end - start) / 1e6 if start is not None and end is not None and end >= start else None,
        ttft_ms=first_chunk * 1000.0 if isinstance(first_chunk, (int, float)) else None,
        error=(get("error.type") or status.get("message") or "error") if failed else None,
        timestamp=_iso(start) if start is not None else None,
        metadata={
            "trace": span.get("traceId"),
            "provider": attrs["gen_ai.provider.name"] if "gen_ai.provider.name" in attrs else get("gen_ai.system"),
            "session_id": get("gen_ai.conversation.id"),
            "service": resource.get("service.name"),
            "span": span.get("name"),
        },
    )


def _iso(nanos: int) -> str:
    """``objects.iso(nanos / 1e9)`` without its dispatch on the value's type: an int is seconds.

    The microseconds are rounded as ``datetime.fromtimestamp`` rounds them (half to even, on
    the same float), and the text up to the second is formatted once per second: spans come
    many a second, and formatting a datetime costs more than reading the span."""
    if not 0 <= nanos < _FAST_NANOS:  # before 1970 or after 2286: datetime itself
        return datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    moment = nanos / 1e9
    seconds = int(moment)
    micros = round((moment - seconds) * 1e6)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    second = _second(seconds)
    return f"{second}.{micros:06d}Z" if micros else second + "Z"


_FAST_NANOS = 10**19


@functools.lru_cache(maxsize=1024)
def _second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of whole epoch seconds (UTC)."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()[: -len("+00:00")]


def _nanos(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"span time must be an integer of nanoseconds, got {value!r}") from None


def _convert(obj: dict[str, Any], location: Location) -> list[Any]:
    if not isinstance(obj.get("resourceSpans"), list):
        raise ValueError("'resourceSpans' is required (an OTLP JSON trace export)")
    items: list[Any] = []
    for resource_spans in obj["resourceSpans"]:
        resource = _attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope in resource_spans.get("scopeSpans") or ():
            for span in scope.get("spans") or ():
                try:
                    items.append(_span(span, resource, location))
                except ValueError as exc:
                    from replay.errors import LogFormatError

                    items.append(LogFormatError(location, str(exc)))
    return items


read_otel = register_reader("otel-genai")(object_reader(_convert))
