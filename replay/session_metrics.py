"""Per-session measures: how whole conversations fared, next to the per-request ones.

A turn *diverges* when the candidate failed it, or its tool calls differ from the baseline's
(names and arguments as JSON, as the ``tools`` comparator's ``tools_agree``). Per session: how
many turns the candidate answered, the first turn that diverged (and why), and whether any
turn failed on either arm. In the closed loop (``sessions: closed_loop``) the candidate is
compared with the logged answers, the ones its conversation was stubbed from, and a session
stops at the turn it diverged: "turns answered" is how far it got.

The share of sessions whose every turn agrees comes with a Wilson interval over sessions:
sessions are taken as independent, their turns are not.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from replay.conversations import CLOSED_LOOP, DEFAULT_SESSION_KEY, OPEN_LOOP
from replay.stats.estimate import Estimate
from replay.stats.proportions import wilson
from replay.store import Store
from replay.toolcalls import calls_agree
from replay.types import ARM_CANDIDATE, ARM_LOGGED, ToolCall


@dataclass(frozen=True)
class SessionResult:
    session: str
    turns: int
    answered: int
    """Turns the candidate answered (an error counts as answered)."""
    diverged_at: int | None
    """The first turn (1-based) that diverged, None when none did."""
    reason: str | None
    errors: bool
    """Some turn failed on either arm."""
    request_ids: tuple[str, ...]
    """The turns in conversation order."""

    @property
    def completed(self) -> bool:
        return self.answered == self.turns and self.diverged_at is None


@dataclass(frozen=True)
class Sessions:
    key: str
    mode: str
    against: str
    """The arm the candidate's turns are compared with."""
    results: tuple[SessionResult, ...]
    agreement: Estimate
    """The share of sessions whose every turn agrees with the baseline's tool calls."""

    @property
    def count(self) -> int:
        return len(self.results)

    @property
    def diverged(self) -> int:
        return sum(result.diverged_at is not None for result in self.results)

    @property
    def with_errors(self) -> int:
        return sum(result.errors for result in self.results)

    @property
    def completed(self) -> int:
        return sum(result.completed for result in self.results)

    @property
    def turns(self) -> int:
        return sum(result.turns for result in self.results)

    @property
    def answered_turns(self) -> int:
        return sum(result.answered for result in self.results)

    def first_divergence(self) -> dict[int, int]:
        """Turn -> how many sessions first diverged there."""
        return dict(sorted(Counter(r.diverged_at for r in self.results if r.diverged_at is not None).items()))


def session_key_of(scenario: dict[str, Any]) -> str:
    return str(scenario.get("session_key") or DEFAULT_SESSION_KEY)


def sessions_of(store: Store, run_id: str, scenario: dict[str, Any], baseline_arm: str) -> Sessions | None:
    """The run's sessions and how each fared; None when no conversation has two turns."""
    key = session_key_of(scenario)
    rows = store.session_cases(run_id, key)
    if not rows:
        return None
    grouped: dict[str, list[str]] = {}
    for session, request_id, _, _ in rows:
        grouped.setdefault(session, []).append(request_id)
    if max(len(turns) for turns in grouped.values()) < 2:
        return None  # ids that never span two requests (a per-request trace id) make no conversations
    mode = str(scenario.get("sessions") or OPEN_LOOP)
    against = ARM_LOGGED if mode == CLOSED_LOOP else baseline_arm
    ids = [request_id for _, request_id, _, _ in rows]
    answers: dict[tuple[str, str], tuple[str, tuple[ToolCall, ...]]] = {}
    for request_id, arm, status, calls_json in store.answers(
        run_id, (against, ARM_CANDIDATE), ("request_id", "arm", "status", "tool_calls_json"), only=ids
    ):
        answers[(request_id, arm)] = (status, _calls(calls_json))
    results = tuple(_result(session, turns, answers, against) for session, turns in grouped.items())
    agreeing = sum(r.completed and not r.errors for r in results)
    return Sessions(key, mode, against, results, wilson(agreeing, len(results)))


def _calls(calls_json: str | None) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(c.get("id"), c["name"], c["arguments"]) for c in json.loads(calls_json or "[]"))


def _result(session: str, turns: list[str], answers: dict[tuple[str, str], tuple[str, tuple[ToolCall, ...]]],
            against: str) -> SessionResult:  # fmt: skip
    answered, diverged_at, reason, errors = 0, None, None, False
    for number, request_id in enumerate(turns, start=1):
        candidate, baseline = answers.get((request_id, ARM_CANDIDATE)), answers.get((request_id, against))
        if baseline is not None and baseline[0] != "ok":
            errors = True
        if candidate is None:
            continue
        answered += 1
        errors = errors or candidate[0] != "ok"
        if diverged_at is not None:
            continue
        if candidate[0] != "ok":
            diverged_at, reason = number, "the candidate failed"
        elif baseline is not None and baseline[0] == "ok" and not calls_agree(baseline[1], candidate[1]):
            diverged_at, reason = number, _why(baseline[1], candidate[1])
    return SessionResult(session, len(turns), answered, diverged_at, reason, errors, tuple(turns))


def _why(baseline: tuple[ToolCall, ...], candidate: tuple[ToolCall, ...]) -> str:
    def named(calls: tuple[ToolCall, ...]) -> str:
        return ", ".join(call.name for call in calls) or "no tool"

    if [c.name for c in baseline] == [c.name for c in candidate]:
        return f"called {named(candidate)} with other arguments"
    return f"called {named(candidate)} where the baseline called {named(baseline)}"
