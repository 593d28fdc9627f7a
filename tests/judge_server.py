"""Deterministic judges on 127.0.0.1: a :class:`replay.mockserver.MockServer` whose answer is
computed from the judge's prompt, so each judge has exactly the bias a test needs.

The candidate's answers in these tests contain ``CAND``, the baseline's ``BASE``: a judge can
tell them apart only by reading which of A and B holds which.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from replay.mockserver import MockServer, ServerConfig, last_user_text

_ANSWER = re.compile(r"\[Answer A\]\n(.*?)\n\[End of answer A\].*?\[Answer B\]\n(.*?)\n\[End of answer B\]", re.S)


def answers_shown(body: dict[str, Any]) -> tuple[str, str]:
    """The answers labelled A and B in a judge prompt (the default template's layout)."""
    match = _ANSWER.search(last_user_text(body))
    assert match, "not a judge prompt"
    return match.group(1), match.group(2)


def verdict(winner: str, reason: str = "scripted") -> str:
    return json.dumps({"winner": winner, "reason": reason})


def always_a(body: dict[str, Any]) -> str:
    """A purely position-biased judge: the first answer wins, whatever it says."""
    return verdict("A", "the first answer is better")


def prefers_candidate(body: dict[str, Any]) -> str:
    """A judge that always finds the candidate's answer better, wherever it is shown."""
    a, _ = answers_shown(body)
    return verdict("A" if "CAND" in a else "B", "CAND is better")


def fenced_candidate(body: dict[str, Any]) -> str:
    """The same, but chatty: the JSON in a code fence after a sentence."""
    return "Here is my verdict:\n```json\n" + prefers_candidate(body) + "\n```\nHope that helps."


def rambling(body: dict[str, Any]) -> str:
    """Never the requested JSON."""
    return "Answer A is somewhat better, I would say, but B has merits too."


def judge_server(respond: Callable[[dict[str, Any]], str], latency_ms: float = 1.0) -> MockServer:
    return MockServer(ServerConfig(latency_ms=latency_ms, respond=respond))
