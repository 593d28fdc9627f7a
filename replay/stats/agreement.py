"""Agreement between two raters on the same items (the judge and a human reviewer):
the share of items they agree on, and Cohen's kappa, each with a 95% interval.

The share agreeing gets Wilson's interval. Kappa (Cohen 1960) is agreement beyond what the
two raters' own verdict shares would give by chance; its interval is the large-sample one,
kappa +- z * ASE, with the standard error of Fleiss, Cohen & Everitt (1969), the one SAS's
PROC FREQ and statsmodels' ``cohens_kappa`` print (checked against both in the tests).
Kappa is trusted from a few dozen items; with fewer, read the share agreeing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import numpy as np

from replay.stats.estimate import CONFIDENCE, Estimate, z_for
from replay.stats.proportions import wilson


@dataclass(frozen=True)
class Agreement:
    n: int
    share: Estimate
    """The share of items on which the two raters gave the same verdict."""
    kappa: Estimate
    table: tuple[tuple[int, ...], ...]
    """Counts, rows the first rater's verdicts and columns the second's, in ``categories`` order."""
    categories: tuple[str, ...]


def agreement(first: Sequence[str], second: Sequence[str], categories: Sequence[str]) -> Agreement:
    """How far two raters' verdicts on the same items agree (``first[i]`` and ``second[i]`` rate item i)."""
    index = {category: i for i, category in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)), dtype=np.int64)
    for a, b in zip(first, second):
        table[index[a], index[b]] += 1
    n = int(table.sum())
    agreeing = int(np.trace(table))
    return Agreement(n, wilson(agreeing, n), cohens_kappa(table), tuple(map(tuple, table.tolist())), tuple(categories))


def cohens_kappa(table: np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    """Cohen's kappa of a square table of counts, with the Fleiss-Cohen-Everitt interval.

    Unknown (None) when chance agreement is already complete (both raters always gave one
    and the same verdict): kappa is 0/0 there."""
    counts = np.asarray(table, dtype=float)
    n = counts.sum()
    if n <= 0:
        return Estimate.empty()
    p = counts / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    observed, expected = float(np.trace(p)), float(rows @ cols)
    if expected >= 1 - 1e-12:
        return Estimate.empty(int(n))
    kappa = (observed - expected) / (1 - expected)
    diagonal = np.diag(p) * (1 - (rows + cols) * (1 - kappa)) ** 2
    off = p * (cols[:, None] + rows[None, :]) ** 2
    np.fill_diagonal(off, 0.0)
    variance = (diagonal.sum() + (1 - kappa) ** 2 * off.sum() - (kappa - expected * (1 - kappa)) ** 2) / (1 - expected) ** 2 / n
    half = z_for(confidence) * math.sqrt(max(0.0, variance))
    return Estimate(kappa, max(-1.0, kappa - half), min(1.0, kappa + half), int(n), partial(cohens_kappa, counts))
