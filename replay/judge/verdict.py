"""Reading the judge's answer, and what a pair's verdicts come to.

The judge is asked for ``{"winner": "A" | "B" | "tie", "reason": "..."}``. Models wrap it
in code fences or a sentence of prose, so the first JSON object in the answer that has a
valid ``winner`` is taken; anything else is not a verdict (the stage retries it, then
counts a judge error).

A label verdict (A, B, tie) becomes a verdict about the candidate once the order is known.
With both orders, a verdict that flips with the order is a tie (as FastChat counts it): the
judge preferred a position, not an answer.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Sequence

from replay.compare.text import normalize_answer

CANDIDATE, BASELINE, TIE = "candidate", "baseline", "tie"
WINNERS = {"a": "A", "b": "B", "tie": "tie"}
MAX_REASON_CHARS = 1_000
_DECODER = json.JSONDecoder(strict=False)  # a raw line break or control character in the reason is still a verdict


class Verdict(NamedTuple):
    winner: str
    """``A``, ``B`` or ``tie``: a verdict about the labels, as the judge saw them."""
    reason: str


def parse_verdict(text: str | None) -> Verdict | None:
    """The first JSON object in ``text`` with a valid ``winner``; None when there is none."""
    if not text:
        return None
    start = text.find("{")
    while start != -1:
        try:
            value, _ = _DECODER.raw_decode(text, start)
        except ValueError:
            value = None
        verdict = _verdict(value)
        if verdict is not None:
            return verdict
        start = text.find("{", start + 1)
    return None


def _verdict(value: Any) -> Verdict | None:
    if not isinstance(value, dict) or not isinstance(value.get("winner"), str):
        return None
    winner = WINNERS.get(value["winner"].strip().lower())
    if winner is None:
        return None
    reason = value.get("reason")
    reason = reason if isinstance(reason, str) else "" if reason is None else json.dumps(reason, ensure_ascii=False)
    return Verdict(winner, reason[:MAX_REASON_CHARS])


def outcome_of(winner: str, candidate_is_a: bool) -> str:
    """A label verdict as a verdict about the candidate."""
    if winner == "tie":
        return TIE
    return CANDIDATE if (winner == "A") == candidate_is_a else BASELINE


def combine(outcomes: Sequence[str]) -> str:
    """One pair's verdict from its verdicts in each order: they agree, or it is a tie."""
    first = outcomes[0]
    return first if all(outcome == first for outcome in outcomes) else TIE


def same_answer(a: str, b: str) -> bool:
    """Identical once normalised (case, spacing, trailing punctuation): a tie, no judge needed."""
    return a == b or normalize_answer(a) == normalize_answer(b)
