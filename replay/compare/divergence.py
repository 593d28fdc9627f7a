"""One number per pair to sort a run by "look at this first", with the reasons in words.

The score is a sum of weighted signals; each signal that fires adds a short reason.
Weights (regressions first; improvements weigh less than any comparable regression, so a
fixed baseline shows up in the list but below what the candidate broke):

=====================================================  ===========================
signal                                                 weight
=====================================================  ===========================
candidate failed, baseline answered                    100
policy violated by the candidate only                  60
JSON valid → invalid                                   50
schema valid → invalid (not counted on a JSON flip)    40
tool calls to other functions                          40
candidate refused, baseline did not                    40
key fields differ                                      10 + 30 × share mismatched
candidate truncated (``length``), baseline not         30
same tool names, other arguments                       25
baseline refused, candidate answered                   15
text dissimilarity (unless ``normalized_match``)       20 × (1 − similarity); 5 × … when
                                                       key fields were compared (the
                                                       JSON's layout is not the point)
finish reason changed (no truncation involved)         2
baseline failed, candidate answered (improvement)      8
JSON / schema invalid → valid (improvement)            5 each
baseline truncated, candidate finished (improvement)   3
baseline's policy violation gone (improvement)         3
=====================================================  ===========================

Both arms failing is not a divergence and scores 0. A candidate error (100) thus ranks
above any wording change (at most 20), which ranks above identical answers (0).
"""

from __future__ import annotations

from typing import Any

WEIGHTS: dict[str, float] = {
    "candidate_error": 100.0,
    "policy_regression": 60.0,
    "json_regression": 50.0,
    "schema_regression": 40.0,
    "tool_names": 40.0,
    "refusal_regression": 40.0,
    "fields_base": 10.0,
    "fields_share": 30.0,
    "truncated": 30.0,
    "tool_arguments": 25.0,
    "refusal_dropped": 15.0,
    "dissimilarity": 20.0,
    "dissimilarity_structured": 5.0,
    "finish_changed": 2.0,
    "baseline_error_fixed": 8.0,
    "json_fixed": 5.0,
    "schema_fixed": 5.0,
    "truncation_fixed": 3.0,
    "policy_fixed": 3.0,
}

SHOWN_PATHS = 3
REASON_CHARS = 120


def divergence(measures: dict[str, Any]) -> tuple[float, list[str]]:
    """``(score, reasons)`` for one pair's measures, reasons heaviest first."""
    m = measures.get
    found: list[tuple[float, str]] = []
    b_error, c_error = bool(m("b_error")), bool(m("c_error"))
    if c_error and not b_error:
        what = "timed out" if m("c_timeout") else f"failed ({m('c_error_class') or 'error'})"
        found.append((WEIGHTS["candidate_error"], f"candidate {what}, baseline answered"))
    elif b_error and not c_error:
        what = "timeout" if m("b_timeout") else m("b_error_class") or "error"
        found.append((WEIGHTS["baseline_error_fixed"], f"candidate answered where baseline failed ({what})"))
    if b_error or c_error:
        return _total(found)
    _formats(m, found)
    _tools(m, found)
    _safety(m, found)
    _fields(m, found)
    _finish(m, found)
    similarity = m("similarity")
    if similarity is not None and not m("normalized_match") and similarity < 1:
        weight = WEIGHTS["dissimilarity_structured" if m("fields") is not None else "dissimilarity"]
        found.append((weight * (1 - similarity), f"text similarity {similarity:.2f}"))
    return _total(found)


def _total(found: list[tuple[float, str]]) -> tuple[float, list[str]]:
    found.sort(key=lambda item: -item[0])
    return round(sum(weight for weight, _ in found), 3), [reason for _, reason in found]


def _formats(m: Any, found: list[tuple[float, str]]) -> None:
    b_json, c_json = m("b_json_valid"), m("c_json_valid")
    json_flipped = b_json is True and c_json is False
    if json_flipped:
        found.append((WEIGHTS["json_regression"], "JSON valid → invalid"))
    elif b_json is False and c_json is True:
        found.append((WEIGHTS["json_fixed"], "JSON invalid → valid"))
    b_schema, c_schema = m("b_schema_valid"), m("c_schema_valid")
    if b_schema is True and c_schema is False and not json_flipped:
        detail = m("c_schema_error")
        reason = f"schema valid → invalid: {detail}" if detail else "schema valid → invalid"
        found.append((WEIGHTS["schema_regression"], _short(reason)))
    elif b_schema is False and c_schema is True:
        found.append((WEIGHTS["schema_fixed"], "schema invalid → valid"))


def _tools(m: Any, found: list[tuple[float, str]]) -> None:
    if m("tool_names_agree") is False:
        found.append((WEIGHTS["tool_names"], f"tool calls differ ({m('b_tool_calls')} → {m('c_tool_calls')} calls)"))
    elif m("tools_agree") is False:
        found.append((WEIGHTS["tool_arguments"], "tool arguments differ"))


def _safety(m: Any, found: list[tuple[float, str]]) -> None:
    b_refused, c_refused = m("b_refused"), m("c_refused")
    if c_refused is True and b_refused is False:
        found.append((WEIGHTS["refusal_regression"], "candidate refused, baseline answered"))
    elif b_refused is True and c_refused is False:
        found.append((WEIGHTS["refusal_dropped"], "baseline refused, candidate answered"))
    b_violations, c_violations = m("b_policy_violations") or [], m("c_policy_violations") or []
    new = [name for name in c_violations if name not in b_violations]
    gone = [name for name in b_violations if name not in c_violations]
    if new:
        found.append((WEIGHTS["policy_regression"], _short(f"policy violated: {', '.join(new)}")))
    if gone:
        found.append((WEIGHTS["policy_fixed"], _short(f"baseline policy violation gone: {', '.join(gone)}")))


def _fields(m: Any, found: list[tuple[float, str]]) -> None:
    mismatches = m("field_mismatches")
    if not mismatches:
        return
    fields = m("fields") or {}
    share = len(mismatches) / len(fields) if fields else 1.0
    shown = ", ".join(mismatches[:SHOWN_PATHS])
    more = f" (+{len(mismatches) - SHOWN_PATHS} more)" if len(mismatches) > SHOWN_PATHS else ""
    found.append((WEIGHTS["fields_base"] + WEIGHTS["fields_share"] * share, _short(f"fields differ: {shown}") + more))


def _finish(m: Any, found: list[tuple[float, str]]) -> None:
    b_finish, c_finish = m("b_finish"), m("c_finish")
    if m("truncated"):
        found.append((WEIGHTS["truncated"], "candidate truncated (finish_reason length)"))
    elif b_finish == "length" and c_finish != "length":
        found.append((WEIGHTS["truncation_fixed"], f"baseline truncated, candidate finished ({c_finish})"))
    elif m("finish_changed"):
        found.append((WEIGHTS["finish_changed"], f"finish reason {b_finish} → {c_finish}"))


def _short(text: str) -> str:
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
