"""Agent conversations: which records are one session, in what order, and the closed loop.

A session is the records whose metadata share a conversation id (``metadata.session_id``, or
the key the scenario names with ``session``). Its turns are ordered by how much history each
request carries (an agent's next request repeats the previous ones and adds to them), then
by log position, so a log whose writers interleave still replays in order.

Open loop (the default) needs nothing here: every logged turn is sent with its logged
history, so the candidate answers exactly what production answered to. The closed loop
(``sessions: closed_loop``) feeds the candidate its own previous turns instead:

* turn 1 is the logged request;
* after turn k, if the candidate's tool calls are the logged ones (same functions, arguments
  equal as JSON: :mod:`replay.toolcalls`), the next request is the candidate's own history,
  its answer, and what the log added next (the tool results, now answering the candidate's
  call ids, and the next user message);
* otherwise the session stops at turn k, diverged: no tool is ever run, and a result the
  log does not hold is never made up.

Requests are handled as chat requests; a logged Anthropic Messages request is adapted first
(the provider adapts the result back for an Anthropic candidate).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

from replay.toolcalls import match_calls
from replay.types import LogRecord, ToolCall

OPEN_LOOP = "open_loop"
CLOSED_LOOP = "closed_loop"
SESSION_MODES = (OPEN_LOOP, CLOSED_LOOP)
DEFAULT_SESSION_KEY = "session_id"


def session_of(metadata: dict[str, Any], key: str = DEFAULT_SESSION_KEY) -> str | None:
    """The conversation a record belongs to, None when it names none."""
    value = metadata.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def history_length(request: dict[str, Any]) -> int:
    """How many messages (or Responses input items) the request carries."""
    messages = request.get("messages")
    if messages is None:
        messages = request.get("input")
    return len(messages) if isinstance(messages, list) else 0


def order_turns(records: Sequence[LogRecord]) -> list[LogRecord]:
    """A session's records (in log order) in conversation order: by the history each carries,
    then as logged. Reports order a stored run's turns the same way, by the stored request's
    history and the case's position."""
    keyed = sorted(range(len(records)), key=lambda i: (history_length(records[i].request), i))
    return [records[i] for i in keyed]


def group_sessions(records: Iterable[LogRecord], key: str = DEFAULT_SESSION_KEY) -> dict[str, list[LogRecord]]:
    """Session id -> its records in conversation order; records of no session are left out."""
    sessions: dict[str, list[LogRecord]] = {}
    for record in records:
        session = session_of(record.metadata, key)
        if session is not None:
            sessions.setdefault(session, []).append(record)
    return {session: order_turns(turns) for session, turns in sessions.items()}


# --- the closed loop --------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the closed loop reads of the candidate's answer to one turn."""

    text: str | None
    tool_calls: tuple[ToolCall, ...]


@dataclass(frozen=True)
class Diverged:
    """The candidate's turn did not do what production did: its session stops here."""

    turn: int
    """1-based."""
    reason: str


def as_chat(request: dict[str, Any]) -> dict[str, Any]:
    from replay.wire.adapt import ANTHROPIC, messages_to_chat, request_format

    if request_format(request) == ANTHROPIC:
        return dict(messages_to_chat(request))
    return request


def _messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    messages = request.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _last_assistant(messages: list[dict[str, Any]]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "assistant":
            return index
    return None


def _calls_of(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    calls = []
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        calls.append(ToolCall(call.get("id"), str(function.get("name") or ""), arguments))
    return tuple(calls)


def logged_calls(record: LogRecord, following: LogRecord | None) -> tuple[ToolCall, ...]:
    """What production called at this turn: its logged answer, else the history of the next turn."""
    if record.answer is not None:
        return record.answer.tool_calls
    if following is not None:
        messages = _messages(as_chat(following.request))
        last = _last_assistant(messages)
        if last is not None:
            return _calls_of(messages[last])
    return ()


def _assistant_message(answer: Answer, ids: list[str]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call_id, call in zip(ids, answer.tool_calls)
        ]
    return message


class ClosedLoop:
    """One session's turns, each request built from the candidate's own history."""

    def __init__(self, turns: Sequence[LogRecord]) -> None:
        self.turns = list(turns)

    def request(self, index: int, previous: dict[str, Any] | None, answer: Answer | None) -> dict[str, Any] | Diverged:
        """Turn ``index`` (0-based)'s request: the logged one for the first turn; after that the
        previous request sent, the candidate's ``answer`` to it, and what the log added next."""
        record = self.turns[index]
        if index == 0 or previous is None or answer is None:
            return as_chat(record.request)
        before = self.turns[index - 1]
        logged = logged_calls(before, record)
        matched = match_calls(logged, answer.tool_calls)
        if matched is None:
            return Diverged(index, _why(logged, answer.tool_calls))
        logged_request = as_chat(record.request)
        messages = _messages(logged_request)
        last = _last_assistant(messages)
        if last is None:  # the log started the conversation afresh here
            return logged_request
        if last != len(_messages(as_chat(before.request))):
            # the turn's history is not the previous turn's plus its answer: a turn is missing
            # from the log (or the app rewrote its history), and stubbing across it would feed
            # the candidate results of calls it never made
            return Diverged(index, "the log does not continue this turn (a turn missing from the log?)")
        added = messages[last + 1:]
        ids = [call.id or f"call_{index}_{n}" for n, call in enumerate(answer.tool_calls)]
        stubs = _tool_results(added, logged, matched, ids)
        if stubs is None:
            return Diverged(index, "the log holds no result for a tool the candidate called")
        history = _messages(previous) + [_assistant_message(answer, ids)] + stubs
        return {**logged_request, "messages": history}

    def diverged_at_end(self, answer: Answer) -> Diverged | None:
        """Whether the last turn's answer already parts from production's."""
        index = len(self.turns) - 1
        logged = logged_calls(self.turns[index], None)
        if match_calls(logged, answer.tool_calls) is None:
            return Diverged(index + 1, _why(logged, answer.tool_calls))
        return None


def _why(logged: Sequence[ToolCall], called: Sequence[ToolCall]) -> str:
    if not called:
        return "production called " + _names(logged) + "; the candidate called no tool"
    if not logged:
        return "the candidate called " + _names(called) + "; production called no tool"
    return "the candidate called " + _names(called) + "; production called " + _names(logged)


def _names(calls: Sequence[ToolCall]) -> str:
    return ", ".join(call.name for call in calls)


def _tool_results(added: list[dict[str, Any]], logged: Sequence[ToolCall], matched: list[int],
                  ids: list[str]) -> list[dict[str, Any]] | None:  # fmt: skip
    """The log's messages after production's turn, each tool result now answering the candidate's
    call it stands for; None when the log lacks the result of a call the candidate made."""
    results = [m for m in added if m.get("role") == "tool"]
    by_id = {m.get("tool_call_id"): m for m in results}
    stub_for: dict[int, dict[str, Any]] = {}
    for logged_index, call_id in zip(matched, ids):
        logged_id = logged[logged_index].id
        result = by_id.get(logged_id) if logged_id is not None else None
        if result is None and logged_index < len(results):
            result = results[logged_index]  # ids not kept by the logger: results come in call order
        if result is None:
            return None
        stub_for[id(result)] = {**result, "tool_call_id": call_id}
    out = []
    for message in added:
        if message.get("role") == "tool":
            stub = stub_for.get(id(message))
            if stub is not None:
                out.append(stub)
        else:
            out.append(message)
    return out


def with_request(record: LogRecord, request: dict[str, Any]) -> LogRecord:
    """The record sent with another request (its id, metadata and logged answer kept)."""
    return replace(record, request=request)
