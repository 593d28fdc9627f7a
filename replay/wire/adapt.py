"""Adapters between the two request dialects: an OpenAI chat request replayed against the
Anthropic Messages API, and a Messages request replayed against an OpenAI-compatible endpoint.

Pure functions. Every step that loses something (a parameter the other API lacks, a value
out of its range, two messages merged into one turn) is named in the body's ``lossy`` notes,
each an invariant sentence ``"<what>: <why>"``, so that a report can count them ("seed dropped
on 400 requests: Anthropic has none"); nothing is dropped silently.

Which dialect a logged request speaks is read from its shape (:func:`request_format`): a
top-level ``system``, Anthropic-only parameters (``stop_sequences``, ``thinking``, ``output_config``),
Anthropic content blocks (``tool_use``, ``tool_result``, ``image`` with a ``source``,
``document``, ``thinking``) or tools with an ``input_schema``. A request with none of them
(user and assistant messages of plain text, common parameters) reads the same in both.
"""

from __future__ import annotations

import json
from typing import Any

ANTHROPIC = "anthropic"
OPENAI = "openai"
JSON_TOOL_DESCRIPTION = "Give the answer by calling this tool: its input is the JSON answer."


class AdaptedBody(dict[str, Any]):
    """A request body as sent, with what adapting it lost (``lossy``) and, when a JSON
    ``response_format`` became a forced tool, that tool's name (``answer_tool``): its call is
    the answer's text. A dict, so it is sent and stored as the body it is."""

    lossy: tuple[str, ...] = ()
    answer_tool: str | None = None


def adapted(body: dict[str, Any], lossy: list[str], answer_tool: str | None = None) -> AdaptedBody:
    out = AdaptedBody(body)
    out.lossy = tuple(dict.fromkeys(lossy))
    out.answer_tool = answer_tool
    return out


# --- which dialect -------------------------------------------------------------------------

_ANTHROPIC_KEYS = ("system", "stop_sequences", "thinking", "output_config")
"""Not ``top_k``: vLLM and llama.cpp take it in chat requests too."""
_ANTHROPIC_BLOCKS = frozenset({"tool_use", "tool_result", "document", "thinking", "redacted_thinking", "server_tool_use"})


def request_format(request: dict[str, Any]) -> str:
    """``anthropic`` for a Messages request, ``openai`` for a chat request (or one that reads the same in both)."""
    for key in _ANTHROPIC_KEYS:
        if key in request:
            return ANTHROPIC
    for message in request.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if type(content) is list:
            for block in content:
                if isinstance(block, dict) and (block.get("type") in _ANTHROPIC_BLOCKS or
                                                (block.get("type") == "image" and "source" in block)):  # fmt: skip
                    return ANTHROPIC
    tools = request.get("tools")
    if type(tools) is list and tools and isinstance(tools[0], dict) and "input_schema" in tools[0]:
        return ANTHROPIC
    return OPENAI


# --- OpenAI chat -> Anthropic Messages ------------------------------------------------------

_KEPT = ("temperature", "top_p", "stream")
_DROPPED = {
    "seed": "seed dropped: Anthropic has none",
    "logit_bias": "logit_bias dropped: Anthropic has none",
    "frequency_penalty": "frequency_penalty dropped: Anthropic has none",
    "presence_penalty": "presence_penalty dropped: Anthropic has none",
    "logprobs": "logprobs dropped: Anthropic has none",
    "top_logprobs": "top_logprobs dropped: Anthropic has none",
}
_SILENT = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "stream_options", "n", "stop", "tools",
                     "tool_choice", "parallel_tool_calls", "response_format", "user"})  # fmt: skip
"""Keys converted below (or meaningless to Anthropic, ``stream_options``): every other key not
in :data:`_KEPT` is dropped and named."""


def chat_to_messages(request: dict[str, Any], default_max_tokens: int) -> AdaptedBody:
    """A logged OpenAI chat request as a Messages body."""
    lossy: list[str] = []
    system, turns = _turns(request.get("messages") or [], lossy)
    body: dict[str, Any] = {"model": request.get("model"), "max_tokens": _max_tokens(request, default_max_tokens, lossy)}
    if system:
        body["system"] = system
    body["messages"] = turns
    for key, value in request.items():
        if key in _KEPT and value is not None:
            body[key] = value
        elif key not in _SILENT and value is not None:
            lossy.append(_DROPPED.get(key, f"{key} dropped: Anthropic has none"))
    _sampling(request, body, lossy)
    answer_tool = _tools(request, body, lossy)
    return adapted(body, lossy, answer_tool)


def _max_tokens(request: dict[str, Any], default: int, lossy: list[str]) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        if isinstance(request.get(key), int):
            return int(request[key])
    lossy.append(f"max_tokens {default} supplied: the log has none and Anthropic requires it")
    return default


def _sampling(request: dict[str, Any], body: dict[str, Any], lossy: list[str]) -> None:
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)) and temperature > 1:
        body["temperature"] = 1
        lossy.append("temperature capped at 1: Anthropic allows 0 to 1")
    n = request.get("n")
    if isinstance(n, int) and n > 1:
        lossy.append("n > 1 dropped: Anthropic answers once")
    stop = request.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if stops:
        kept = [item for item in stops if isinstance(item, str) and item.strip()]
        if len(kept) < len(stops):
            lossy.append("whitespace-only stop dropped: Anthropic refuses it")
        if kept:
            body["stop_sequences"] = kept
    if isinstance(request.get("user"), str):
        body["metadata"] = {"user_id": request["user"]}


def _tools(request: dict[str, Any], body: dict[str, Any], lossy: list[str]) -> str | None:
    """Tools, ``tool_choice`` and ``parallel_tool_calls``; a JSON ``response_format`` as a forced
    tool whose input is the answer. Returns that tool's name."""
    tools = [_tool(tool, lossy) for tool in request.get("tools") or () if isinstance(tool, dict)]
    tools = [tool for tool in tools if tool is not None]
    choice = _tool_choice(request.get("tool_choice"))
    if isinstance(request.get("tool_choice"), dict) and choice == {"type": "auto"}:
        lossy.append("tool_choice sent as auto: Anthropic has no allowed-tools choice")
    answer_tool = _json_tool(request.get("response_format"), lossy)
    if answer_tool is not None:
        name, schema = answer_tool
        tools.append({"name": name, "description": JSON_TOOL_DESCRIPTION, "input_schema": schema})
        if len(tools) == 1:
            choice = {"type": "tool", "name": name}
        else:
            lossy.append("response_format offered as one more tool: the request has tools of its own")
    if request.get("parallel_tool_calls") is False and tools:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if tools:
        body["tools"] = tools
    if choice is not None and (tools or choice["type"] == "none"):
        body["tool_choice"] = choice
    return answer_tool[0] if answer_tool else None


def _tool(tool: dict[str, Any], lossy: list[str]) -> dict[str, Any] | None:
    function = tool.get("function")
    if tool.get("type", "function") != "function" or not isinstance(function, dict):
        lossy.append(f"{str(tool.get('type'))[:40]} tool dropped: Anthropic has function tools only")
        return None
    out = {"name": function.get("name"), "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, dict):
        function = choice.get("function")
        if choice.get("type", "function") == "function" and isinstance(function, dict):
            return {"type": "tool", "name": function.get("name")}
        return {"type": "auto"}  # allowed-tools and custom choices: named in _tools
    return {"type": {"required": "any", "none": "none"}.get(str(choice), "auto")}


def _json_tool(response_format: Any, lossy: list[str]) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(response_format, dict) or response_format.get("type") not in ("json_schema", "json_object"):
        return None
    if response_format["type"] == "json_object":
        lossy.append("response_format json_object as a forced tool: Anthropic has no JSON mode")
        return "json_answer", {"type": "object"}
    spec = response_format.get("json_schema") or {}
    lossy.append("response_format json_schema as a forced tool: Anthropic has no response_format")
    return str(spec.get("name") or "json_answer")[:64], spec.get("schema") or {"type": "object"}


def _turns(messages: list[Any], lossy: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """System and developer messages hoisted into one ``system``; the rest as alternating turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            if turns:
                lossy.append("mid-conversation system message moved to the top: Anthropic has one system prompt")
            system.append(_plain_text(message.get("content")))
            continue
        if message.get("name") is not None:
            lossy.append("message name dropped: Anthropic has none")
        role, blocks = _blocks(message, lossy)
        if turns and turns[-1]["role"] == role:
            if not (_all_results(turns[-1]["content"]) and _all_results(blocks)):
                lossy.append("consecutive messages of one role merged: Anthropic alternates user and assistant")
            turns[-1]["content"] = _as_blocks(turns[-1]["content"]) + blocks
        else:
            turns.append({"role": role, "content": _simplest(blocks)})
    return "\n\n".join(part for part in system if part), turns


def _all_results(content: Any) -> bool:
    return isinstance(content, list) and all(block.get("type") == "tool_result" for block in content)


def _as_blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _simplest(blocks: list[dict[str, Any]]) -> Any:
    """One text block as a plain string (as most logged Messages requests write it)."""
    if len(blocks) == 1 and blocks[0]["type"] == "text" and set(blocks[0]) == {"type", "text"}:
        return blocks[0]["text"]
    return blocks


def _plain_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part)
    return "" if content is None else str(content)


def _blocks(message: dict[str, Any], lossy: list[str]) -> tuple[str, list[dict[str, Any]]]:
    role = message.get("role")
    if role in ("tool", "function"):
        result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id") or message.get("name") or "",
                  "content": _plain_text(message.get("content"))}  # fmt: skip
        return "user", [result]
    blocks = _content_blocks(message.get("content"), lossy)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                       "input": _arguments(function.get("arguments"), lossy)})  # fmt: skip
    if not blocks:
        blocks = [{"type": "text", "text": ""}]
    return ("assistant" if role == "assistant" else "user"), blocks


def _arguments(arguments: Any, lossy: list[str]) -> Any:
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError:
        value = None
    if not isinstance(value, dict):
        lossy.append("tool call arguments that are not a JSON object sent as {}: Anthropic needs an object")
        return {}
    return value


def _content_blocks(content: Any, lossy: list[str]) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if not isinstance(content, list):
        return [{"type": "text", "text": str(content)}]
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), lossy))
        else:
            lossy.append(f"{str(kind)[:40]} content dropped: not converted to Anthropic")
    return blocks


def _image_block(image: Any, lossy: list[str]) -> dict[str, Any]:
    image = image if isinstance(image, dict) else {"url": image}
    url = str(image.get("url") or "")
    if image.get("detail") not in (None, "auto"):
        lossy.append("image detail dropped: Anthropic has none")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


# --- Anthropic Messages -> OpenAI chat ------------------------------------------------------

_CHAT_KEPT = ("model", "max_tokens", "temperature", "top_p", "stream")
_CHAT_SILENT = frozenset({"system", "messages", "stop_sequences", "tools", "tool_choice", "metadata", "output_config"})
MAX_OPENAI_STOPS = 4


def messages_to_chat(request: dict[str, Any]) -> AdaptedBody:
    """A logged Messages request as an OpenAI chat body."""
    lossy: list[str] = []
    messages: list[dict[str, Any]] = []
    if request.get("system"):
        messages.append({"role": "system", "content": _system_text(request["system"], lossy)})
    for message in request.get("messages") or ():
        messages += _chat_messages(message, lossy)
    body: dict[str, Any] = {key: request[key] for key in _CHAT_KEPT if request.get(key) is not None}
    body["messages"] = messages
    for key, value in request.items():
        if key not in _CHAT_KEPT and key not in _CHAT_SILENT and value is not None:
            lossy.append(f"{key} dropped: OpenAI has none")
    stops = request.get("stop_sequences") or []
    if stops:
        body["stop"] = list(stops[:MAX_OPENAI_STOPS])
        if len(stops) > MAX_OPENAI_STOPS:
            lossy.append("stop sequences beyond 4 dropped: OpenAI takes 4")
    metadata = request.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        body["user"] = metadata["user_id"]
    _chat_tools(request, body, lossy)
    _chat_format(request.get("output_config"), body, lossy)
    if _cached(request):
        lossy.append("cache_control dropped: OpenAI caches prompts by itself")
    return adapted(body, lossy)


def _cached(request: dict[str, Any]) -> bool:
    return "cache_control" in json.dumps(request.get("system")) + json.dumps(request.get("tools")) or any(
        isinstance(m.get("content"), list) and any("cache_control" in b for b in m["content"] if isinstance(b, dict))
        for m in request.get("messages") or ()
    )  # fmt: skip


def _system_text(system: Any, lossy: list[str]) -> str:
    return _plain_text(system) if isinstance(system, list) else str(system)


def _chat_messages(message: dict[str, Any], lossy: list[str]) -> list[dict[str, Any]]:
    """One Messages turn as chat messages: its tool results become ``tool`` messages, first."""
    role, content = message.get("role"), message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    results, parts, calls = [], [], []
    for block in content or ():
        kind = block.get("type")
        if kind == "tool_result":
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": _result_text(block, lossy)})
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}})  # fmt: skip
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block.get("source") or {})}})
        else:
            lossy.append(f"{str(kind)[:40]} block dropped: OpenAI has none")
    out = list(results)
    if role == "assistant":
        text = "".join(part.get("text", "") for part in parts) or None
        if text is not None or calls:
            out.append({"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})})
    elif parts:
        only_text = all(part["type"] == "text" for part in parts)
        out.append({"role": role, "content": "\n\n".join(p["text"] for p in parts) if only_text and len(parts) == 1 else parts})
    return out


def _result_text(block: dict[str, Any], lossy: list[str]) -> str:
    content = block.get("content")
    if isinstance(content, list) and any(isinstance(part, dict) and part.get("type") != "text" for part in content):
        lossy.append("non-text tool result content dropped: OpenAI tool results are text")
    text = _plain_text(content)
    if block.get("is_error"):
        lossy.append("tool result is_error flag dropped: OpenAI has none")
    return text


def _image_url(source: dict[str, Any]) -> str:
    if source.get("type") == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    return str(source.get("url") or "")


def _chat_tools(request: dict[str, Any], body: dict[str, Any], lossy: list[str]) -> None:
    tools = []
    for tool in request.get("tools") or ():
        if "input_schema" not in tool:
            lossy.append(f"{str(tool.get('type'))[:40]} server tool dropped: OpenAI has none")
            continue
        function = {"name": tool.get("name"), "parameters": tool.get("input_schema")}
        if tool.get("description"):
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    if tools:
        body["tools"] = tools
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "tool":
            body["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        else:
            body["tool_choice"] = {"any": "required", "none": "none"}.get(str(kind), "auto")
        if choice.get("disable_parallel_tool_use") and tools:
            body["parallel_tool_calls"] = False


def _chat_format(output_config: Any, body: dict[str, Any], lossy: list[str]) -> None:
    if not isinstance(output_config, dict):
        return
    spec = output_config.get("format")
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": spec.get("schema") or {}}}
    for key in output_config:
        if key != "format":
            lossy.append(f"output_config.{key} dropped: OpenAI has none")
