"""``langsmith``: LangSmith runs as JSON Lines (``Client.list_runs(run_type="llm")`` dumped a run a
line); only ``llm`` runs are requests, the rest (chain, tool, retriever...) are counted as skipped.

``inputs`` is either the OpenAI kwargs (``wrap_openai``: ``model``, ``messages``, parameters) or
LangChain-serialised messages (``{"messages": [[{"lc": 1, "type": "constructor", "id": [...,
"HumanMessage"], "kwargs": {"content"}}]]}`` or ``{"type": "human", "content"}``). ``outputs`` is a
chat completion (``wrap_openai``) or LangChain ``generations``. Parameters also come from
``extra.invocation_params`` and ``extra.metadata.ls_*``; timing from ``start_time``, ``end_time``,
``first_token_time``; tokens from ``prompt_tokens``/``completion_tokens`` or ``usage_metadata``.
The Parquet bulk export (the same fields, nested ones maybe as JSON text) is read too, a row
group at a time, with ``pyarrow`` (``pip install 'replay[parquet]'``); its records are located
by row (``runs.parquet[12]``).
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from replay.errors import InputError, LogFormatError
from replay.readers.base import DEFAULT_MAX_RECORD_BYTES, Skipped, register_reader
from replay.readers.objects import as_dict, chat_body, dig, durations, label, object_reader, record
from replay.readers.records import PARAMETERS
from replay.types import Location, LogRecord

ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function",
         "HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system", "ToolMessage": "tool",
         "AIMessageChunk": "assistant", "ChatMessage": None}  # fmt: skip


def _message(value: Any) -> Any:
    """A LangChain message (serialised or plain) as a chat message; a chat message unchanged."""
    if not isinstance(value, dict) or "role" in value:
        return value
    if value.get("lc") == 1 and isinstance(value.get("kwargs"), dict):
        kind = (value.get("id") or [""])[-1]
        kwargs = value["kwargs"]
    else:
        kind, kwargs = value.get("type"), value
    role = ROLES.get(kind) or kwargs.get("role") or kind
    message: dict[str, Any] = {"role": role, "content": kwargs.get("content")}
    if role == "tool":
        message["tool_call_id"] = kwargs.get("tool_call_id")
    calls = kwargs.get("tool_calls")
    if not calls:  # dig(kwargs, "additional_kwargs", "tool_calls"), spelled out: every message comes here
        additional = kwargs.get("additional_kwargs")
        calls = additional.get("tool_calls") if isinstance(additional, dict) else None
    if calls:
        message["tool_calls"] = calls
    return message


def _request(run: dict[str, Any], meta: dict[str, Any], invocation: dict[str, Any]) -> dict[str, Any]:
    inputs = as_dict(run.get("inputs"))
    messages = inputs.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], list):
        messages = messages[0]  # LangChain batches: one list of messages per prompt
    params = {**invocation, **inputs} if invocation else inputs
    request = {}
    for key, value in params.items():  # a loop: cheaper than a comprehension's own frame
        if key in PARAMETERS:
            request[key] = value
    if "model" not in request:
        request["model"] = meta.get("ls_model_name") or params.get("model_name")
    if meta:
        for key, name in (("ls_temperature", "temperature"), ("ls_max_tokens", "max_tokens")):
            if meta.get(key) is not None and name not in request:
                request[name] = meta[key]
    request["messages"] = [m if type(m) is dict and "role" in m else _message(m)  # a chat message as it is
                           for m in messages] if isinstance(messages, list) else messages  # fmt: skip
    if request["model"] is None:
        del request["model"]
    return request


def _answer(run: dict[str, Any]) -> dict[str, Any] | None:
    outputs = run.get("outputs")
    if not isinstance(outputs, dict):
        return None
    if "choices" in outputs:
        return outputs
    generation = outputs.get("generations")
    if isinstance(generation, list) and generation:
        first = generation[0][0] if isinstance(generation[0], list) and generation[0] else generation[0]
        if isinstance(first, dict):
            message = _message(first.get("message")) if isinstance(first.get("message"), dict) else {}
            llm_output = as_dict(outputs.get("llm_output"))
            usage = llm_output.get("token_usage") or _usage(run)
            return chat_body(message.get("content", first.get("text")), tool_calls=message.get("tool_calls"),
                             finish_reason=dig(first, "generation_info", "finish_reason"), usage=usage,
                             model=llm_output.get("model_name"))  # fmt: skip
    return None


def _usage(run: dict[str, Any]) -> dict[str, Any] | None:
    usage = dig(run, "outputs", "usage_metadata") or {}
    prompt = run.get("prompt_tokens", usage.get("input_tokens"))
    completion = run.get("completion_tokens", usage.get("output_tokens"))
    return {"prompt_tokens": prompt, "completion_tokens": completion} if prompt is not None or completion is not None else None


def _convert(run: dict[str, Any], location: Location) -> LogRecord | Skipped:
    if run.get("run_type") != "llm":
        return Skipped(location, f"{label(run.get('run_type'), 'untyped')} run (only llm runs are requests)")
    start = run.get("start_time")
    failed = run.get("status") == "error" or run.get("error") is not None
    extra = as_dict(run.get("extra"))  # what dig(run, "extra", ...) reads, read once
    meta = as_dict(extra.get("metadata"))
    latency, ttft = durations(start, (run.get("end_time"), "end_time"), (run.get("first_token_time"), "first_token_time"))
    return record(
        location,
        id=run.get("id"),
        request=_request(run, meta, as_dict(extra.get("invocation_params"))),
        messages_field="inputs.messages",
        response=None if failed else _answer(run),
        response_field="outputs",
        latency_ms=latency,
        ttft_ms=ttft,
        error=run.get("error") if failed else None,
        timestamp=start + "Z" if isinstance(start, str) and start[-1:].isdigit() and "+" not in start[10:] else start,
        metadata={"trace": run.get("trace_id"), "name": run.get("name"), "provider": meta.get("ls_provider"),
                  "project": run.get("session_id"), "session_id": _thread(meta), "tags": run.get("tags") or None,
                  "user": meta.get("user_id")},  # fmt: skip
    )


def _thread(meta: dict[str, Any]) -> Any:
    """The conversation a run belongs to: LangSmith threads runs by one of these metadata keys
    (its own ``session_id`` field is the tracing project, not a conversation)."""
    for key in ("session_id", "thread_id", "conversation_id"):
        if meta.get(key):
            return meta[key]
    return None


PARQUET_MAGIC = b"PAR1"
_NESTED = ("inputs", "outputs", "extra", "tags", "events")
_read_lines = object_reader(_convert)


@register_reader("langsmith")
def read_langsmith(path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[Any]:
    """JSON Lines runs, or the Parquet bulk export (told apart by the file's first bytes)."""
    try:
        with open(path, "rb") as probe:
            parquet = probe.read(4) == PARQUET_MAGIC
    except OSError:
        parquet = False  # the line reader names the problem
    yield from (_read_parquet(path) if parquet else _read_lines(path, max_record_bytes))


def _read_parquet(path: str) -> Iterator[Any]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise InputError(f"{path}: a Parquet file: reading it needs pyarrow (pip install 'replay[parquet]')") from None
    try:
        table = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error classes for a corrupt file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    index = 0
    for batch in table.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            location = Location(path, None, index)
            index += 1
            try:
                yield _convert(_unpacked(row), location)
            except ValueError as exc:
                yield LogFormatError(location, str(exc))


def _unpacked(row: dict[str, Any]) -> dict[str, Any]:
    """Nested columns exported as JSON text, parsed; timestamps as ISO 8601 text."""
    for key in _NESTED:
        value = row.get(key)
        if isinstance(value, (str, bytes)) and value[:1] in ("{", "[", b"{", b"["):
            try:
                row[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
    for key in ("start_time", "end_time", "first_token_time"):
        if hasattr(row.get(key), "isoformat"):
            row[key] = row[key].isoformat()
    return row
