"""Plan before spending: what each gate needs, what the sample gives, what the run will cost.

``replay plan`` reads the logs once, picks the sample exactly as ``replay run`` would
(:func:`replay.runner.scan`), and tallies, in that same pass, what the declared gates'
metrics read of the logged answers (the baseline side, measured by the same comparators
a run uses). For each gate it then works out how many pairs a candidate *equal to the
baseline* needs for an 80% chance to PASS, what the gate will most likely say at the
configured sample, and, per sending arm, the requests, tokens, cost and duration at the
configured limits and prices. Nothing is sent and nothing is stored.

The levels the gates really use (:mod:`replay.gates`): a gate PASSes when its two-sided
95% interval lies wholly on the good side of its threshold, a one-sided test at
alpha = 2.5%; it FAILs at Holm's family-wise level, one-sided 2.5% / m for the first of
the run's m tests (gates times, for a gate without its own segment, one plus the
critical segments). PASS never uses the Holm level. Below ``required_n`` (the gate's
``min_n`` or its metric's own minimum) and, for a mean, below ``max(20, 355 g^2)`` (g the
skewness of what is averaged) a gate cannot PASS at all.

The model of "a candidate equal to the baseline", per kind of metric:

* **A rate** (error rate, format compliance, refusals, schema validity, policy pass):
  the candidate has the baseline's rate p, its failures **independent** of the
  baseline's. With failure correlation r the discordance (the share of requests on
  which the two arms disagree) is psi = 2 p (1 - p) (1 - r); r = 0 gives its largest
  realistic value (arms fail on the same requests more often than not, never less),
  hence the largest n: the plan is conservative for correlated failures.
* **A mean** (tokens, cost per request): the candidate is sent the same prompts and
  counts them as the log did; its completion tokens are an independent draw from the
  logged ones (again the worst realistic case: no correlation with the baseline's
  answer length); its cost is its own price applied to those tokens. So a candidate
  that costs more per token is expected to cost more, and the plan says so.
* **A percentile** (latency, TTFT): the candidate's distribution is the logged one,
  independent of the baseline's (positive correlation only narrows the difference).

The formulas. z_a = z(1 - alpha) with alpha = 0.025, z_b = z(0.8) = 0.8416, M the margin
(threshold minus the expected figure), n the pairs:

* Paired rate difference (Newcombe's interval): Connor's (1987) sample size for
  McNemar's test, n = [z_a sqrt(psi) + z_b sqrt(psi - delta^2)]^2 / delta^2, becomes, for
  the non-inferiority margin M with a true difference of 0, n = (z_a + z_b)^2 psi / M^2.
  The plan refines it with the gate's own interval: it finds the least n with
  P(PASS) = Phi((M - h(n)) / sqrt(psi / n)) >= 0.8, h(n) being the upper half-width of
  Newcombe's interval at the expected table (n p11, n p10, n p01, n p00); with Wald's
  half-width z_a sqrt(psi / n) this is Connor's n exactly, and unlike it, it keeps the
  score interval's asymmetry near p = 0 and its continuity-corrected correlation.
* Paired rate ratio (``*_delta_pct`` on a rate, Tang's score interval): the same with
  the ratio's interval at the expected table and sd(ratio) = sqrt(psi / (n p^2)), i.e.
  n ~ (z_a + z_b)^2 psi / (p^2 (T / 100)^2).
* One rate (``min``/``max`` on a rate, Wilson's interval): the same with Wilson's
  interval at n p successes and sd = sqrt(p (1 - p) / n).
* Means (Student's t with the bootstrap-t; both agree on the symmetric differences of
  this model): P(PASS) = Phi((M - t(0.975, n - 1) s / sqrt(n)) / (s / sqrt(n))), so
  n ~ (t_a + z_b)^2 s^2 / M^2, with s the spread of the per-request difference
  (s^2 = var(candidate) + var(baseline) - 2 cov); for ``*_delta_pct`` the spread of the
  ratio's residuals c - R b over the baseline mean, for ``min``/``max`` the candidate's
  own spread. The gate also waits for max(20, 355 g^2) pairs, g the skewness *of its
  sample*; how often that holds it back at n is measured on 200 subsamples of the
  modelled differences (P(PASS) is multiplied by the share that clear it): with heavy
  tails the sample's skewness varies a lot, and ignoring it left the plan 10-15% short.
* Percentiles (order statistics, each arm's bound at a one-sided alpha / 2): the gate's
  upper bound of the p-q difference is x_c(u) - x_b(l), the u-th and l-th smallest of n,
  u and l the order-statistic ranks of :func:`replay.stats.order_ranks`; its expected
  value is Q(u / (n + 1)) - Q(l / (n + 1)) and its spread that of two order statistics,
  sd(x(k)) ~ [Q(k/(n+1) + s) - Q(k/(n+1) - s)] / 2, s = sqrt(p (1 - p) / (n + 2)),
  Q the logged quantile function. It needs at least ``min_n_for_bound`` pairs (a p99 at
  95%: 436) before any upper bound exists.

Each figure was checked against a simulation of the gate code itself
(tests/test_plan_simulation.py): at the planned n, the share of simulated runs that
PASS is 80% within the simulation's error.
"""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any, Callable, Iterable

import numpy as np

from replay.config import Arm, Embeddings, Judge, Scenario
from replay.gates import BOUNDS, decidable, FAMILY_ALPHA, INCONCLUSIVE, FAIL, PASS, SKIPPED, Gate, required_n
from replay.metrics import MEAN_MIN_N, METRICS
from replay.pricing import PriceTable
from replay.settings import DecisionSettings, decision_from
from replay.stats import CONFIDENCE, newcombe_paired, order_ranks, paired_ratio, skewness_min_n, t_quantile, wilson
from replay.stats.bootstrap import SKEWNESS_FACTOR
from replay.types import LogRecord

POWER = 0.8
"""The chance to PASS a candidate equal to the baseline that the planned sample sizes give."""
PASS_ALPHA = round((1 - CONFIDENCE) / 2, 12)
"""The one-sided level a PASS is tested at: the gate's 95% interval, never Holm-adjusted."""
MAX_PLANNED = 100_000_000
"""Beyond this many pairs a gate is reported as needing more than that."""
UNKNOWN = "UNKNOWN"
"""What the plan expects of a gate it cannot plan from the log (a measure of the pair itself)."""
_Z = NormalDist()

RATE_KEYS = {
    "error_rate": "error",
    "refusal_rate": "refused",
    "format_compliance": "json_valid",
    "schema_validity": "schema_valid",
    "policy_pass_rate": "policy_pass",
}
"""Per-side rates and the flag of the baseline's answer each counts."""
RATE_POPULATION = {"format_compliance": "json_required", "schema_validity": "schema_required"}
"""Rates counted over the requests that ask for something (JSON, a schema) only."""
TAIL_VALUES = 20
"""Logged values beyond a percentile below which the plan says its tail is a rough guess."""
PERCENTILE_KEYS = {"latency": "latency_ms", "ttft": "ttft_ms"}
MEAN_METRICS = ("tokens_in", "tokens_out", "cost_per_request_usd")
COMPARATORS_FOR = {"refusal_rate": "safety", "policy_pass_rate": "safety", "format_compliance": "structured",
                   "schema_validity": "structured"}  # fmt: skip
"""The comparator that measures a rate's flag on the logged answer (the run's own code)."""
FLAGS = ("comparable", "ok", "json_required", "json_valid", "schema_required", "schema_valid", "refused",
         "policy_pass")  # fmt: skip
_BIT = {name: 1 << i for i, name in enumerate(FLAGS)}


# --- the logged baseline, tallied in the pass that picks the sample ----------------------


NUMBERS = ("latency_ms", "ttft_ms", "tokens_in", "tokens_out", "cost_usd", "max_output")
"""What the tally keeps of each logged answer (NaN where unknown); ``max_output`` is the
answer's token cap the request declares, as the rate limiter counts it."""
RUN_KEEP = 5_000
"""Records ``replay run`` measures for its warning: a uniform sample of the log (reservoir
sampling), so that warning costs the first pass a counter per record beyond these."""


class LogTally:
    """Fed every record of the run's first pass (:meth:`see`), it measures what the gates'
    metrics read of the logged answer: a byte of flags and a few numbers, with the
    comparators a run uses, so the plan's baseline is the run's baseline.

    ``keep`` None measures every record (``replay plan``: exact counts over the sample);
    a number keeps a uniform sample of that many (Li's reservoir algorithm L: about
    keep x (1 + ln(records / keep)) records are measured on the way, 20,000 of 100,000 for
    5,000 kept), and the sample's counts are then estimated from its shares."""

    def __init__(self, scenario: Scenario, settings: DecisionSettings,
                 on_scanned: Callable[["LogTally"], None] | None = None, keep: int | None = None) -> None:  # fmt: skip
        from replay.compare import COMPARATORS

        self.scenario = scenario
        self.settings = settings
        self.on_scanned = on_scanned
        """Called once the sample is picked (``replay run`` warns from it, before sending)."""
        self.keep = keep
        self.fresh = scenario.baseline == "fresh" and scenario.production is not None
        self.prices = PriceTable(scenario.prices)
        metrics = {gate.metric for gate in settings.gates}
        names = dict.fromkeys(COMPARATORS_FOR[name] for name in metrics if name in COMPARATORS_FOR)
        self._comparators = [COMPARATORS[name] for name in names]
        self._keys = tuple(dict.fromkeys(_segment_keys(settings)))
        self.seen = 0
        self.rows: list[tuple[Any, ...]] = []
        """With ``keep``: the reservoir of measured records, (id, flags, *NUMBERS, *segment labels)."""
        width = 2 + len(NUMBERS) + len(self._keys)
        self._columns: list[Any] = [[], bytearray()] + [array("d") for _ in NUMBERS] + [[] for _ in self._keys]
        """Without ``keep``: every measured record, column by column (about 60 bytes a record)."""
        self._width = width
        self.selected: set[str] | None = None
        self._random = random.Random(RESERVOIR_SEED)
        self._weight = 0.0
        self._next = 0

    def see(self, record: LogRecord) -> None:
        """One record of the log, in the order read."""
        index = self.seen
        self.seen = index + 1
        keep = self.keep
        if keep is None:
            for column, value in zip(self._columns, self.measure(record)):
                column.append(value)
        elif index < keep:
            self.rows.append(self.measure(record))
            if index + 1 == keep:
                self._weight = math.exp(math.log(self._draw()) / keep)
                self._skip(index)
        elif index == self._next:
            self.rows[self._random.randrange(keep)] = self.measure(record)
            self._weight *= math.exp(math.log(self._draw()) / keep)
            self._skip(index)

    def _draw(self) -> float:
        return self._random.random() or 1e-300

    def _skip(self, index: int) -> None:
        """Algorithm L (Li 1994): the index of the next record to enter the reservoir."""
        self._next = index + int(math.log(self._draw()) / math.log1p(-min(self._weight, 1 - 1e-16))) + 1

    def measure(self, record: LogRecord) -> tuple[Any, ...]:
        """What the run will store for the logged arm, as the comparators measure it."""
        from replay.compare import Side
        from replay.providers.openai_policy import max_output_tokens

        failed = record.error is not None or (record.status is not None and record.status >= 400)
        answer = None if failed else record.answer
        bits = 0
        if self.fresh or failed or answer is not None:  # a logged line without a response has nothing to compare with
            bits |= _BIT["comparable"]
        declared = max_output_tokens(record.request)
        cap = math.nan if declared is None else float(declared)
        labels = tuple(str((record.metadata or {}).get(key)) for key in self._keys)
        if answer is None:
            return (record.id, bits, math.nan, math.nan, math.nan, math.nan, math.nan, cap, *labels)
        bits |= _BIT["ok"]
        side = Side(ok=True, text=answer.text, tool_calls=answer.tool_calls, refusal=answer.refusal,
                    finish_reason=answer.finish_reason)  # fmt: skip
        for comparator in self._comparators:
            bits |= _flags(comparator(record.request, side, side, self.settings.compare))
        prompt, completion = self._usage(record, answer)
        cost = self.prices.cost(self._model(record, answer), int(prompt), int(completion))
        return (record.id, bits, _number(answer.latency_ms), _number(answer.ttft_ms), prompt, completion,
                _number(cost), cap, *labels)  # fmt: skip

    def scanned(self, selected: set[str]) -> None:
        """The pass is over and the sample picked."""
        self.selected = selected
        if self.on_scanned is not None:
            self.on_scanned(self)

    def _model(self, record: LogRecord, answer: Any) -> str:
        if self.fresh:
            assert self.scenario.production is not None
            return self.scenario.production.model
        return str(record.request.get("model") or answer.model or "")

    def _usage(self, record: LogRecord, answer: Any) -> tuple[float, float]:
        """The logged usage, else the estimate the run stores for the logged arm."""
        from replay.tokens import count_text_tokens, estimate_prompt_tokens

        prompt, completion = answer.usage.prompt_tokens, answer.usage.completion_tokens
        model = str(record.request.get("model") or answer.model or "")
        if prompt is None:
            prompt = estimate_prompt_tokens(record.request, model)
        if completion is None:
            text = (answer.text or "") + "".join(call.name + call.arguments for call in answer.tool_calls)
            completion = count_text_tokens(text, model)
        return float(prompt), float(completion)

    def baseline(self) -> "LoggedBaseline":
        """What was measured, as columns, with the sample as a mask (or, when only a part of
        the log was measured, its size)."""
        assert self.selected is not None, "scanned() comes first"
        selected = self.selected
        if self.keep is None:
            columns = self._columns
        else:
            columns = list(zip(*self.rows)) if self.rows else [()] * self._width
        measured = len(columns[0])
        flags = np.frombuffer(bytes(columns[1]), dtype=np.uint8) if measured else np.zeros(0, dtype=np.uint8)
        numbers = {name: np.array(columns[2 + i], dtype=float) for i, name in enumerate(NUMBERS)}
        labels = {key: np.array(columns[2 + len(NUMBERS) + i], dtype=object) for i, key in enumerate(self._keys)}
        exact = self.keep is None or self.seen <= self.keep
        mask = np.fromiter((record_id in selected for record_id in columns[0]), dtype=bool, count=measured)
        return LoggedBaseline({name: bool_of(flags, name) for name in FLAGS}, numbers, mask, labels,
                              records=self.seen, sample_size=len(selected), exact=exact)  # fmt: skip


RESERVOIR_SEED = 20261201


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def bool_of(flags: np.ndarray, name: str) -> np.ndarray:
    out: np.ndarray = (flags & _BIT[name]) != 0
    return out


def _flags(measures: dict[str, Any]) -> int:
    bits = 0
    for flag, key in (("json_required", "json_required"), ("json_valid", "b_json_valid"),
                      ("schema_required", "schema_required"), ("schema_valid", "b_schema_valid"),
                      ("refused", "b_refused"), ("policy_pass", "b_policy_pass")):  # fmt: skip
        if measures.get(key) is True:
            bits |= _BIT[flag]
    return bits


def _segment_keys(settings: DecisionSettings) -> list[str]:
    keys = []
    for gate in settings.gates:
        if gate.segment:
            keys.append(settings.segments.resolve(gate.segment)[0])
    return keys


@dataclass(frozen=True)
class LoggedBaseline:
    """Per measured record: flags (``comparable``, ``ok``, ``json_valid``...), numbers
    (:data:`NUMBERS`, NaN where unknown), the segment labels the gates name, and
    ``selected``, which of them the sample holds."""

    flags: dict[str, np.ndarray]
    numbers: dict[str, np.ndarray]
    selected: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    records: int = 0
    """Records in the log (all of them, measured or not)."""
    sample_size: int = 0
    exact: bool = True
    """Every record was measured: the sample's counts are counted, not estimated."""

    @property
    def measured(self) -> int:
        return int(self.selected.size)

    def in_sample(self, mask: np.ndarray) -> float:
        """How many sampled records ``mask`` (over the measured ones) stands for."""
        if self.exact:
            return float((mask & self.selected).sum())
        return float(mask.sum()) / max(self.measured, 1) * self.sample_size

    def sample_total(self, values: np.ndarray) -> float:
        """The sum of ``values`` over the sampled records, an unknown value (a logged error
        has no usage) counting as the mean of the known ones."""
        known = values[~np.isnan(values)]
        values = np.where(np.isnan(values), float(known.mean()) if known.size else 0.0, values)
        if self.exact:
            return float(values[self.selected].sum())
        return float(values.mean()) * self.sample_size if values.size else 0.0

    def sample_mean(self, values: np.ndarray) -> float | None:
        """The mean of the known ``values`` over the sampled records."""
        chosen = values[self.selected] if self.exact else values
        chosen = chosen[~np.isnan(chosen)]
        return float(chosen.mean()) if chosen.size else None


# --- the power of one gate ------------------------------------------------------------------


Moments = Callable[[int, float, bool], "tuple[float, float] | None"]


@dataclass(frozen=True)
class Bound:
    """How the interval bound that decides a gate behaves at n pairs.

    ``moments(n, one-sided tail, upper)`` gives the expected value and the spread of the
    tested figure's upper (or lower) bound; None where no such bound exists yet.
    ``log_percent``: the figure is a ratio in percent whose spread is given on the log
    scale (a ratio's estimate is skewed; its logarithm is nearly normal)."""

    moments: Moments
    log_percent: bool = False
    unfloored: Callable[[int], float] | None = None
    """The chance that a floor the gate measures on the sample itself (a mean's skewness
    rule) lets it decide at n pairs; None where there is no such floor."""


def chance(bound: Bound, threshold: float, upper: bool, n: int, tail: float, passing: bool) -> float:
    """The chance that the gate's interval at ``tail`` lies wholly on the good side
    (``passing``) or wholly on the bad side of its threshold, at n pairs, by the normal
    approximation of the bound that decides it."""
    side = upper if passing else not upper
    moments = bound.moments(n, tail, side)
    if moments is None:
        return 0.0
    mean, spread = moments
    if bound.log_percent:
        if threshold <= -100:
            return 0.0 if side else 1.0
        mean, threshold = math.log1p(max(mean, -100 + 1e-12) / 100), math.log1p(threshold / 100)
    if not math.isfinite(mean):
        return 0.0
    gap = (threshold - mean) if side else (mean - threshold)  # how far inside the deciding side
    decides = 1.0 if bound.unfloored is None else bound.unfloored(n)
    if spread <= 0:
        return decides if gap >= 0 else 0.0
    return decides * _Z.cdf(gap / spread)


def pairs_needed(bound: Bound, threshold: float, upper: bool, floor: int, power: float = POWER) -> int | None:
    """The fewest pairs (at least ``floor``) at which a PASS has ``power``; None beyond
    :data:`MAX_PLANNED` (the expected figure is on or beyond the threshold)."""

    def enough(n: int) -> bool:
        return chance(bound, threshold, upper, n, PASS_ALPHA, passing=True) >= power

    low = max(1, floor)
    if enough(low):
        return low
    high = low
    while not enough(high):
        if high >= MAX_PLANNED:
            return None
        low, high = high, min(MAX_PLANNED, high * 2)
    while high - low > 1:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid
    return high


def paired_rate_bound(p11: float, p10: float, p01: float, p00: float, ratio: bool = False) -> Bound:
    """The bound of Newcombe's difference (or, ``ratio``, Tang's ratio in percent) of a
    paired table with these cell probabilities; the first arm is the candidate."""
    pc, pb = p11 + p10, p11 + p01
    psi = p10 + p01

    def bound(n: int, tail: float, upper: bool) -> tuple[float, float] | None:
        cells = (n * p11, n * p10, n * p01, n * p00)
        if ratio:
            if pb <= 0:
                return None
            estimate = paired_ratio(*cells, confidence=1 - 2 * tail)  # type: ignore[arg-type]
            edge = estimate.high if upper else estimate.low
            return (float(edge) - 1) * 100, math.sqrt(psi / n) / pb  # type: ignore[arg-type]  # sd of log(ratio)
        estimate = newcombe_paired(*cells, confidence=1 - 2 * tail)  # type: ignore[arg-type]
        edge = estimate.high if upper else estimate.low
        return float(edge), math.sqrt(max(psi - (pc - pb) ** 2, 0.0) / n)  # type: ignore[arg-type]

    return Bound(bound, log_percent=ratio)


def independent_table(p: float, correlation: float = 0.0) -> tuple[float, float, float, float]:
    """Cells (both, candidate only, baseline only, neither) of two arms with the same rate p
    whose events have the given correlation (phi): 0 for independent failures."""
    both = p * p + correlation * p * (1 - p)
    return both, p - both, p - both, 1 - 2 * p + both


def one_rate_bound(p: float) -> Bound:
    def bound(n: int, tail: float, upper: bool) -> tuple[float, float]:
        estimate = wilson(n * p, n, confidence=1 - 2 * tail)  # type: ignore[arg-type]
        edge = estimate.high if upper else estimate.low
        return float(edge), math.sqrt(p * (1 - p) / n)  # type: ignore[arg-type]

    return Bound(bound)


FLOOR_DRAWS = 200
"""Subsamples drawn to measure how often a mean's skewness rule holds a gate back."""
FLOOR_DRAWN_UP_TO = 10_000
"""Beyond this many pairs the sample's skewness is taken as the modelled one."""
FLOOR_SEED = 20261201


def mean_bound(values: np.ndarray, scale: float = 1.0, divisor: float = 1.0, offset: float = 0.0) -> Bound:
    """The bound of the mean of ``values`` (a modelled per-request difference, residual or
    value), ``(offset + mean +- t(1 - tail, n - 1) s / sqrt(n)) / divisor * scale``.

    The gate only decides where the *sample's* skewness rule holds, ``max(20, 355 g^2) <= n``;
    how often it does at n is measured on subsamples of ``values`` (heavy tails make the
    sample's skewness vary a lot, and hold a gate back more often than the modelled skewness
    says)."""
    x = np.asarray(values, dtype=float)
    mean, spread = float(x.mean()) + offset, float(x.std())
    modelled = skewness_min_n(x)
    held: dict[int, float] = {}

    def bound(n: int, tail: float, upper: bool) -> tuple[float, float] | None:
        if n < 2:
            return None
        se = spread / math.sqrt(n)
        half = t_quantile(1 - tail, n - 1) * se
        return scale * (mean + half if upper else mean - half) / divisor, scale * se / divisor

    def unfloored(n: int) -> float:
        if n < MEAN_MIN_N:
            return 0.0
        if n > FLOOR_DRAWN_UP_TO or x.size < 2:
            return 1.0 if modelled <= n else 0.0
        if n not in held:
            rng = np.random.default_rng(FLOOR_SEED)  # the same draws at every n: a smooth curve
            held[n] = float(np.mean(_skewness_floors(x[rng.integers(0, x.size, size=(FLOOR_DRAWS, n))]) <= n))
        return held[n]

    return Bound(bound, unfloored=unfloored)


def _skewness_floors(rows: np.ndarray) -> np.ndarray:
    """:func:`replay.stats.skewness_min_n` of each row, at once."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    spread = np.mean(centred**2, axis=1)
    size = np.mean(np.abs(rows), axis=1)
    flat = spread <= (1e-9 * size) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(flat, 0.0, np.mean(centred**3, axis=1) / np.where(flat, 1.0, spread) ** 1.5)
    floors: np.ndarray = np.maximum(MEAN_MIN_N, np.ceil(SKEWNESS_FACTOR * skew * skew))
    return floors


class Quantiles:
    """The logged quantile function of one measure (latency, TTFT), from its sorted values."""

    def __init__(self, values: np.ndarray) -> None:
        self.sorted = np.sort(values[~np.isnan(values)])

    def at(self, level: float) -> float:
        level = min(1.0, max(0.0, level))
        return float(np.quantile(self.sorted, level))

    def order_stat(self, k: int, n: int) -> tuple[float, float]:
        """Expected value and spread of the k-th smallest of n draws."""
        p = k / (n + 1)
        s = math.sqrt(p * (1 - p) / (n + 2))
        return self.at(p), (self.at(p + s) - self.at(p - s)) / 2


def _ranks(n: int, q: float, tail: float) -> tuple[int | None, int | None]:
    """:func:`replay.stats.order_ranks`, by the normal approximation of the binomial
    beyond the sizes where computing it exactly costs more than it tells."""
    if n <= 200_000:
        return order_ranks(n, q, tail)
    z = _Z.inv_cdf(1 - tail)
    sd = math.sqrt(n * q * (1 - q))
    return max(1, int(n * q - z * sd)), min(n, int(math.ceil(n * q + z * sd)) + 1)


def percentile_bound(q: float, candidate: Quantiles, baseline: Quantiles | None, percent: bool = False) -> Bound:
    """The bound of the q-quantile of the candidate (``baseline`` None), or of the
    difference (``percent``: the ratio, in percent) of the two arms' q-quantiles."""

    def bound(n: int, tail: float, upper: bool) -> tuple[float, float] | None:
        if baseline is None:
            low, high = _ranks(n, q, tail)
            rank = high if upper else low
            return None if rank is None else candidate.order_stat(rank, n)
        low, high = _ranks(n, q, tail / 2)  # Bonferroni: each arm's bound at half the tail
        c_rank, b_rank = (high, low) if upper else (low, high)
        if c_rank is None or b_rank is None:
            return None
        c_mean, c_sd = candidate.order_stat(c_rank, n)
        b_mean, b_sd = baseline.order_stat(b_rank, n)
        if not percent:
            return c_mean - b_mean, math.hypot(c_sd, b_sd)
        if b_mean <= 0:
            return None
        ratio = c_mean / b_mean
        return (ratio - 1) * 100, math.hypot(c_sd / max(c_mean, 1e-12), b_sd / b_mean)  # on the log scale

    return Bound(bound, log_percent=percent)


# --- the plan of each gate ----------------------------------------------------------------------


@dataclass(frozen=True)
class GatePlan:
    """What one gate needs, and what it will most likely say at the configured sample."""

    gate: Gate
    label: str
    """The gate as the plan's lines name it: ``error_rate +0.5 pt``."""
    baseline: float | None
    """The baseline's value of the metric over the whole log (a rate, a percentile, a mean)."""
    baseline_n: int
    expected: float | None
    """The figure the gate tests, for a candidate equal to the baseline (0 for most deltas)."""
    floor: int
    """The fewest pairs the gate decides on (``min_n``, the metric's, a mean's skewness rule)."""
    needed: int | None
    """Pairs for an 80% chance to PASS; None when a candidate equal to the baseline never passes."""
    sample: int
    """The pairs the configured sample is expected to give this gate."""
    pass_chance: float | None
    fail_chance: float | None
    expect: str
    """PASS, FAIL, INCONCLUSIVE, SKIPPED, or UNKNOWN when the log cannot tell."""
    fail_alpha: float
    model: str
    note: str = ""
    pass_alpha: float = PASS_ALPHA

    @property
    def settled(self) -> bool:
        """The sample is expected to settle the gate for a candidate equal to the baseline."""
        return self.expect in (PASS, SKIPPED, UNKNOWN)

    def line(self) -> str:
        """One line: ``error_rate +0.5 pt: needs about 770 pairs; the sample gives 160, so expect INCONCLUSIVE``."""
        if self.expect == UNKNOWN:
            return f"{self.label}: {self.note}"
        if self.expect == SKIPPED:
            return f"{self.label}: {self.note}, so expect SKIPPED"
        if self.needed is None:
            needs = self.note or "a candidate equal to the baseline cannot pass it"
        else:
            needs = f"needs about {self.needed:,} pairs" + (f" ({self.note})" if self.note else "")
        return f"{self.label}: {needs}; the sample gives {self.sample:,}, so expect {self.expect}"


@dataclass(frozen=True)
class _Model:
    """How one gate's tested figure behaves for a candidate equal to the baseline."""

    bound: Bound | None
    baseline: float | None
    baseline_n: int
    expected: float | None
    population: np.ndarray
    """The records (over the whole log) the gate's metric counts on the baseline side."""
    candidate_ok: float = 1.0
    """The share of those the candidate is expected to answer too (both must, for most metrics)."""
    floor: int = 0
    model: str = ""
    note: str = ""
    no_data: bool = False
    """The metric will have no pairs at all (nothing applicable, or no price): SKIPPED or INCONCLUSIVE."""


def plan_gates(baseline: LoggedBaseline, settings: DecisionSettings, scenario: Scenario,
               sample_share: float = 1.0) -> tuple[GatePlan, ...]:  # fmt: skip
    """Each gate's plan. ``sample_share``: the part of the sample the run is expected to
    send (less than 1 when the budget stops it first)."""
    drafts = [_draft(gate, baseline, settings, scenario, sample_share) for gate in settings.gates]
    tests = expected_tests(drafts, settings)
    fail_alpha = round(FAMILY_ALPHA / max(tests, 1), 12)
    return tuple(_plan_gate(draft, fail_alpha) for draft in drafts)


@dataclass(frozen=True)
class _Draft:
    gate: Gate
    model: _Model
    floor: int
    sample: int

    @property
    def tested(self) -> bool:
        """Expected to be decided on its interval: one of the tests sharing Holm's level."""
        return not self.model.no_data and self.sample > 0 and self.sample >= self.floor


def _draft(gate: Gate, baseline: LoggedBaseline, settings: DecisionSettings, scenario: Scenario,
           share: float) -> _Draft:  # fmt: skip
    model = _model_of(gate, baseline, scenario, _segment_mask(gate, baseline, settings))
    sample = int(round(baseline.in_sample(model.population) * model.candidate_ok * share))
    return _Draft(gate, model, max(required_n(gate), model.floor), sample)


def expected_tests(drafts: list[_Draft], settings: DecisionSettings) -> int:
    """The run's tests (:func:`replay.gates.holm_fail`): each gate decided on its interval,
    and, for a gate without its own segment, its part in each critical segment."""
    critical = len(settings.segments.critical)
    return sum(1 + (0 if draft.gate.segment else critical) for draft in drafts if draft.tested)


def _plan_gate(draft: _Draft, fail_alpha: float) -> GatePlan:
    gate, model, floor, sample = draft.gate, draft.model, draft.floor, draft.sample
    common = {"gate": gate, "label": gate_label(gate), "baseline": model.baseline, "baseline_n": model.baseline_n,
              "expected": model.expected, "floor": floor, "sample": sample, "fail_alpha": fail_alpha,
              "model": model.model}  # fmt: skip
    if model.bound is None:
        expect = (SKIPPED if gate.preset else INCONCLUSIVE) if model.no_data else UNKNOWN
        return GatePlan(needed=None, pass_chance=None, fail_chance=None, expect=expect, note=model.note,
                        **common)  # type: ignore[arg-type]  # fmt: skip
    needed = pairs_needed(model.bound, gate.threshold, gate.upper, floor)
    if sample == 0:
        expect = SKIPPED if gate.preset else INCONCLUSIVE
        note = model.note or "no applicable requests in the sample"
        return GatePlan(needed=needed, pass_chance=0.0, fail_chance=0.0, expect=expect, note=note,
                        **common)  # type: ignore[arg-type]  # fmt: skip
    passing = chance(model.bound, gate.threshold, gate.upper, sample, PASS_ALPHA, True) if draft.tested else 0.0
    failing = chance(model.bound, gate.threshold, gate.upper, sample, fail_alpha, False) if draft.tested else 0.0
    expect = PASS if passing >= 0.5 else FAIL if failing >= 0.5 else INCONCLUSIVE
    note = model.note
    if needed is None and not note:
        note = f"a candidate equal to the baseline cannot pass it (expected {_figure(gate, model.expected)})"
    return GatePlan(needed=needed, pass_chance=passing, fail_chance=failing, expect=expect, note=note,
                    **common)  # type: ignore[arg-type]  # fmt: skip


def _figure(gate: Gate, value: float | None) -> str:
    if value is None:
        return "unknown"
    unit = METRICS[gate.metric].unit
    if gate.bound.endswith("_pct"):
        return f"{value:+.3g}%"
    if unit == "rate":
        return f"{value * 100:+.3g} pt" if gate.on_delta else f"{value * 100:.3g}%"
    return f"{value:+.4g}" if gate.on_delta else f"{value:.4g}"


def gate_label(gate: Gate) -> str:
    """``error_rate +0.5 pt``, ``latency_p99_ms +200 ms``, ``cost_per_request_usd +20%``, ``format_compliance >= 95%``."""
    unit = METRICS[gate.metric].unit if gate.metric in METRICS else ""
    t = gate.threshold
    if gate.bound.endswith("_pct"):
        text = f"{t:+g}%"
    elif gate.bound.endswith("_over_noise"):
        text = f"{'<=' if gate.upper else '>='} {t:+g} over the noise floor"
    elif gate.on_delta:
        text = f"{t * 100:+.3g} pt" if unit == "rate" else f"{t:+g}" + (f" {unit}" if unit in ("ms", "tokens") else "")
    else:
        sign = "<=" if gate.upper else ">="
        text = f"{sign} {t * 100:.4g}%" if unit == "rate" else f"{sign} {t:g}" + (f" {unit}" if unit in ("ms", "tokens") else "")
    segment = f" [{gate.segment}]" if gate.segment else ""
    return f"{gate.metric} {text}{segment}"


def _segment_mask(gate: Gate, baseline: LoggedBaseline, settings: DecisionSettings) -> np.ndarray:
    if not gate.segment:
        return np.ones(baseline.measured, dtype=bool)
    key, value = settings.segments.resolve(gate.segment)
    labels: np.ndarray = baseline.labels[key] == value
    return labels


def _model_of(gate: Gate, baseline: LoggedBaseline, scenario: Scenario, segment: np.ndarray) -> _Model:
    metric = gate.metric
    flags = baseline.flags
    comparable = flags["comparable"] & segment
    errors = comparable & ~flags["ok"]
    error_rate = float(errors.sum()) / max(int(comparable.sum()), 1)
    candidate_ok = 1.0 - error_rate
    if metric in RATE_KEYS:
        if metric == "error_rate":
            population, events, candidate_ok = comparable, errors, 1.0
        else:
            population = comparable & flags["ok"]
            if metric in RATE_POPULATION:
                population = population & flags[RATE_POPULATION[metric]]
            events = population & flags[RATE_KEYS[metric]]
        return _rate_model(gate, population, events, candidate_ok)
    group = METRICS[metric].group if metric in METRICS else ""
    if group in PERCENTILE_KEYS:
        return _percentile_model(gate, baseline, comparable & flags["ok"], PERCENTILE_KEYS[group], candidate_ok)
    if metric in MEAN_METRICS:
        return _mean_model(gate, baseline, scenario, comparable & flags["ok"], candidate_ok)
    return _Model(None, None, 0, None, np.zeros(baseline.measured, dtype=bool),
                  note="measures the pair itself: the log holds no candidate answer to estimate it from")  # fmt: skip


INDEPENDENT = "independent failures (psi = 2p(1-p), the worst realistic case)"


def _rate_model(gate: Gate, population: np.ndarray, events: np.ndarray, candidate_ok: float) -> _Model:
    n = int(population.sum())
    if n == 0:
        return _Model(None, None, 0, None, population, candidate_ok, note="no applicable requests in the log",
                      no_data=True)
    p = float(events.sum()) / n
    if gate.bound in ("max_delta", "min_delta"):
        bound, expected = paired_rate_bound(*independent_table(p)), 0.0
    elif gate.bound.endswith("_pct"):
        if p == 0:
            return _Model(None, p, n, None, population, candidate_ok,
                          note="the baseline has no event in the log: a ratio to zero has no value")  # fmt: skip
        bound, expected = paired_rate_bound(*independent_table(p), ratio=True), 0.0
    else:
        bound, expected = one_rate_bound(p), p
    return _Model(bound, p, n, expected, population, candidate_ok, model=INDEPENDENT)


def _percentile_model(gate: Gate, baseline: LoggedBaseline, population: np.ndarray, key: str,
                      candidate_ok: float) -> _Model:  # fmt: skip
    values = baseline.numbers[key]
    population = population & ~np.isnan(values)
    n = int(population.sum())
    if n == 0:
        return _Model(None, None, 0, None, population, candidate_ok, note=f"no logged {key} in the log", no_data=True)
    q = float(gate.metric.split("_p")[1].split("_")[0]) / 100
    logged = Quantiles(values[population])
    value = logged.at(q)
    model = "the candidate's distribution is the logged one, independent of the baseline's"
    beyond = int(n * (1 - q))
    note = "" if beyond >= TAIL_VALUES else (
        f"{'only ' + str(beyond) if beyond else 'no'} logged value{'s' if beyond != 1 else ''} above the"
        f" p{q * 100:g}: its tail is a guess")  # fmt: skip
    if gate.on_delta:
        bound = percentile_bound(q, logged, logged, percent=gate.bound.endswith("_pct"))
        return _Model(bound, value, n, 0.0, population, candidate_ok, model=model, note=note)
    return _Model(percentile_bound(q, logged, None), value, n, value, population, candidate_ok, model=model,
                  note=note)  # fmt: skip


def _mean_model(gate: Gate, baseline: LoggedBaseline, scenario: Scenario, population: np.ndarray,
                candidate_ok: float) -> _Model:  # fmt: skip
    """Candidate value per request c = a P_i + beta C_j (P the prompt tokens, C_j the completion
    tokens of an independent request), baseline b_i as logged."""
    numbers = baseline.numbers
    prompt, completion = numbers["tokens_in"], numbers["tokens_out"]
    if gate.metric == "tokens_in":
        a, beta, logged = 1.0, 0.0, prompt
    elif gate.metric == "tokens_out":
        a, beta, logged = 0.0, 1.0, completion
    else:
        price = PriceTable(scenario.prices).lookup(scenario.candidate.model)
        if price is None:
            note = f"no price for the candidate's model '{scenario.candidate.model}': its costs are unknown"
            return _Model(None, None, 0, None, np.zeros_like(population), note=note, no_data=True)
        a, beta, logged = price.input / 1e6, price.output / 1e6, numbers["cost_usd"]
    population = population & ~np.isnan(logged) & ~np.isnan(prompt) & ~np.isnan(completion)
    n = int(population.sum())
    if n == 0:
        return _Model(None, None, 0, None, population, candidate_ok, note=f"no logged {gate.metric} in the log",
                      no_data=True)
    p, c, b = prompt[population], completion[population], logged[population]
    model = ("same prompts, completion tokens an independent draw from the logged ones"
             + (", priced at the candidate's price" if gate.metric == "cost_per_request_usd" else ""))  # fmt: skip
    drawn = beta * np.random.default_rng(FLOOR_SEED).permutation(c)  # another request's answer
    b_mean = float(b.mean())
    if gate.bound in ("max_delta", "min_delta"):
        delta = a * p - b + drawn
        return _Model(mean_bound(delta), b_mean, n, float(delta.mean()), population, candidate_ok,
                      skewness_min_n(delta), model)  # fmt: skip
    if gate.bound.endswith("_pct"):
        if b_mean <= 0:
            return _Model(None, b_mean, n, None, population, candidate_ok, note="the baseline's mean is 0")
        ratio = float((a * p + drawn).mean()) / b_mean
        residuals = a * p - ratio * b + drawn  # the ratio's error is their mean (Fieller)
        bound = mean_bound(residuals, scale=100, divisor=b_mean, offset=(ratio - 1) * b_mean)
        return _Model(bound, b_mean, n, (ratio - 1) * 100, population, candidate_ok,
                      skewness_min_n(residuals, float(np.mean(np.abs(a * p + drawn)))), model)  # fmt: skip
    value = a * p + drawn
    return _Model(mean_bound(value), b_mean, n, float(value.mean()), population, candidate_ok,
                  skewness_min_n(value), model)  # fmt: skip


# --- the arms that send: requests, tokens, cost, duration --------------------------------------


@dataclass(frozen=True)
class SenderPlan:
    """One endpoint that a run sends requests to: the candidate, production with ``baseline:
    fresh``, the noise floor's second production answers, the judge, the embeddings."""

    name: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    """None when the model has no price."""
    duration_s: float | None
    """How long its endpoint is busy (with every sender sharing it); None when no logged
    latency tells how long a request takes and no rate limit caps it."""
    limited_by: str
    """What sets the pace: ``concurrency``, ``rpm`` or ``tpm``."""


@dataclass(frozen=True)
class Sender:
    """An arm a run sends to. Senders of one ``endpoint`` share its client and limits (the
    noise floor asks production again through production's own)."""

    name: str
    arm: Arm
    endpoint: str
    requests: int | None = None
    """At most this many of the sampled requests (the noise floor's sub-sample); None: all."""


def senders(scenario: Scenario) -> list[Sender]:
    """The arms a run sends to, in the runner's order (the judge and the embeddings, which
    send other requests than the logged ones, are planned by :func:`plan_judge` and
    :func:`plan_embeddings`)."""
    out = [Sender("candidate", scenario.candidate, "candidate")]
    if scenario.production is not None:
        if scenario.baseline == "fresh":
            out.append(Sender("production", scenario.production, "production"))
        if scenario.noise_floor:
            out.append(Sender("noise", scenario.production, "production", scenario.noise_floor))
    return out


def plan_senders(scenario: Scenario, baseline: LoggedBaseline, prices: PriceTable) -> tuple[SenderPlan, ...]:
    """Each sender's requests, tokens and cost; the time its endpoint is busy with all it sends."""
    chosen = senders(scenario)
    counts = [baseline.sample_size if sender.requests is None else min(sender.requests, baseline.sample_size)
              for sender in chosen]  # fmt: skip
    busy: dict[str, int] = {}
    for sender, count in zip(chosen, counts):
        busy[sender.endpoint] = busy.get(sender.endpoint, 0) + count
    arms = tuple(plan_sender(sender, count, busy[sender.endpoint], baseline, prices)
                 for sender, count in zip(chosen, counts))  # fmt: skip
    pairs = baseline.sample_size + min(scenario.noise_floor or 0, baseline.sample_size)
    extra = []
    if scenario.judge is not None:
        extra.append(plan_judge(scenario, scenario.judge, pairs, baseline, prices))
    if scenario.embeddings is not None:
        extra.append(plan_embeddings(scenario.embeddings, pairs, baseline, prices))
    return arms + tuple(extra)


JUDGE_PROMPT_TOKENS = 250
"""The judge's instructions and rubric around the request and the two answers (the default
prompt is about 200 tokens)."""
JUDGE_ANSWER_TOKENS = 80
"""A verdict with its one-sentence reason, as JSON."""


def plan_judge(scenario: Scenario, judge: Judge, pairs: int, baseline: LoggedBaseline, prices: PriceTable) -> SenderPlan:
    """At most every pair (the candidate's and the noise floor's), each once per order; a judge
    request holds the logged request and two answers of about the logged answer's length.
    Pairs whose answers are identical cost nothing, so this is the most the judge can cost."""
    judged = min(pairs, judge.sample) if judge.sample is not None else pairs
    requests = judged * (2 if judge.both_orders else 1)
    numbers = baseline.numbers
    per_pair_prompt = (baseline.sample_total(numbers["tokens_in"]) + 2 * baseline.sample_total(numbers["tokens_out"])) \
        / max(baseline.sample_size, 1) + JUDGE_PROMPT_TOKENS  # fmt: skip
    prompt, completion = per_pair_prompt * requests, JUDGE_ANSWER_TOKENS * requests
    latency = baseline.sample_mean(numbers["latency_ms"])
    return _priced("judge", judge.arm, requests, prompt, completion, prices, latency, per_pair_prompt + JUDGE_ANSWER_TOKENS)


def plan_embeddings(embeddings: Embeddings, pairs: int, baseline: LoggedBaseline, prices: PriceTable) -> SenderPlan:
    """Both answers of every pair, ``batch_size`` texts a call; texts already embedded (equal
    answers, earlier runs) are never sent again, so this is the most it can cost."""
    texts = 2 * pairs
    requests = -(-texts // embeddings.batch_size)
    tokens = 2 * baseline.sample_total(baseline.numbers["tokens_out"]) * pairs / max(baseline.sample_size, 1)
    per_request = tokens / max(requests, 1)
    return _priced("embeddings", embeddings.endpoint, requests, tokens, 0.0, prices, None, per_request)


def _priced(name: str, arm: Arm, requests: int, prompt: float, completion: float, prices: PriceTable,
            latency_ms: float | None, tokens_per_request: float) -> SenderPlan:  # fmt: skip
    """A sender's plan from its totals: cost at the model's price, duration at its limits
    (``latency_ms`` per request with ``concurrency`` in flight, when known)."""
    price = prices.lookup(arm.model)
    cost = None if price is None else (prompt * price.input + completion * price.output) / 1e6
    limits = arm.limits
    paces: dict[str, float] = {}
    if latency_ms is not None:
        paces["concurrency"] = limits.concurrency / max(latency_ms / 1000, 1e-6)
    if limits.rpm:
        paces["rpm"] = limits.rpm / 60
    if limits.tpm:
        paces["tpm"] = limits.tpm / 60 / max(tokens_per_request, 1e-9)
    tokens = (int(round(prompt)), int(round(completion)))
    if not paces or not requests:
        return SenderPlan(name, arm.model, requests, *tokens, cost, None if requests else 0.0, "")
    limit = min(paces, key=lambda key: paces[key])
    return SenderPlan(name, arm.model, requests, *tokens, cost, requests / paces[limit], limit)


def plan_sender(sender: Sender, requests: int, endpoint_requests: int, baseline: LoggedBaseline,
                prices: PriceTable) -> SenderPlan:  # fmt: skip
    """At the arm's limits: each request takes its logged latency (``concurrency`` in flight),
    at most ``rpm`` a minute, at most ``tpm`` tokens a minute counted as the limiter counts
    them (prompt plus the answer's declared cap, else the logged answer, else 256). A
    sub-sample's tokens are its share of the sample's."""
    from replay.providers.openai_policy import max_output_tokens

    arm = sender.arm
    numbers = baseline.numbers
    prompt, completion = numbers["tokens_in"], numbers["tokens_out"]
    share = requests / max(baseline.sample_size, 1)
    prompt_total, completion_total = baseline.sample_total(prompt) * share, baseline.sample_total(completion) * share
    price = prices.lookup(arm.model)
    cost = None if price is None else (prompt_total * price.input + completion_total * price.output) / 1e6
    limits = arm.limits
    paces: dict[str, float] = {}
    latency = baseline.sample_mean(numbers["latency_ms"])
    if latency is not None:
        paces["concurrency"] = limits.concurrency / max(latency / 1000, 1e-6)
    if limits.rpm:
        paces["rpm"] = limits.rpm / 60
    if limits.tpm:
        declared = max_output_tokens(arm.params)
        answered = np.where(np.nan_to_num(completion) > 0, completion, 256.0)
        output = np.where(np.isnan(numbers["max_output"]), answered, numbers["max_output"])
        if declared is not None:
            output = np.full(output.shape, float(declared))
        per_request = (baseline.sample_total(prompt) + baseline.sample_total(output)) / max(baseline.sample_size, 1)
        paces["tpm"] = limits.tpm / 60 / max(per_request, 1e-9)
    tokens = (int(round(prompt_total)), int(round(completion_total)))
    if not paces or not requests:
        return SenderPlan(sender.name, arm.model, requests, *tokens, cost, None if requests else 0.0, "")
    limit = min(paces, key=lambda key: paces[key])
    return SenderPlan(sender.name, arm.model, requests, *tokens, cost, endpoint_requests / paces[limit], limit)


# --- the whole plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    scenario: str
    records: int
    """Valid records in the log."""
    invalid: int
    sample: int
    """Requests the configured sample picks."""
    baseline_mode: str
    tests: int
    gates: tuple[GatePlan, ...]
    senders: tuple[SenderPlan, ...]
    budget_usd: float | None
    budget_requests: int | None
    """With a budget the sample would exceed: about how many requests it pays for."""

    @property
    def cost_usd(self) -> float | None:
        costs = [sender.cost_usd for sender in self.senders]
        return None if any(cost is None for cost in costs) else float(sum(costs))  # type: ignore[arg-type]

    @property
    def duration_s(self) -> float | None:
        """The arms send side by side: the slowest one's."""
        durations = [sender.duration_s for sender in self.senders]
        return None if any(d is None for d in durations) else max(durations, default=0.0)  # type: ignore[type-var]

    def warnings(self) -> list[str]:
        """One line per gate the sample is not expected to settle, and one for the budget."""
        lines = [gate.line() for gate in self.gates if not gate.settled]
        if self.budget_requests is not None and self.budget_usd is not None:
            lines.append(f"budget ${self.budget_usd:g} pays for about {self.budget_requests:,} of the "
                         f"{self.sample:,} sampled requests: the run stops there")  # fmt: skip
        return lines


def tally_for(scenario: Scenario, gates_override: Any = None, on_scanned: Callable[[LogTally], None] | None = None,
              keep: int | None = None) -> LogTally:  # fmt: skip
    settings = decision_from(scenario.decision, gates_override)
    settings = replace(settings, gates=decidable(settings.gates, lambda key: getattr(scenario, key, None) is not None))
    return LogTally(scenario, settings, on_scanned, keep)


def build_plan(scenario: Scenario, tally: LogTally, invalid: int = 0) -> Plan:
    """The plan from a tally fed by the run's first pass."""
    baseline = tally.baseline()
    prices = PriceTable(scenario.prices)
    sender_plans = plan_senders(scenario, baseline, prices)
    sample = baseline.sample_size
    covered = _budget_covers(scenario.budget_usd, sender_plans, sample)
    share = 1.0 if covered is None or not sample else covered / sample
    gates = plan_gates(baseline, tally.settings, scenario, share)
    tests = round(FAMILY_ALPHA / gates[0].fail_alpha) if gates else 0
    return Plan(scenario.name, baseline.records, invalid, sample, scenario.baseline, tests, gates, sender_plans,
                scenario.budget_usd, covered)  # fmt: skip


def _budget_covers(budget: float | None, plans: Iterable[SenderPlan], sample: int) -> int | None:
    costs = [plan.cost_usd for plan in plans if plan.cost_usd is not None]
    total = sum(costs)
    if budget is None or not sample or total <= budget:
        return None
    return int(budget / (total / sample))


def make_plan(scenario: Scenario, gates_override: Any = None, skip_invalid: bool = False) -> Plan:
    """Read the logs once (no request sent, nothing stored) and plan the run."""
    from replay.runner import scan

    tally = tally_for(scenario, gates_override)
    _, _, stats = scan(scenario, skip_invalid, tally)
    return build_plan(scenario, tally, stats.invalid)


# --- the plan as JSON ---------------------------------------------------------------------------


SCHEMA_VERSION = 1


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as plain data; field names are documented in the README and stable."""
    return {
        "schema_version": SCHEMA_VERSION,
        "scenario": plan.scenario,
        "records": plan.records,
        "invalid_records": plan.invalid,
        "sample": plan.sample,
        "baseline": plan.baseline_mode,
        "power": POWER,
        "tests": plan.tests,
        "gates": [_gate_json(gate) for gate in plan.gates],
        "senders": [_sender_json(sender) for sender in plan.senders],
        "cost_usd": plan.cost_usd,
        "duration_s": plan.duration_s,
        "budget_usd": plan.budget_usd,
        "budget_requests": plan.budget_requests,
        "warnings": plan.warnings(),
    }


def _gate_json(plan: GatePlan) -> dict[str, Any]:
    gate = plan.gate
    bound = next(key for key in BOUNDS if key == gate.bound)
    return {
        "metric": gate.metric,
        "bound": bound,
        "threshold": gate.threshold,
        "segment": gate.segment,
        "label": plan.label,
        "baseline": {"value": plan.baseline, "n": plan.baseline_n},
        "expected": plan.expected,
        "min_n": plan.floor,
        "needed": plan.needed,
        "sample_n": plan.sample,
        "pass_chance": plan.pass_chance,
        "fail_chance": plan.fail_chance,
        "expect": plan.expect,
        "pass_alpha": plan.pass_alpha,
        "fail_alpha": plan.fail_alpha,
        "model": plan.model,
        "note": plan.note,
    }


def _sender_json(plan: SenderPlan) -> dict[str, Any]:
    return {
        "arm": plan.name,
        "model": plan.model,
        "requests": plan.requests,
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "cost_usd": plan.cost_usd,
        "duration_s": plan.duration_s,
        "limited_by": plan.limited_by or None,
    }


__all__ = [
    "GatePlan", "LogTally", "LoggedBaseline", "Plan", "SenderPlan", "build_plan", "chance", "independent_table",
    "make_plan", "mean_bound", "one_rate_bound", "paired_rate_bound", "pairs_needed", "percentile_bound",
    "plan_gates", "plan_json", "plan_senders", "senders", "tally_for", "Quantiles", "Sender",
]  # fmt: skip
