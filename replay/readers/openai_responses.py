"""``openai-responses``: logged Responses API request/response pairs, converted to chat requests.

A line: ``{"id"?, "request": {<POST /v1/responses body>}, "response": {"object": "response", ...},
"latency_ms", "ttft_ms", "timestamp", "metadata"}`` (the shadow layout with a Responses body).

Converted: ``instructions`` (a system message), ``input`` (a string, or message, ``function_call``
and ``function_call_output`` items), ``max_output_tokens``, ``temperature``, ``top_p``, flat
function ``tools``, ``tool_choice``, ``parallel_tool_calls``, ``text.format`` (``response_format``),
``reasoning.effort``, ``metadata``, ``user``; the answer's ``output_text`` parts, function calls,
refusal, status (``incomplete`` is ``length``) and usage.

Lost, and listed per record in ``metadata.lost``: ``previous_response_id`` and ``conversation``
(the earlier turns live on OpenAI's side: the candidate sees this turn only), built-in tools
(web search, file search, code interpreter...), ``include``, ``truncation``, ``prompt_cache_key``,
``reasoning.summary``, and input files. ``store`` (whether OpenAI keeps the response) is dropped
without a word: it changes nothing in the answer.
"""

from __future__ import annotations

from typing import Any

import orjson

from replay.readers.base import register_reader
from replay.readers.objects import as_dict, chat_body, object_reader, record
from replay.types import Location, LogRecord

DIRECT = ("model", "temperature", "top_p", "tool_choice", "parallel_tool_calls", "metadata", "user", "seed")
LOST_KEYS = ("previous_response_id", "conversation", "include", "truncation", "prompt_cache_key",
             "background", "service_tier", "safety_identifier")  # fmt: skip


def _content(parts: Any, lost: set[str]) -> Any:
    if not isinstance(parts, list):
        return parts
    converted = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            converted.append({"type": "text", "text": part.get("text", "")})
        elif kind == "input_image":
            converted.append({"type": "image_url", "image_url": {"url": part.get("image_url") or part.get("file_id", "")}})
        else:
            lost.add(f"input part {kind}")
    if all(part["type"] == "text" for part in converted):
        return "".join(part["text"] for part in converted)
    return converted


def _messages(body: dict[str, Any], lost: set[str]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list):
        raise ValueError("'request.input' must be a string or a list of input items")
    for item in items:
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "message":
            messages.append({"role": item.get("role"), "content": _content(item.get("content"), lost)})
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name", ""), "arguments": item.get("arguments", "")}}  # fmt: skip
            if messages and messages[-1]["role"] == "assistant" and messages[-1].get("content") is None:
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                             "content": output if isinstance(output, str) else orjson.dumps(output).decode()})  # fmt: skip
        else:
            lost.add(f"input item {kind}")
    return messages


def chat_request(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A Responses request as a chat-completions request, and what it lost."""
    lost: set[str] = {key for key in LOST_KEYS if body.get(key) is not None}
    request: dict[str, Any] = {key: body[key] for key in DIRECT if body.get(key) is not None}
    if body.get("max_output_tokens") is not None:
        request["max_tokens"] = body["max_output_tokens"]
    tools = []
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("type") == "function":
            tools.append({"type": "function", "function": {key: tool[key] for key in ("name", "description", "parameters", "strict")
                                                           if key in tool}})  # fmt: skip
        else:
            lost.add(f"tool {tool.get('type') if isinstance(tool, dict) else tool}")
    if tools:
        request["tools"] = tools
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        request["response_format"] = {"type": "json_schema", "json_schema": {
            key: fmt[key] for key in ("name", "schema", "strict", "description") if key in fmt}}  # fmt: skip
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        request["response_format"] = {"type": "json_object"}
    reasoning = as_dict(body.get("reasoning"))
    if reasoning.get("effort"):
        request["reasoning_effort"] = reasoning["effort"]
    if reasoning.get("summary"):
        lost.add("reasoning.summary")
    request["messages"] = _messages(body, lost)
    return request, sorted(lost)


def chat_answer(response: dict[str, Any]) -> dict[str, Any]:
    texts, calls, refusal = [], [], None
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    texts.append(part.get("text", ""))
                elif part.get("type") == "refusal":
                    refusal = part.get("refusal")
        elif item.get("type") == "function_call":
            calls.append({"id": item.get("call_id"), "type": "function",
                          "function": {"name": item.get("name", ""), "arguments": item.get("arguments", "")}})  # fmt: skip
    status = response.get("status")
    finish = "tool_calls" if calls else {"completed": "stop", "incomplete": "length"}.get(str(status), status)
    if status == "incomplete" and (response.get("incomplete_details") or {}).get("reason") == "content_filter":
        finish = "content_filter"
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else None
    body = chat_body("".join(texts) if texts or not calls else None, model=response.get("model"), finish_reason=finish,
                     usage=usage and {"prompt_tokens": usage.get("input_tokens"), "completion_tokens": usage.get("output_tokens")},
                     tool_calls=calls or None, response_id=response.get("id"))  # fmt: skip
    if refusal is not None:
        body["choices"][0]["message"]["refusal"] = refusal
    return body


def _convert(obj: dict[str, Any], location: Location) -> LogRecord:
    body = obj.get("request")
    if not isinstance(body, dict):
        raise ValueError("'request' is required and must be a Responses API request object")
    request, lost = chat_request(body)
    response = as_dict(obj.get("response"))
    failed = response.get("status") == "failed" or response.get("error") is not None
    answer = chat_answer(response) if response and not failed else None
    metadata = as_dict(obj.get("metadata"))
    return record(
        location,
        id=obj.get("id") or response.get("id"),
        request=request,
        messages_field="request.input",
        response=answer,
        latency_ms=obj.get("latency_ms"),
        ttft_ms=obj.get("ttft_ms"),
        status=obj.get("status"),
        error=(response.get("error") or "failed") if failed else obj.get("error"),
        timestamp=obj.get("timestamp"),
        metadata={**metadata, "lost": lost or None},
    )


read_openai_responses = register_reader("openai-responses")(object_reader(_convert))
