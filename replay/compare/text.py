"""Text agreement between the two answers: exact, normalised, and a similarity score.

An answer with tool calls and no content counts as the empty text, so a pair of pure
tool-call answers is an exact match here and is judged by the tools comparator.
"""

from __future__ import annotations

from typing import Any

from rapidfuzz.distance import Indel

from replay.compare.base import CompareSpec, Side, register_comparator
from replay.compare.values import json_equal, looks_like_json_container, normalize_text, parse_json

_TRAILING = " .,;:!?…。"
"""Sentence punctuation a model adds or drops without changing the answer ("Paris." vs "Paris")."""

_NOT_APPLICABLE: dict[str, Any] = {
    "exact_match": None,
    "normalized_match": None,
    "similarity": None,
    "length_delta": None,
    "token_delta": None,
}


def normalize_answer(text: str) -> str:
    """:func:`normalize_text` plus trailing sentence punctuation removed."""
    return normalize_text(text).rstrip(_TRAILING)


def similarity(a: str, b: str) -> float:
    """Normalised Indel similarity of two normalised answers, 0..1 (two empty texts: 1.0).

    Indel is ``1 - (insertions + deletions) / (len(a) + len(b))``, i.e. rapidfuzz's
    ``fuzz.ratio`` / 100. It is chosen over the token-based scorers because it is
    symmetric, order-sensitive and counts every added or dropped character:
    ``token_set_ratio`` scores 1.0 when one answer's words are a subset of the other's
    (hiding truncations and additions) and ``token_sort_ratio`` ignores word order
    ("refund, not exchange" vs "exchange, not refund"). ``partial_ratio`` would score an
    answer cut in half as a perfect match. Indel runs bit-parallel in C, cheap enough to
    score every pair of a large run.
    """
    return round(Indel.normalized_similarity(a, b), 4)


@register_comparator("text")
def compare_text(request: dict[str, Any], baseline: Side, candidate: Side, spec: CompareSpec) -> dict[str, Any]:
    if not (baseline.ok and candidate.ok):
        return dict(_NOT_APPLICABLE)
    b_text, c_text = baseline.text or "", candidate.text or ""
    exact = b_text == c_text
    if exact:
        normalized, score = True, 1.0
    else:
        b_norm, c_norm = normalize_answer(b_text), normalize_answer(c_text)
        normalized = b_norm == c_norm or _same_json(b_text, c_text)
        score = 1.0 if b_norm == c_norm else similarity(b_norm, c_norm)
    b_tokens, c_tokens = baseline.completion_tokens, candidate.completion_tokens
    return {
        "exact_match": exact,
        "normalized_match": normalized,
        "similarity": score,
        "length_delta": len(c_text) - len(b_text),
        "token_delta": None if b_tokens is None or c_tokens is None else c_tokens - b_tokens,
    }


def _same_json(b_text: str, c_text: str) -> bool:
    """Both answers are JSON objects or arrays and equal once parsed (key order and layout aside)."""
    if not (looks_like_json_container(b_text) and looks_like_json_container(c_text)):
        return False
    b_ok, b_value = parse_json(b_text)
    c_ok, c_value = parse_json(c_text)
    return b_ok and c_ok and json_equal(b_value, c_value)
