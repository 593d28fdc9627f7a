"""What a run's stored judgements come to, per pair: the columns the metrics read.

Rows are what :meth:`replay.store.Store.judgements` returns, one per pair and order judged.
A pair judged in both orders is a verdict only when both orders are: a verdict that flips is
a tie; an order the judge failed on makes the pair a judge error.
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from replay.judge.verdict import TIE, combine, outcome_of

ERROR = "error"
"""The ``judge`` column of a pair the judge failed on (no valid verdict after its retries)."""


class PairVerdict(NamedTuple):
    """One pair's verdict (a named tuple: a report builds one per judged pair)."""

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
    """Requests this run sent the judge for the pair, retries included (0: cached verdicts, or
    identical answers)."""
    cached: int
    """Orders whose verdict came from the store, paid by an earlier run or judging."""
    cost_usd: float


def pair_verdicts(rows: Iterable[Sequence[Any]], turns: int) -> Iterator[PairVerdict]:
    """One verdict per pair with every order (``turns``: 2 with both orders) stored; ``rows``
    are :meth:`replay.store.Store.judgements`' (by request id, then turn)."""
    for _, group in groupby(rows, key=itemgetter(0)):
        verdict = _pair(list(group), turns)
        if verdict is not None:
            yield verdict


def _pair(rows: list[Sequence[Any]], turns: int) -> PairVerdict | None:
    if len(rows) == 2:
        verdict = _two_verdicts(rows[0], rows[1])
        if verdict is not None:
            return verdict
    request_id = rows[0][0]
    if len(rows) == 1 and rows[0][3] is None and rows[0][5] is None:  # identical answers: no call
        return PairVerdict(request_id, TIE, None, 0, 0, True, None, 0, 0, 0.0)
    calls = sum(row[7] for row in rows)
    cost = sum(row[8] or 0.0 for row in rows)
    errors = [row[5] for row in rows if row[5] is not None]
    cached = sum(1 for row in rows if not row[7] and row[3] is not None)
    if errors:
        return PairVerdict(request_id, ERROR, None, 0, 0, False, errors[0], calls, cached, cost)
    if len(rows) < turns:
        return None  # an order not judged yet: the pair is not judged
    outcomes = [outcome_of(row[3], bool(row[2])) for row in rows]
    decisive = [row[3] for row in rows if row[3] != TIE]
    consistent = len(set(outcomes)) == 1 if len(rows) > 1 else None
    return PairVerdict(request_id, combine(outcomes), consistent, decisive.count("A"), len(decisive), False, rows[0][4],
                       calls, cached, cost)  # fmt: skip


def _two_verdicts(first: Sequence[Any], second: Sequence[Any]) -> PairVerdict | None:
    """Both orders answered: the usual case, without the general case's passes over the rows."""
    one, two = first[3], second[3]
    if one is None or two is None:
        return None
    a, b = outcome_of(one, bool(first[2])), outcome_of(two, bool(second[2]))
    picks = (one == "A") + (two == "A")
    decisive = (one != TIE) + (two != TIE)
    cached = (0 if first[7] else 1) + (0 if second[7] else 1)
    return PairVerdict(first[0], a if a == b else TIE, a == b, picks, decisive, False, first[4], first[7] + second[7],
                       cached, (first[8] or 0.0) + (second[8] or 0.0))  # fmt: skip


def judge_columns(verdicts: dict[str, PairVerdict], request_ids: Iterable[Any]) -> dict[str, list[Any]]:
    """The metrics' columns, one value per pair of ``request_ids`` (None for a pair not judged)."""
    found = [verdicts.get(request_id) for request_id in request_ids]
    return {
        "judge": [v.outcome if v is not None else None for v in found],
        "judge_consistent": [v.consistent if v is not None else None for v in found],
        "judge_first_picks": [v.first_picks if v is not None else None for v in found],
        "judge_decisive": [v.decisive if v is not None else None for v in found],
        "judge_reason": [v.reason if v is not None else None for v in found],
    }
