"""What a logged request and answer must look like for the run to use them.

The request is checked the way an OpenAI-compatible endpoint checks it (roles, content,
parameter types), so a bad log line is named before anything is sent rather than
showing up as hundreds of candidate errors; the logged answer is checked the way the
parser reads it (:func:`replay.wire.openai.completion_from_body`), which would
otherwise stop the run on the first odd shape. Each check raises ``ValueError`` with
the dotted field; the reader adds the record's :class:`~replay.types.Location`.
An Anthropic Messages request and answer are accepted too (their own keys checked alike).
Public for every reader: the field checks (``request``, ``response``, ``number``,
``optional``, ``timestamp``, ``finite``, ``shallow``) and ``shown`` for quoting log text.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Callable

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_ROLES = frozenset(ROLES)
_STR_OR_NONE = (str, type(None))
_INT = "an integer"
_NUMBER = "a number"
_BOOL = "true or false"
_STRING = "a string"
_OBJECT = "an object"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and math.isfinite(value))


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_object_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


_Check = tuple[Callable[[Any], bool], str]
PARAMETERS: dict[str, _Check] = {
    "model": (lambda v: isinstance(v, str), _STRING),
    "max_tokens": (_is_int, _INT),
    "max_completion_tokens": (_is_int, _INT),
    "n": (_is_int, _INT),
    "seed": (_is_int, _INT),
    "top_logprobs": (_is_int, _INT),
    "temperature": (_is_number, _NUMBER),
    "top_p": (_is_number, _NUMBER),
    "presence_penalty": (_is_number, _NUMBER),
    "frequency_penalty": (_is_number, _NUMBER),
    "stream": (lambda v: isinstance(v, bool), _BOOL),
    "logprobs": (lambda v: isinstance(v, bool), _BOOL),
    "parallel_tool_calls": (lambda v: isinstance(v, bool), _BOOL),
    "store": (lambda v: isinstance(v, bool), _BOOL),
    "stop": (lambda v: isinstance(v, str) or _is_string_list(v), "a string or a list of strings"),
    "tools": (_is_object_list, "a list of objects"),
    "functions": (_is_object_list, "a list of objects"),
    "tool_choice": (lambda v: isinstance(v, (str, dict)), "a string or an object"),
    "function_call": (lambda v: isinstance(v, (str, dict)), "a string or an object"),
    "response_format": (lambda v: isinstance(v, dict), _OBJECT),
    "stream_options": (lambda v: isinstance(v, dict), _OBJECT),
    "logit_bias": (lambda v: isinstance(v, dict), _OBJECT),
    "metadata": (lambda v: isinstance(v, dict), _OBJECT),
    "prediction": (lambda v: isinstance(v, dict), _OBJECT),
    "user": (lambda v: isinstance(v, str), _STRING),
    "service_tier": (lambda v: isinstance(v, str), _STRING),
    "reasoning_effort": (lambda v: isinstance(v, str), _STRING),
    "modalities": (_is_string_list, "a list of strings"),
    # an Anthropic Messages request's own keys
    "system": (lambda v: isinstance(v, str) or _is_object_list(v), "a string or a list of text blocks"),
    "stop_sequences": (_is_string_list, "a list of strings"),
    "top_k": (_is_int, _INT),
}
"""Chat-completions parameters an endpoint refuses when mistyped (``null`` is accepted: it means unset)."""


def shown(value: Any, limit: int = 40) -> str:
    """A value from the log, quoted at a readable length for a message."""
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number",
             type(None): "null"}  # fmt: skip
    return kinds.get(type(value), type(value).__name__)


def request(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("'request' is required and must be a chat-completions request object")
    messages = value.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'request.messages' must be a non-empty list")
    for index, message in enumerate(messages):
        if type(message) is dict and type(message.get("content")) is str and type(message.get("role")) is str \
                and message["role"] in _ROLES and message.get("name") is None and message.get("tool_calls") is None:
            continue  # the usual message, checked in one expression (the reader runs twice a run)
        _message(message, f"request.messages[{index}]")
    for key, param in value.items():  # a request has a handful of keys: look each up
        check = PARAMETERS.get(key)
        if check is not None and param is not None and not check[0](param):
            raise ValueError(f"'request.{key}' must be {check[1]}, got {shown(param)}")
    return value


def _message(message: Any, where: str) -> None:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise ValueError(f"'{where}' must be an object with a 'role'")
    role = message["role"]
    if role not in ROLES:
        raise ValueError(f"'{where}.role' is {shown(role)}: expected one of {', '.join(ROLES)}")
    content = message.get("content")
    if content is None:
        if role != "assistant":  # an assistant message may carry only tool calls
            raise ValueError(f"'{where}.content' is required in a {role} message")
    elif isinstance(content, list):
        for index, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise ValueError(f"'{where}.content[{index}]' must be a content part such as {{\"type\": \"text\", ...}}")
    elif not isinstance(content, str):
        raise ValueError(f"'{where}.content' must be a string or a list of content parts, got {_kind(content)}")
    if message.get("name") is not None and not isinstance(message["name"], str):
        raise ValueError(f"'{where}.name' must be a string")
    if message.get("tool_calls") is not None and not _is_object_list(message["tool_calls"]):
        raise ValueError(f"'{where}.tool_calls' must be a list of objects")


def response(value: Any) -> dict[str, Any] | None:
    """The logged answer, in the shape the engine reads: a chat-completion body."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("'response' must be an object")
    _optional_strings(value, ("id", "model", "system_fingerprint"), "response")
    if "choices" not in value and isinstance(value.get("content"), list):
        _message_blocks(value["content"])
    choices = value.get("choices")
    if choices is not None:
        if not isinstance(choices, list):
            raise ValueError(f"'response.choices' must be a list, got {_kind(choices)}")
        for index, choice in enumerate(choices):
            if type(choice) is dict and type(choice.get("finish_reason")) in _STR_OR_NONE:
                message = choice.get("message")
                if type(message) is dict and type(message.get("content")) in _STR_OR_NONE \
                        and message.get("refusal") is None and message.get("tool_calls") is None:
                    continue  # the usual answer, checked in one expression
            _choice(choice, f"response.choices[{index}]")
    usage = value.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            raise ValueError(f"'response.usage' must be an object, got {_kind(usage)}")
        for key in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"):
            count = usage.get(key)
            if count is not None and (not _is_int(count) or count < 0):
                raise ValueError(f"'response.usage.{key}' must be a non-negative integer, got {shown(count)}")
    return value


def _message_blocks(content: list[Any]) -> None:
    """An Anthropic message's ``content``: blocks with a ``type``; text as a string, a tool call with a name."""
    for index, block in enumerate(content):
        where = f"response.content[{index}]"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise ValueError(f"'{where}' must be a content block such as {{\"type\": \"text\", ...}}")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise ValueError(f"'{where}.text' must be a string, got {_kind(block.get('text'))}")
        if block["type"] == "tool_use":
            _optional_strings(block, ("id", "name"), where)


def _choice(choice: Any, where: str) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise ValueError(f"'{where}' must be an object, got {_kind(choice)}")
    _optional_strings(choice, ("finish_reason",), where)
    message = choice.get("message")
    if message is None:
        return
    if not isinstance(message, dict):
        raise ValueError(f"'{where}.message' must be an object, got {_kind(message)}")
    _optional_strings(message, ("content", "refusal"), f"{where}.message")
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not _is_object_list(calls):
        raise ValueError(f"'{where}.message.tool_calls' must be a list of objects")
    for index, call in enumerate(calls):
        _optional_strings(call, ("id",), f"{where}.message.tool_calls[{index}]")
        function = call.get("function")
        if function is None:
            continue
        if not isinstance(function, dict):
            raise ValueError(f"'{where}.message.tool_calls[{index}].function' must be an object")
        for key in ("name", "arguments"):  # the engine joins them as text: present means a string
            if key in function and not isinstance(function[key], str):
                raise ValueError(f"'{where}.message.tool_calls[{index}].function.{key}' must be a string,"
                                 f" got {_kind(function[key])}")  # fmt: skip


def _optional_strings(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"'{where}.{key}' must be a string, got {_kind(value)}")


MAX_DEPTH = 64
"""JSON nesting a record may have: what reads it later (json.dumps, token counting) recurses."""


def shallow(obj: Any) -> None:
    """No value nested deeper than :data:`MAX_DEPTH` (orjson reads up to 1024 levels; Python's
    own recursion limit, hit by ``json.dumps`` and the token count, is about 1000)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def finite(obj: Any) -> None:
    """No NaN or infinity anywhere in the record, and no lone UTF-16 surrogate (``\\udc00``) in
    its text: only ``json.loads`` produces them, and a surrogate cannot be sent or stored."""
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            for key in value:
                _encodable(key, f"{where}.{key!r}" if where else "a key")
            stack.extend((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{shown(where, 80)} is {value!r}: JSON numbers must be finite")  # keys are log text
        elif isinstance(value, str):
            _encodable(value, where)


def _encodable(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{shown(where, 80)} holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair):"
                         " it is not text and cannot be sent") from None


def optional(obj: dict[str, Any], key: str, kind: type) -> Any:
    """``obj[key]`` when it is of ``kind`` (an int is never a bool), None when absent or null."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"'{key}' must be {'an integer' if kind is int else 'an object'}")
    return value


def number(obj: dict[str, Any], key: str) -> float | None:
    """A finite, non-negative number (a latency, a duration) as a float, None when absent."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError(f"'{key}' must be a finite, non-negative number")
    return float(value)


def timestamp(value: Any) -> str | None:
    """An ISO 8601 string (``Z`` accepted) unchanged, None when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            return value
        except ValueError:
            pass
    raise ValueError(f"'timestamp' must be an ISO 8601 string, got {shown(value)}")
