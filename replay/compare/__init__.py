"""Per-request comparators: one baseline answer against one candidate answer, as flat measures.

``compare_pair`` runs every comparator in :data:`COMPARATORS` (the built-in families below
register themselves) and returns a JSON-serialisable dict; aggregation into rates and
intervals happens elsewhere (``replay.metrics``). Families, one module each:

* ``errors``     ``b_error`` ``c_error`` ``*_timeout`` ``*_error_class``; ``*_finish`` ``finish_changed`` ``truncated``
* ``text``       ``exact_match`` ``normalized_match`` ``similarity`` ``length_delta`` ``token_delta``
* ``structured`` ``json_required`` ``*_json_valid`` ``schema_required`` ``*_schema_valid`` ``c_schema_error``
                 ``fields`` ``field_accuracy`` ``field_mismatches``
* ``tools``      ``*_tool_calls`` ``tools_agree`` ``tool_names_agree``
* ``safety``     ``*_refused`` ``*_policy_pass`` ``*_policy_violations``
* ``usage``      ``*_latency_ms`` ``*_ttft_ms`` ``*_tokens_in`` ``*_tokens_out`` ``*_cost_usd``

``b_`` is the baseline side, ``c_`` the candidate; None means "does not apply".
"""

from __future__ import annotations

from replay.compare.base import (
    COMPARATOR_INFO,
    COMPARATORS,
    DEFAULT_REFUSAL_PHRASES,
    Comparator,
    ComparatorInfo,
    CompareSpec,
    Policy,
    Side,
    comparator_digests,
    register_comparator,
)
from replay.compare.divergence import divergence
from replay.compare.options import COMPARE_OPTIONS, CompareOption
from replay.compare.pair import compare_pair

__all__ = [
    "COMPARATOR_INFO",
    "COMPARE_OPTIONS",
    "COMPARATORS",
    "DEFAULT_REFUSAL_PHRASES",
    "Comparator",
    "ComparatorInfo",
    "CompareOption",
    "CompareSpec",
    "Policy",
    "Side",
    "comparator_digests",
    "compare_pair",
    "divergence",
    "register_comparator",
]
