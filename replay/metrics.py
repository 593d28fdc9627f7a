"""Aggregates over compared pairs: every metric a gate can name, with n and a 95% interval.

Metrics register by the name users write in gates. Each reads the per-pair measures
the comparators produced (``b_*`` for the baseline, ``c_*`` for the candidate) from a
:class:`Pairs` table and returns a :class:`MetricValue`. Populations are explicit:

* ``error_rate`` counts every pair whose baseline exists (a log line without a
  response has nothing to compare with and is left out of every metric);
* the other per-side rates count pairs where *both* arms answered, so that an error
  is charged once, to ``error_rate``, and not again as a format failure;
* latency and TTFT percentiles use pairs where both arms answered and timed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from replay import stats
from replay.stats import Estimate
from replay.stats import weighted

T = TypeVar("T")


@dataclass(frozen=True)
class MetricValue:
    name: str
    n: int
    candidate: Estimate
    baseline: Estimate | None = None
    """None for measures of the pair itself (similarity, agreement)."""
    delta: Estimate | None = None
    delta_pct: Estimate | None = None
    flips: stats.Flips | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricDef:
    name: str
    label: str
    unit: str
    """``rate`` (0..1, shown in percent), ``ms``, ``tokens``, ``usd`` or ``score`` (0..1)."""
    higher_is_better: bool
    paired: bool
    """True when there is a baseline side and gates may bound the delta."""
    compute: Callable[["Pairs"], MetricValue]
    group: str = ""
    """Metrics computed together (p50/p95/p99 share one sort) share a group."""
    min_n: int = 1
    """The fewest pairs a gate on this metric needs before it can PASS or FAIL."""
    min_n_reason: str = ""
    """Why, in a few words, for the INCONCLUSIVE note."""
    needs: str = ""
    """The scenario key without which the metric cannot exist (``embeddings``, ``judge``): reports
    of a run without it leave the metric out, and the preset's gate on it."""


METRICS: dict[str, MetricDef] = {}
WEIGHT = "weight"
"""The column of each pair's weight, in a table of a deduplicated sample."""


RATE_MIN_N = 10
RATE_MIN_N_REASON = "score intervals are used from 10 pairs on"
MEAN_MIN_N = 20
MEAN_MIN_N_REASON = "a bootstrap interval of a mean needs 20 pairs"


def register_metric(
    name: str, label: str, unit: str, higher_is_better: bool, paired: bool = True, group: str = "",
    min_n: int = RATE_MIN_N, min_n_reason: str = RATE_MIN_N_REASON, needs: str = "",
) -> Callable[[Callable[["Pairs"], MetricValue]], Callable[["Pairs"], MetricValue]]:
    def decorate(compute: Callable[["Pairs"], MetricValue]) -> Callable[["Pairs"], MetricValue]:
        METRICS[name] = MetricDef(name, label, unit, higher_is_better, paired, compute, group or name, min_n,
                                  min_n_reason, needs)  # fmt: skip
        return compute

    return decorate


def transpose(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """key -> every row's value (None where a row lacks the key), in one pass over the rows.

    A pass per key spends most of its time waiting for each dict to come back into the CPU
    cache; one pass reading all keys, transposed in C, reads each dict once."""
    if not rows:
        return {}
    keys = sorted(set().union(*rows))
    return dict(zip(keys, zip(*[tuple(map(row.get, keys)) for row in rows])))


class Pairs:
    """A table of per-pair measures, held as columns (key -> one value per pair).

    Each key becomes a numpy array once, and segments are masks over the whole table, so
    no array is built twice. Built from measure dicts (``Pairs(rows)``) or straight from
    columns (:meth:`from_columns`, what comparison workers send back)."""

    def __init__(self, rows: list[dict[str, Any]] | None = None, mask: np.ndarray | None = None,
                 parent: "Pairs | None" = None) -> None:  # fmt: skip
        self._root: Pairs = self if parent is None else parent._root
        self._mask = mask
        self._columns: dict[str, np.ndarray] = {}
        self._cache: dict[str, Any] = {}
        if parent is None:
            self._rows = rows
            self._table: dict[str, Any] | None = None
            self._n = len(rows or ())
            self._weighted = False

    @classmethod
    def from_columns(cls, columns: dict[str, Any], n: int) -> "Pairs":
        """A table from columns of ``n`` values each (a missing key reads as all None)."""
        pairs = cls([])
        pairs._rows, pairs._table, pairs._n = None, columns, n
        return pairs

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The measure dicts (rebuilt from the columns when the table was built from them)."""
        root = self._root
        if root._rows is None:
            table = root.table
            keys = list(table)
            root._rows = [
                {key: value for key, value in zip(keys, values) if value is not None} for values in zip(*table.values())
            ]
        rows, mask = root._rows, self._mask
        if mask is None:
            return rows
        return self.cached("rows", lambda: [row for row, keep in zip(rows, mask) if keep])

    @property
    def table(self) -> dict[str, Any]:
        """key -> the values of all pairs (the whole table, whatever the mask)."""
        root = self._root
        if root._table is None:
            root._table = transpose(root._rows or [])
        return root._table

    def values(self, key: str) -> Any:
        """One key's values over all pairs, as a sequence (all None where no pair has it)."""
        column = self.table.get(key)
        return (None,) * self._root._n if column is None else column

    def __len__(self) -> int:
        return self._root._n if self._mask is None else int(self._mask.sum())

    def set_weights(self, weights: Sequence[int]) -> None:
        """Each pair's weight (``sample.dedupe``: the sampled records its request stands for), in
        the table's order; from then on every metric of the table and its subsets is weighted."""
        self.add_column(WEIGHT, weights)
        self._root._weighted = True

    def weights(self, population: np.ndarray | None = None) -> np.ndarray | None:
        """The pairs' weights (within ``population``, a mask over these pairs), None for a table
        without weights: the unweighted figures, computed as before."""
        if not self._root._weighted:
            return None
        weights = self.numbers(WEIGHT)
        return weights if population is None else weights[population]

    def add_column(self, key: str, values: Sequence[Any]) -> None:
        """Join a column measured elsewhere (one value per pair, None where a pair has none, in
        the table's order) to the whole table: the semantic similarities, stored apart."""
        root = self._root
        if self._mask is not None or len(values) != root._n:
            raise ValueError("a column joins the whole table, one value per pair")
        if root._rows is not None:
            for row, value in zip(root._rows, values):
                if value is not None:
                    row[key] = value
        if root._table is not None:
            root._table[key] = tuple(values)
        for kind in ("object", "present", "numbers", "truthy"):
            root._columns.pop(f"{kind}:{key}", None)

    def _whole(self, key: str, kind: str) -> np.ndarray:
        """The object column is built once per key; the other kinds derive from it in numpy."""
        root = self._root
        name = f"{kind}:{key}"
        if name not in root._columns:
            objects = root._columns.get(f"object:{key}")
            if objects is None:
                # the trailing None keeps lists as elements: never broadcast into a 2-D array
                objects = np.array([*self.values(key), None], dtype=object)[:-1]
                root._columns[f"object:{key}"] = objects
            if kind == "present":
                column = objects != None  # noqa: E711  elementwise
            elif kind == "numbers":
                column = np.where(objects != None, objects, np.nan).astype(float)  # noqa: E711
            elif kind == "truthy":
                column = objects.astype(bool)
            else:
                column = objects
            root._columns[name] = column
        column = root._columns[name]
        return column if self._mask is None else column[self._mask]

    def column(self, key: str) -> np.ndarray:
        """Values as an object array (None kept)."""
        return self._whole(key, "object")

    def present(self, key: str) -> np.ndarray:
        return self._whole(key, "present")

    def numbers(self, key: str) -> np.ndarray:
        return self._whole(key, "numbers")

    def truthy(self, key: str) -> np.ndarray:
        return self._whole(key, "truthy")

    @property
    def comparable(self) -> np.ndarray:
        """Pairs with a baseline to compare against (the log had a response)."""
        return self.cached("comparable", lambda: self.column("b_error_class") != "missing")

    @property
    def both_ok(self) -> np.ndarray:
        return self.cached("both_ok", lambda: self.comparable & ~self.truthy("b_error") & ~self.truthy("c_error"))

    def field_tallies(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Per pair, key fields matched and compared; per field path, 1 (match), 0 or -1 (not compared).

        Built once over all pairs in one Python pass; a segment takes its rows by mask."""
        root = self._root
        if "field_tallies" not in root._cache:
            n = root._n
            matched, compared = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
            per_field: dict[str, np.ndarray] = {}
            for index, fields in enumerate(self.values("fields")):
                if not fields:
                    continue
                hits = 0
                for path, ok in fields.items():
                    column = per_field.get(path)
                    if column is None:
                        column = per_field[path] = np.full(n, -1, dtype=np.int8)
                    column[index] = 1 if ok else 0
                    hits += 1 if ok else 0
                matched[index], compared[index] = hits, len(fields)
            root._cache["field_tallies"] = (matched, compared, per_field)
        matched, compared, per_field = root._cache["field_tallies"]
        if self._mask is None:
            return matched, compared, per_field
        mask = self._mask
        return matched[mask], compared[mask], {path: ok[mask] for path, ok in per_field.items()}

    def cached(self, key: str, build: Callable[[], T]) -> T:
        if key not in self._cache:
            self._cache[key] = build()
        cached: T = self._cache[key]
        return cached

    def subset(self, mask: np.ndarray) -> "Pairs":
        """The pairs where ``mask`` (over this table's rows) is true."""
        if self._mask is None:
            return Pairs(None, mask, self)
        whole = np.zeros(self._root._n, dtype=bool)
        whole[np.flatnonzero(self._mask)[mask]] = True
        return Pairs(None, whole, self)


def _side_rate(pairs: Pairs, name: str, key: str, population: np.ndarray, *, passing: bool) -> MetricValue:
    """A per-side rate and its paired delta. ``passing`` says which value is the good one
    for McNemar's flips (True: the measure is a pass, e.g. format compliance)."""
    base = pairs.truthy(f"b_{key}")[population]
    cand = pairs.truthy(f"c_{key}")[population]
    n = int(population.sum())
    good_b, good_c = (base, cand) if passing else (~base, ~cand)
    w = pairs.weights(population)
    if w is not None:
        return MetricValue(name=name, n=n, baseline=weighted.rate(base, w), candidate=weighted.rate(cand, w),
                           delta=weighted.paired_rate_delta(base, cand, w),
                           delta_pct=_percent_of(weighted.paired_rate_ratio(base, cand, w)),
                           flips=weighted.mcnemar(good_b, good_c, w))  # fmt: skip
    return MetricValue(
        name=name,
        n=n,
        baseline=stats.wilson(int(base.sum()), n),
        candidate=stats.wilson(int(cand.sum()), n),
        delta=stats.paired_rate_delta(base, cand),
        delta_pct=_rate_delta_pct(base, cand),
        flips=stats.mcnemar(good_b, good_c),
    )


def _wilson(yes: np.ndarray, w: np.ndarray | None, among: np.ndarray | None = None) -> Estimate:
    """The share of ``yes`` (among the pairs ``among`` marks, default all): Wilson's interval,
    weighted where the pairs have weights."""
    if among is not None:
        yes, w = yes[among], (None if w is None else w[among])
    if w is None:
        return stats.wilson(int(yes.sum()), int(yes.size))
    return weighted.rate(yes, w)


def _rate_delta_pct(base: np.ndarray, cand: np.ndarray) -> Estimate:
    """The rate delta in percent of the baseline rate: the paired ratio's interval, which
    carries the baseline rate's own uncertainty (dividing the delta's interval by the
    baseline's point rate does not, and passed relative bounds falsely)."""
    return _percent_of(stats.paired_rate_ratio(base, cand))


def _percent_of(ratio: Estimate) -> Estimate:
    if not ratio.known:
        return Estimate.empty(ratio.n)
    assert ratio.value is not None and ratio.low is not None and ratio.high is not None
    widen = (lambda confidence: _percent_of(ratio.at(confidence))) if ratio.widen else None
    return Estimate((ratio.value - 1) * 100, (ratio.low - 1) * 100, (ratio.high - 1) * 100, ratio.n, widen)


@register_metric("error_rate", "Error rate", "rate", higher_is_better=False)
def error_rate(pairs: Pairs) -> MetricValue:
    return _side_rate(pairs, "error_rate", "error", pairs.comparable, passing=False)


@register_metric("refusal_rate", "Refusal rate", "rate", higher_is_better=False)
def refusal_rate(pairs: Pairs) -> MetricValue:
    return _side_rate(pairs, "refusal_rate", "refused", pairs.both_ok, passing=False)


@register_metric("format_compliance", "Format compliance (JSON)", "rate", higher_is_better=True)
def format_compliance(pairs: Pairs) -> MetricValue:
    population = pairs.both_ok & pairs.truthy("json_required")
    return _side_rate(pairs, "format_compliance", "json_valid", population, passing=True)


@register_metric("schema_validity", "Schema validity", "rate", higher_is_better=True)
def schema_validity(pairs: Pairs) -> MetricValue:
    population = pairs.both_ok & pairs.truthy("schema_required")
    return _side_rate(pairs, "schema_validity", "schema_valid", population, passing=True)


@register_metric("policy_pass_rate", "Policy pass rate", "rate", higher_is_better=True)
def policy_pass_rate(pairs: Pairs) -> MetricValue:
    return _side_rate(pairs, "policy_pass_rate", "policy_pass", pairs.both_ok, passing=True)


@register_metric("tool_call_agreement", "Tool-call agreement", "rate", higher_is_better=True, paired=False)
def tool_call_agreement(pairs: Pairs) -> MetricValue:
    population = pairs.comparable & pairs.present("tools_agree")
    agree = pairs.truthy("tools_agree")[population]
    n = int(population.sum())
    return MetricValue("tool_call_agreement", n, _wilson(agree, pairs.weights(population)))


@register_metric("key_field_accuracy", "Key-field accuracy", "rate", higher_is_better=True, paired=False,
                 min_n=MEAN_MIN_N, min_n_reason=MEAN_MIN_N_REASON)  # fmt: skip
def key_field_accuracy(pairs: Pairs) -> MetricValue:
    matched, compared, per_field = pairs.field_tallies()
    keep = pairs.comparable & (compared > 0)
    w = pairs.weights(keep)
    if w is None:
        estimate = stats.bootstrap_ratio(matched[keep], compared[keep], bounded=True)
    else:
        estimate = weighted.ratio_of_sums(matched[keep].astype(float), compared[keep].astype(float), w, bounded=True)
    fields_out = {path: _wilson(ok[keep] == 1, w, ok[keep] >= 0) for path, ok in sorted(per_field.items())}
    fields_out = {path: value for path, value in fields_out.items() if value.n}
    return MetricValue("key_field_accuracy", int(keep.sum()), estimate, extra={"fields": fields_out})


@register_metric("similarity", "Similarity (mean)", "score", higher_is_better=True, paired=False,
                 min_n=MEAN_MIN_N, min_n_reason=MEAN_MIN_N_REASON)  # fmt: skip
def similarity(pairs: Pairs) -> MetricValue:
    values = pairs.numbers("similarity")[pairs.both_ok]
    known = ~np.isnan(values)
    values = values[known]
    if values.size == 0:
        return MetricValue("similarity", 0, Estimate.empty())
    w_all = pairs.weights(pairs.both_ok)
    w = None if w_all is None else w_all[known]
    mean_est = stats.bounded_mean(values) if w is None else weighted.bounded_mean(values, w)
    p10 = stats.percentile_one(values, 10) if w is None else weighted.percentile_one(values, w, 10)
    exact = pairs.truthy("exact_match")[pairs.both_ok]
    normalised = pairs.truthy("normalized_match")[pairs.both_ok]
    return MetricValue(
        "similarity", int(values.size), mean_est,
        extra={"p10": p10, "exact_match": _wilson(exact, w_all), "normalized_match": _wilson(normalised, w_all)},
    )  # fmt: skip


EMBEDDINGS_KEY = "embeddings"
P10_MIN_N = stats.min_n_for_bound(0.10, (1 - stats.CONFIDENCE) / 2)


def _cosines(pairs: Pairs) -> np.ndarray:
    """The cosines of the pairs whose two arms answered and were embedded."""
    def build() -> np.ndarray:
        values: np.ndarray = pairs.numbers("semantic_similarity")[pairs.both_ok]
        kept: np.ndarray = values[~np.isnan(values)]
        return kept

    return pairs.cached("cosines", build)


@register_metric("semantic_similarity", "Semantic similarity (mean cosine)", "score", higher_is_better=True, paired=False,
                 min_n=MEAN_MIN_N, min_n_reason=MEAN_MIN_N_REASON, needs=EMBEDDINGS_KEY)  # fmt: skip
def semantic_similarity(pairs: Pairs) -> MetricValue:
    """The mean cosine of the two answers' embeddings. Pairs never embedded (``missing``) are
    not left out silently: they are mostly the ones whose answers differ (equal answers need
    no vector), so the interval spans what they could be, from all -1 to all 1."""
    values, missing = _cosines(pairs), _missing_cosines(pairs)
    if values.size == 0:
        return MetricValue("semantic_similarity", 0, Estimate.empty(), extra={"missing": missing})
    p10 = semantic_similarity_p10(pairs).candidate
    w = pairs.weights()
    if w is None:
        estimate = _mean_allowing_missing(_cosine_mean(values), int(values.size), missing)
    else:  # the weights of the embedded pairs and of the missing ones: their mass in the traffic
        embedded, unknown = _weighted_cosines(pairs, w)
        mean = _from_unit(weighted.bounded_mean((values + 1) / 2, embedded))
        estimate = _mean_allowing_missing(mean, int(embedded.sum()), int(unknown.sum()))
    return MetricValue("semantic_similarity", int(values.size), estimate, extra={"p10": p10, "missing": missing})


@register_metric("semantic_similarity_p10", "Semantic similarity p10", "score", higher_is_better=True, paired=False,
                 min_n=P10_MIN_N, needs=EMBEDDINGS_KEY,
                 min_n_reason=f"a distribution-free interval of a p10 needs {P10_MIN_N} pairs")  # fmt: skip
def semantic_similarity_p10(pairs: Pairs) -> MetricValue:
    """The 10th percentile of the cosines: how far the worst tenth of the answers drift in meaning."""
    values = _cosines(pairs)
    w = pairs.weights()
    if w is None:
        estimate = _allowing_missing(lambda x: _within_cosines(stats.percentile_one(x, 10)), values, _missing_cosines(pairs))
    else:
        embedded, unknown = _weighted_cosines(pairs, w)
        estimate = _weighted_allowing_missing(values, embedded, unknown)
    return MetricValue("semantic_similarity_p10", int(values.size), estimate)


def _weighted_cosines(pairs: Pairs, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weights of the embedded pairs (in :func:`_cosines`' order) and of the pairs never embedded."""
    known = pairs.present("semantic_similarity") & ~np.isnan(pairs.numbers("semantic_similarity"))
    return w[pairs.both_ok & known], w[pairs.both_ok & ~known]


def _weighted_allowing_missing(values: np.ndarray, w: np.ndarray, missing: np.ndarray) -> Estimate:
    """:func:`_allowing_missing` of the weighted p10, the missing pairs filled with their weights."""
    def p10(x: np.ndarray, weights: np.ndarray) -> Estimate:
        return _within_cosines(weighted.percentile_one(x, weights, 10))

    observed = p10(values, w)
    if not missing.size or values.size == 0:
        return observed
    weights = np.concatenate([w, missing])
    worst = p10(np.concatenate([values, np.full(missing.size, -1.0)]), weights)
    best = p10(np.concatenate([values, np.full(missing.size, 1.0)]), weights)
    return _stretched(observed, worst, best)


def _within_cosines(estimate: Estimate) -> Estimate:
    """A bound no order statistic gives (too few pairs beyond the percentile) is the cosine's own, -1 or 1."""
    if not estimate.known:
        return estimate
    assert estimate.low is not None and estimate.high is not None
    widen = (lambda confidence: _within_cosines(estimate.at(confidence))) if estimate.widen else None
    return Estimate(estimate.value, max(-1.0, estimate.low), min(1.0, estimate.high), estimate.n, widen, estimate.min_n)


def _missing_cosines(pairs: Pairs) -> int:
    return int((pairs.both_ok & ~pairs.present("semantic_similarity")).sum())


def _mean_allowing_missing(observed: Estimate, n: int, missing: int) -> Estimate:
    """The embedded pairs' mean, its interval that of the mean over all the pairs whatever the
    missing ones' cosines: (n * low - m) / (n + m) to (n * high + m) / (n + m) (Manski's bounds)."""
    if not missing or not observed.known:
        return observed
    assert observed.value is not None and observed.low is not None and observed.high is not None
    widen = (lambda confidence: _mean_allowing_missing(observed.at(confidence), n, missing)) if observed.widen else None
    total = n + missing
    return Estimate(observed.value, min(observed.value, (n * observed.low - missing) / total),
                    max(observed.value, (n * observed.high + missing) / total), n, widen, observed.min_n)  # fmt: skip


def _allowing_missing(estimator: Callable[[np.ndarray], Estimate], values: np.ndarray, missing: int) -> Estimate:
    """The estimate of the embedded pairs, its interval stretched to hold whatever the missing
    pairs' cosines are: its low end as if all were -1, its high end as if all were 1 (for a
    percentile's order statistics, exactly the interval over all the pairs)."""
    observed = estimator(values)
    if not missing or values.size == 0:
        return observed
    worst = estimator(np.concatenate([values, np.full(missing, -1.0)]))
    best = estimator(np.concatenate([values, np.full(missing, 1.0)]))
    return _stretched(observed, worst, best)


def _stretched(observed: Estimate, worst: Estimate, best: Estimate) -> Estimate:
    if not (observed.known and worst.known and best.known):
        return observed
    assert observed.value is not None and worst.low is not None and best.high is not None
    widen = None
    if observed.widen and worst.widen and best.widen:
        widen = lambda confidence: _stretched(observed.at(confidence), worst.at(confidence), best.at(confidence))  # noqa: E731
    # the observed data's minimum n: a made-up block of -1s or 1s says nothing about the data's own
    return Estimate(observed.value, min(worst.low, observed.value), max(best.high, observed.value), observed.n, widen,
                    observed.min_n)  # fmt: skip


def _cosine_mean(values: np.ndarray) -> Estimate:
    """The mean of cosines, which lie in [-1, 1]: the [0, 1] mean of (c + 1) / 2, mapped back,
    so that where the skewness rule is not met Hoeffding's interval holds for the cosine's range."""
    return _from_unit(stats.bounded_mean((values + 1) / 2))


def _from_unit(estimate: Estimate) -> Estimate:
    if not estimate.known:
        return estimate
    assert estimate.value is not None and estimate.low is not None and estimate.high is not None
    widen = (lambda confidence: _from_unit(estimate.at(confidence))) if estimate.widen else None
    return Estimate(2 * estimate.value - 1, 2 * estimate.low - 1, 2 * estimate.high - 1, estimate.n, widen, estimate.min_n)


def _paired_numbers(pairs: Pairs, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Both arms' values where both answered and measured it, and those pairs' weights (None: unweighted)."""
    base, cand = pairs.numbers(f"b_{key}"), pairs.numbers(f"c_{key}")
    keep = pairs.both_ok & ~np.isnan(base) & ~np.isnan(cand)
    return base[keep], cand[keep], pairs.weights(keep)


def _quantile_metrics(pairs: Pairs, key: str, prefix: str) -> dict[str, MetricValue]:
    def build() -> dict[str, MetricValue]:
        base, cand, w = _paired_numbers(pairs, key)
        results = stats.paired_percentiles(base, cand, QUANTILES) if w is None else \
            weighted.paired_percentiles(base, cand, w, QUANTILES)  # fmt: skip
        out = {}
        for q, (b, c, d, pct) in zip((50, 95, 99), results):
            name = f"{prefix}_p{q}_ms"
            out[name] = MetricValue(name, int(base.size), c, b, d, pct)
        return out

    return pairs.cached(f"quantiles:{key}", build)


def _register_quantiles(key: str, prefix: str, label: str) -> None:
    for q in QUANTILES:
        name = f"{prefix}_p{q}_ms"

        def compute(pairs: Pairs, name: str = name) -> MetricValue:
            return _quantile_metrics(pairs, key, prefix)[name]

        floor = stats.min_n_for_bound(q / 100, (1 - stats.CONFIDENCE) / 4)
        reason = f"a distribution-free interval of a p{q} delta needs {floor} pairs"
        register_metric(name, f"{label} p{q}", "ms", higher_is_better=False, group=prefix, min_n=floor,
                        min_n_reason=reason)(compute)  # fmt: skip


QUANTILES = (50, 95, 99)


_register_quantiles("latency_ms", "latency", "Latency")
_register_quantiles("ttft_ms", "ttft", "Time to first token")


def _mean_metric(pairs: Pairs, name: str, key: str) -> MetricValue:
    base, cand, w = _paired_numbers(pairs, key)
    if w is None:
        b, c, d, pct = stats.paired_mean(base, cand)
        extra = {"total_baseline": float(base.sum()), "total_candidate": float(cand.sum())}
    else:
        b, c, d, pct = weighted.paired_mean(base, cand, w)
        extra = {"total_baseline": float(np.sum(w * base)), "total_candidate": float(np.sum(w * cand))}
    return MetricValue(name, int(base.size), c, b, d, pct, extra=extra)


@register_metric("tokens_out", "Output tokens (mean)", "tokens", higher_is_better=False,
                 min_n=MEAN_MIN_N, min_n_reason=MEAN_MIN_N_REASON)  # fmt: skip
def tokens_out(pairs: Pairs) -> MetricValue:
    return _mean_metric(pairs, "tokens_out", "tokens_out")


@register_metric("tokens_in", "Input tokens (mean)", "tokens", higher_is_better=False,
                 min_n=MEAN_MIN_N, min_n_reason=MEAN_MIN_N_REASON)  # fmt: skip
def tokens_in(pairs: Pairs) -> MetricValue:
    return _mean_metric(pairs, "tokens_in", "tokens_in")


@register_metric("cost_per_request_usd", "Cost per request", "usd", higher_is_better=False,
                 min_n=MEAN_MIN_N, min_n_reason=MEAN_MIN_N_REASON)  # fmt: skip
def cost_per_request(pairs: Pairs) -> MetricValue:
    value = _mean_metric(pairs, "cost_per_request_usd", "cost_usd")
    per_1k = {side: (est.value * 1000 if est and est.value is not None else None)
              for side, est in (("baseline", value.baseline), ("candidate", value.candidate))}  # fmt: skip
    return MetricValue(**{**value.__dict__, "extra": {**value.extra, "per_1000_requests": per_1k}})


@register_metric("judge_win_rate", "Judge win rate", "rate", higher_is_better=True, paired=False, needs="judge")
def judge_win_rate(pairs: Pairs) -> MetricValue:
    """(wins + ties/2) / judged, a pair being the unit (with both orders, its combined verdict);
    judge errors are counted, never judged. The extras show how far to trust it: how often
    the verdict survived swapping the answers, how often the first-shown answer won, and the
    win rate when the candidate's answer is the longer or the shorter one."""
    outcome = pairs.column("judge")
    wins, ties, losses = (outcome == "candidate"), (outcome == "tie"), (outcome == "baseline")
    judged = wins | ties | losses
    n = int(judged.sum())
    consistent = pairs.column("judge_consistent")
    known = pairs.present("judge_consistent")
    length = pairs.numbers("length_delta")

    w = pairs.weights()
    if w is not None:
        return _weighted_judge(pairs, w, wins, ties, losses, judged, known, consistent, length)

    def rate_where(mask: np.ndarray) -> Estimate:
        return stats.win_rate(int((wins & mask).sum()), int((ties & mask).sum()), int((judged & mask).sum()))

    extra: dict[str, Any] = {
        "wins": int(wins.sum()), "ties": int(ties.sum()), "losses": int(losses.sum()),
        "errors": int((outcome == "error").sum()),
        "position_consistency": stats.wilson(int((consistent[known] == True).sum()), int(known.sum())),  # noqa: E712
        "first_position": stats.wilson(int(np.nansum(pairs.numbers("judge_first_picks"))),
                                       int(np.nansum(pairs.numbers("judge_decisive")))),
        "when_longer": rate_where(length > 0), "when_shorter": rate_where(length < 0),
    }  # fmt: skip
    return MetricValue("judge_win_rate", n, stats.win_rate(int(wins.sum()), int(ties.sum()), n), extra=extra)


def _weighted_judge(pairs: Pairs, w: np.ndarray, wins: np.ndarray, ties: np.ndarray, losses: np.ndarray,
                    judged: np.ndarray, known: np.ndarray, consistent: np.ndarray, length: np.ndarray) -> MetricValue:  # fmt: skip
    """:func:`judge_win_rate` with every verdict counted with its pair's weight."""
    def rate_where(mask: np.ndarray) -> Estimate:
        keep = judged & mask
        return weighted.judge_rate(wins[keep].astype(float), ties[keep].astype(float), w[keep])

    picks, decisive = (np.nan_to_num(pairs.numbers(key)) for key in ("judge_first_picks", "judge_decisive"))
    extra: dict[str, Any] = {
        "wins": int(w[wins].sum()), "ties": int(w[ties].sum()), "losses": int(w[losses].sum()),
        "errors": int(w[pairs.column("judge") == "error"].sum()),
        "position_consistency": _wilson(consistent == True, w, known),  # noqa: E712
        "first_position": weighted.rate(picks, w, decisive),
        "when_longer": rate_where(length > 0), "when_shorter": rate_where(length < 0),
    }  # fmt: skip
    return MetricValue("judge_win_rate", int(judged.sum()), rate_where(np.ones_like(judged)), extra=extra)
