"""Run every registered comparator on one pair and add the divergence score."""

from __future__ import annotations

from typing import Any

# Importing the built-in families registers them, in this order (the order of the merged keys).
from replay.compare import errors, text, structured, tools, safety, usage  # noqa: F401  # isort: skip
from replay.compare.base import COMPARATOR_INFO, COMPARATORS, CompareSpec, Side
from replay.compare.divergence import divergence

DEFAULT_SPEC = CompareSpec()


def compare_pair(
    request: dict[str, Any] | None, baseline: Side, candidate: Side, spec: CompareSpec = DEFAULT_SPEC
) -> dict[str, Any]:
    """A flat, JSON-serialisable dict of measures for one request, plus ``divergence`` and ``reasons``.

    Later comparators win on a key clash, so a plugin can refine a built-in measure.
    """
    request = request or {}
    measures: dict[str, Any] = {}
    for comparator in COMPARATORS.values():
        measures.update(comparator(request, baseline, candidate, spec))
    measures["divergence"], measures["reasons"] = divergence(measures)
    return measures


_NOT_MEASURES = frozenset(("divergence", "reasons", "metadata", "request_id"))


def refresh_pair(request: dict[str, Any] | None, baseline: Side, candidate: Side, spec: CompareSpec,
                 stale: frozenset[str], previous: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """``previous`` measures with those of the ``stale`` comparators recomputed (each declares
    the keys it writes), and the divergence scored afresh: what :func:`compare_pair` returns
    when only those comparators' options changed."""
    request = request or {}
    replaced = {key for name in stale for key in COMPARATOR_INFO[name].measures}
    measures = {key: value for key, value in previous.items() if key not in replaced and key not in _NOT_MEASURES}
    for name, comparator in COMPARATORS.items():
        if name in stale:
            measures.update(comparator(request, baseline, candidate, spec))
    measures["divergence"], measures["reasons"] = divergence(measures)
    return measures
