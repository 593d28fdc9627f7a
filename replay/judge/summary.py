"""What a run's stored judgements come to, per pair: the columns the metrics read.

Rows are what :meth:`replay.store.Store.judgements` returns, one per pair and order judged.
A pair judged in both orders is a verdict only when both orders are: a verdict that flips is
a tie; an order the judge failed on makes the pair a judge error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from replay.judge.verdict import combine, outcome_of

ERROR = "error"
"""The ``judge`` column of a pair the judge failed on (no valid verdict after its retries)."""


@dataclass(frozen=True)
class PairVerdict:
    request_id: str
    outcome: str
    """``candidate``, ``baseline``, ``tie`` or ``error``."""
    consistent: bool | None
    """Both orders judged: whether the verdict survived the swap; else None."""
    first_picks: int
    """Calls whose verdict was the answer shown first."""
    decisive: int
    """Calls that named a winner (not a tie)."""
    identical: bool
    reason: str | None
    """The judge's reason in the first order (or its error)."""
    calls: int
    """Calls this run made for the pair (0: cached verdicts, or identical answers)."""
    cached: int
    """Orders whose verdict came from the store, paid by an earlier run or judging."""
    cost_usd: float


Row = tuple[str, int, bool, "str | None", "str | None", "str | None", "str | None", int, "float | None"]


def pair_verdicts(rows: Iterable[Row], turns: int) -> Iterator[PairVerdict]:
    """One verdict per pair with every order (``turns``: 2 with both orders) stored."""
    current: list[Row] = []
    for row in rows:
        if current and row[0] != current[0][0]:
            verdict = _pair(current, turns)
            if verdict is not None:
                yield verdict
            current = []
        current.append(row)
    if current:
        verdict = _pair(current, turns)
        if verdict is not None:
            yield verdict


def _pair(rows: list[Row], turns: int) -> PairVerdict | None:
    request_id = rows[0][0]
    calls = sum(1 for row in rows if row[7])
    cost = sum(row[8] or 0.0 for row in rows)
    if len(rows) == 1 and rows[0][3] is None and rows[0][5] is None:  # identical answers: no call
        return PairVerdict(request_id, "tie", None, 0, 0, True, None, 0, 0, 0.0)
    errors = [row[5] for row in rows if row[5] is not None]
    cached = sum(1 for row in rows if not row[7] and row[3] is not None)
    if errors:
        return PairVerdict(request_id, ERROR, None, 0, 0, False, errors[0], calls, cached, cost)
    if len(rows) < turns:
        return None  # an order not judged yet: the pair is not judged
    outcomes = [outcome_of(str(row[3]), row[2]) for row in rows]
    decisive = [row for row in rows if row[3] != "tie"]
    first_picks = sum(1 for row in decisive if row[3] == "A")
    consistent = len(set(outcomes)) == 1 if len(rows) > 1 else None
    return PairVerdict(request_id, combine(outcomes), consistent, first_picks, len(decisive), False, rows[0][4],
                       calls, cached, cost)  # fmt: skip


def judge_columns(verdicts: dict[str, PairVerdict], request_ids: Iterable[Any]) -> dict[str, list[Any]]:
    """The metrics' columns, one value per pair of ``request_ids`` (None for a pair not judged)."""
    columns: dict[str, list[Any]] = {"judge": [], "judge_consistent": [], "judge_first_picks": [], "judge_decisive": [],
                                     "judge_reason": []}  # fmt: skip
    for request_id in request_ids:
        verdict = verdicts.get(request_id)
        columns["judge"].append(verdict.outcome if verdict else None)
        columns["judge_reason"].append(verdict.reason if verdict else None)
        columns["judge_consistent"].append(verdict.consistent if verdict else None)
        columns["judge_first_picks"].append(verdict.first_picks if verdict else None)
        columns["judge_decisive"].append(verdict.decisive if verdict else None)
    return columns
