"""Gates: non-inferiority tests declared before the run, decided on intervals.

A gate bounds the candidate-minus-baseline delta of a metric (``max_delta``,
``min_delta``, ``max_delta_pct``, ``min_delta_pct``) or the candidate's own value
(``min``, ``max``). It PASSES when the whole 95% interval lies on the good side of
its threshold, FAILS when the whole interval lies on the bad side, and is
INCONCLUSIVE otherwise, or when it has fewer pairs than its ``min_n`` or its metric's
own minimum.

Two kinds of error, two kinds of control. A false PASS needs every gate to pass
falsely (the run passes only if all do: an intersection-union test), so each gate at
a one-sided 2.5% keeps the run's false-PASS rate at 2.5%. A false FAIL needs only one
of the run's tests (every gate, in the whole run and in each critical segment) to fail
falsely, so FAIL is decided with Holm's step-down adjustment across all of them: the
run FAILs falsely in at most 2.5% of runs, whatever the number of gates and segments
and however they depend on each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from replay.metrics import METRICS, MetricValue, Pairs
from replay import stats
from replay.stats import CONFIDENCE, Estimate, more_needed

FAMILY_ALPHA = (1 - CONFIDENCE) / 2
"""The one-sided false-FAIL rate of a whole run, shared by its tests (Holm)."""

PASS, FAIL, INCONCLUSIVE, SKIPPED = "PASS", "FAIL", "INCONCLUSIVE", "SKIPPED"
BOUNDS = ("max_delta", "min_delta", "max_delta_pct", "min_delta_pct", "max", "min", "min_over_noise", "max_over_noise")
OVER_NOISE = ("min_over_noise", "max_over_noise")
"""Bounds on (candidate against baseline) minus (production against itself) of a pairwise metric."""
DEFAULT_PRESET: tuple[dict[str, Any], ...] = (
    {"metric": "error_rate", "max_delta": 0.005},
    {"metric": "latency_p99_ms", "max_delta": 200},
    {"metric": "format_compliance", "min_delta": -0.01},
    {"metric": "cost_per_request_usd", "max_delta_pct": 20},
    {"metric": "judge_win_rate", "min": 0.45},
)
"""The usual release gates. The judge's is a non-inferiority bound: a candidate as good as the
baseline has a true win rate of 0.5, and ``min: 0.5`` could never pass it (its interval always
straddles 0.5); 0.45 passes it once the interval's half-width is under 0.05 (about 385 pairs
without ties, fewer with). A run without a judge leaves that gate out (``replay.evaluate``)."""
PRESETS = ("default",)


@dataclass(frozen=True)
class Gate:
    metric: str
    bound: str
    threshold: float
    segment: str | None = None
    """``key=value`` of a metadata key, or a bare value of the run's ``segment_by`` key."""
    min_n: int | None = None
    preset: bool = False
    """From ``gates: default``: a gate with no applicable requests is skipped, not inconclusive."""

    @property
    def upper(self) -> bool:
        return self.bound.startswith("max")

    @property
    def on_delta(self) -> bool:
        return "delta" in self.bound

    @property
    def over_noise(self) -> bool:
        return self.bound in OVER_NOISE

    def describe(self) -> str:
        sign = "<=" if self.upper else ">="
        what = {"max_delta": "delta", "min_delta": "delta", "max_delta_pct": "delta %", "min_delta_pct": "delta %",
                "min_over_noise": "over noise", "max_over_noise": "over noise"}  # fmt: skip
        return f"{what.get(self.bound, 'value')} {sign} {self.threshold:g}"


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    status: str
    n: int
    estimate: Estimate
    """What the gate tested: the delta (or delta %) or the candidate's value."""
    metric: MetricValue | None
    note: str = ""
    more_needed: int | None = None
    segments: tuple["GateResult", ...] = field(default_factory=tuple)
    """Results of the same gate in the critical segments."""
    tested: bool = False
    """Decided on its interval (not skipped, not short of data): one of the run's tests."""
    fail_alpha: float | None = None
    """The one-sided level its FAIL was tested at, Holm-adjusted across the run's tests."""
    fail_estimate: Estimate | None = None
    """The interval at that level, where it differs from the 95% one and decided the status."""


def parse_gates(items: Any, fail: Callable[[str, str], Exception]) -> tuple[Gate, ...]:
    """Validate a scenario's ``gates:`` (a list, or ``default``) into gates."""
    if items is None:
        items = "default"
    if items == "default":
        return tuple(
            _parse_gate(item, f"gates[{i}]", fail, preset=True)
            for i, item in enumerate(DEFAULT_PRESET)
            if item["metric"] in METRICS
        )
    if isinstance(items, str):
        raise fail("gates", _unknown_preset(items))
    if not isinstance(items, list):
        raise fail("gates", "expected a list of gates or 'default'")
    gates: list[Gate] = []
    for i, item in enumerate(items):
        if item == "default":
            gates.extend(parse_gates("default", fail))
            continue
        if isinstance(item, str):
            raise fail(f"gates[{i}]", _unknown_preset(item))
        gates.append(_parse_gate(item, f"gates[{i}]", fail))
    return tuple(gates)


def decidable(gates: tuple[Gate, ...], configured: Callable[[str], bool]) -> tuple[Gate, ...]:
    """The gates without the preset's on a metric whose scenario key the run lacks (the judge's
    without a ``judge:``): the preset is the usual release gates of what the run measures."""
    return tuple(gate for gate in gates
                 if not (gate.preset and METRICS[gate.metric].needs and not configured(METRICS[gate.metric].needs)))  # fmt: skip


def _unknown_preset(name: str) -> str:
    import difflib

    if difflib.get_close_matches(name, PRESETS, n=1, cutoff=0.6):
        return f"unknown preset {name!r} (did you mean 'default'?)"
    return f"unknown preset {name!r}: the preset is 'default'; a gate is a mapping such as {{metric: error_rate, max_delta: 0.005}}"


def _parse_gate(item: Any, where: str, fail: Callable[[str, str], Exception], preset: bool = False) -> Gate:
    import difflib

    if not isinstance(item, dict):
        raise fail(where, "expected a mapping such as {metric: error_rate, max_delta: 0.005}")
    for key in item:
        if key not in ("metric", "segment", "min_n", *BOUNDS):
            hint = difflib.get_close_matches(str(key), ["metric", "segment", "min_n", *BOUNDS], n=1)
            raise fail(f"{where}.{key}", "unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
    metric = item.get("metric")
    if not isinstance(metric, str) or metric not in METRICS:
        hint = difflib.get_close_matches(str(metric), list(METRICS), n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else f"; known: {', '.join(METRICS)}"
        raise fail(f"{where}.metric", f"unknown metric {_short(metric)}{suggestion}")
    bounds = [key for key in BOUNDS if key in item]
    if len(bounds) != 1:
        raise fail(where, f"expected exactly one of {', '.join(BOUNDS)}")
    bound = bounds[0]
    threshold = item[bound]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not _finite(threshold):
        raise fail(f"{where}.{bound}", f"expected a finite number, got {_short(threshold)}")
    if "delta" in bound and not METRICS[metric].paired:
        raise fail(f"{where}.{bound}", f"{metric} has no baseline side: bound it with min or max")
    if bound in OVER_NOISE and METRICS[metric].paired:
        raise fail(f"{where}.{bound}", f"{metric} is measured on each arm: bound its delta (max_delta, min_delta)")
    min_n = item.get("min_n")
    if min_n is not None and (isinstance(min_n, bool) or not isinstance(min_n, int) or min_n < 1):
        raise fail(f"{where}.min_n", f"expected a positive integer, got {_short(min_n)}")
    segment = item.get("segment")
    if segment is not None and not isinstance(segment, str):
        raise fail(f"{where}.segment", f"expected a segment such as 'category=billing', got {_short(segment)}")
    return Gate(metric, bound, float(threshold), segment, min_n, preset)


def _finite(number: float) -> bool:
    try:
        return math.isfinite(float(number))
    except OverflowError:  # an integer beyond any float
        return False


def _short(value: Any) -> str:
    """A value from the user's file, shown in a message at a readable length."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 1000 else "a huge integer"
    return text if len(text) <= 60 else text[:57] + "..."


# --- deciding ---------------------------------------------------------------------------


def tested_estimate(gate: Gate, value: MetricValue) -> Estimate:
    if gate.bound in ("max_delta", "min_delta"):
        return value.delta or Estimate.empty(value.n)
    if gate.bound in ("max_delta_pct", "min_delta_pct"):
        return value.delta_pct or Estimate.empty(value.n)
    return value.candidate


def verdict_of(gate: Gate, estimate: Estimate) -> str:
    """PASS, FAIL or INCONCLUSIVE from where the interval lies relative to the threshold."""
    assert estimate.low is not None and estimate.high is not None
    if gate.upper:
        if estimate.high <= gate.threshold:
            return PASS
        return FAIL if estimate.low > gate.threshold else INCONCLUSIVE
    if estimate.low >= gate.threshold:
        return PASS
    return FAIL if estimate.high < gate.threshold else INCONCLUSIVE


def required_n(gate: Gate) -> int:
    """The fewest pairs a gate decides on: its own ``min_n`` or its metric's minimum,
    whichever is larger (a ``min_n`` raises the floor, it cannot lower it)."""
    return max(gate.min_n or 0, METRICS[gate.metric].min_n)


def evaluate_gate(gate: Gate, value: MetricValue, noise: MetricValue | None = None) -> GateResult:
    """``noise``: the metric on production's own pairs, for a bound over the noise floor."""
    estimate = tested_estimate(gate, value)
    n = value.n
    if gate.over_noise:
        if noise is None or noise.n == 0:
            why = "no noise floor measured (set noise_floor: {sample: N})" if noise is None else "no noise pairs here"
            return GateResult(gate, INCONCLUSIVE, n, Estimate.empty(n), value, why)
        estimate = stats.independent_difference(value.candidate, noise.candidate)
        n = min(n, noise.n)
    if n == 0 or not estimate.known:
        if gate.preset:
            return GateResult(gate, SKIPPED, n, estimate, value, "no applicable requests")
        return GateResult(gate, INCONCLUSIVE, n, estimate, value, "no data")
    floor = max(required_n(gate), estimate.min_n)
    if n < floor:
        return GateResult(gate, INCONCLUSIVE, n, estimate, value, _short_note(gate, estimate, n, floor),
                          more_needed=floor - n)  # fmt: skip
    status = verdict_of(gate, estimate)
    if status != INCONCLUSIVE:
        return GateResult(gate, status, n, estimate, value, tested=True)
    needed = more_needed(estimate, gate.threshold)
    note = f"interval straddles {gate.threshold:g}"
    if needed is not None:
        note += f"; about {needed:,} more requests would settle it"
    return GateResult(gate, INCONCLUSIVE, n, estimate, value, note, needed, tested=True)


def _short_note(gate: Gate, estimate: Estimate, n: int, floor: int) -> str:
    """Why n pairs are too few: the gate's own min_n, the metric's floor, or the data's skewness."""
    definition = METRICS[gate.metric]
    if gate.min_n is not None and gate.min_n >= max(definition.min_n, estimate.min_n):
        return f"n={n} is below min_n={gate.min_n}"
    if estimate.min_n > definition.min_n:
        return (f"n={n} is below the minimum of {floor:,} for data this skewed (a mean's interval is trusted"
                " from 355 x skewness^2 pairs)")  # fmt: skip
    return f"n={n} is below the minimum of {floor:,} ({definition.min_n_reason})"


def holm_fail(results: list[GateResult], alpha: float = FAMILY_ALPHA) -> list[GateResult]:
    """FAIL decided by Holm's step-down procedure over every test of the run.

    With r tests already failed, each remaining one FAILs when its interval at the
    one-sided level alpha / (m - r) lies wholly beyond the threshold; repeated until no
    new test fails. A single test is decided at alpha itself, the 95% interval. The
    intervals are nested in their level, so this is Holm's procedure on the tests'
    p-values without computing them. A test beyond its threshold at 95% that does not
    fail at its adjusted level is INCONCLUSIVE."""
    tested = [i for i, result in enumerate(results) if result.tested]
    m = len(tested)
    out = list(results)
    failed: set[int] = set()
    while True:
        level = alpha / (m - len(failed)) if m > len(failed) else alpha
        new = []
        for i in tested:
            result = results[i]
            if i in failed or result.status != FAIL:
                continue
            estimate = result.estimate.at(1 - 2 * level)
            if verdict_of(result.gate, estimate) == FAIL:
                new.append(i)
                out[i] = replace(result, fail_alpha=level, fail_estimate=estimate if m > 1 else None,
                                 note=_family_note(m, level, result.note))  # fmt: skip
        if not new:
            break
        failed.update(new)
    for i in tested:
        if i in failed:
            continue
        result = results[i]
        if result.status != FAIL:
            out[i] = replace(result, fail_alpha=level)
            continue
        estimate = result.estimate.at(1 - 2 * level)
        note = (f"beyond {result.gate.threshold:g} at 95% but not at the run's family-wise level "
                f"(Holm over {m} tests: one-sided {level * 100:.2g}%)")  # fmt: skip
        out[i] = replace(result, status=INCONCLUSIVE, note=note, fail_alpha=level, fail_estimate=estimate)
    return out


def _family_note(tests: int, level: float, note: str) -> str:
    if tests <= 1:
        return note
    text = f"fails at the run's family-wise level (Holm over {tests} tests: one-sided {level * 100:.2g}%)"
    return f"{note}; {text}" if note else text


@dataclass(frozen=True)
class SegmentSpec:
    by: tuple[str, ...] = ()
    critical: tuple[str, ...] = ()

    def resolve(self, segment: str) -> tuple[str, str]:
        """``category=billing`` -> (category, billing); a bare value uses the first ``by`` key."""
        if "=" in segment:
            key, value = segment.split("=", 1)
            return key.strip(), value.strip()
        if not self.by:
            raise ValueError(f"segment {segment!r}: write it as key=value (no segment_by is set)")
        return self.by[0], segment


def segment_labels(pairs: Pairs, key: str) -> np.ndarray:
    """Each pair's value of a metadata key, as text ("None" where the key is missing)."""
    return pairs.cached(f"segment:{key}", lambda: np.array(
        [str((metadata or {}).get(key)) for metadata in pairs.column("metadata")], dtype=object))  # fmt: skip


def segment_mask(pairs: Pairs, key: str, value: str) -> np.ndarray:
    mask: np.ndarray = segment_labels(pairs, key) == value
    return mask


@dataclass(frozen=True)
class Decision:
    verdict: str
    results: tuple[GateResult, ...]
    on_inconclusive: str
    compared: int = 1
    """Pairs whose two arms both answered. With none (every candidate answer failed, or no
    baseline), nothing about the answers was compared: the verdict is INCONCLUSIVE at best
    and fails whatever ``on_inconclusive`` says."""
    tests: int = 0
    """The run's tests that shared the family-wise false-FAIL rate (Holm)."""

    @property
    def exit_code(self) -> int:
        if self.compared == 0:
            return 1
        if self.verdict == PASS:
            return 0
        if self.verdict == INCONCLUSIVE and self.on_inconclusive == "pass":
            return 0
        return 1


def decide(
    gates: tuple[Gate, ...],
    pairs: Pairs,
    segments: SegmentSpec = SegmentSpec(),
    on_inconclusive: str = "fail",
    metric_cache: dict[str, dict[str, MetricValue]] | None = None,
    noise: Pairs | None = None,
) -> Decision:
    """Evaluate every gate on the whole run, its own segment, and the critical segments.
    ``noise``: production's own pairs (the noise floor), for the bounds over it."""
    cache = metric_cache if metric_cache is not None else {}
    if len(pairs) == 0:  # nothing compared at all: a preset gate must not pass by being skipped
        gates = tuple(Gate(**{**gate.__dict__, "preset": False}) for gate in gates)
    value = _metric_values(pairs, segments, cache)
    noise_value = _metric_values(noise, segments, {}) if noise is not None else None

    def result(gate: Gate, segment: str) -> GateResult:
        own = value(gate.metric, segment)
        floor = noise_value(gate.metric, segment) if gate.over_noise and noise_value is not None else None
        return evaluate_gate(gate, own, floor)

    planned: list[tuple[Gate, GateResult, tuple[GateResult, ...]]] = []
    for gate in gates:
        own = result(gate, _canonical(gate.segment or "", segments))
        parts: tuple[GateResult, ...] = ()
        if not gate.segment and segments.critical:
            parts = tuple(_critical_part(gate, critical, segments, result) for critical in segments.critical)
        planned.append((gate, own, parts))
    flat = [result for _, own, parts in planned for result in (own, *parts)]
    adjusted = iter(holm_fail(flat))
    results = []
    for gate, _, parts in planned:
        own = next(adjusted)
        adjusted_parts = tuple(next(adjusted) for _ in parts)
        results.append(_with_critical(own, gate, adjusted_parts) if parts else own)
    compared = int(pairs.both_ok.sum()) if len(pairs) else 0
    statuses = {result.status for result in results}
    verdict = FAIL if FAIL in statuses else INCONCLUSIVE if INCONCLUSIVE in statuses else PASS
    if compared == 0 and verdict == PASS:
        verdict = INCONCLUSIVE
    return Decision(verdict, tuple(results), on_inconclusive, compared, sum(result.tested for result in flat))


def _metric_values(pairs: Pairs, segments: SegmentSpec,
                   cache: dict[str, dict[str, MetricValue]]) -> Callable[[str, str], MetricValue]:  # fmt: skip
    """metric, segment -> the metric over that segment's pairs, each computed once (in ``cache``)."""
    subsets: dict[str, Pairs] = {"": pairs}

    def value(metric: str, segment: str) -> MetricValue:
        if segment not in subsets:
            key, val = segments.resolve(segment)
            subsets[segment] = pairs.subset(segment_mask(pairs, key, val))
        per_segment = cache.setdefault(segment, {})
        if metric not in per_segment:
            per_segment[metric] = METRICS[metric].compute(subsets[segment])
        return per_segment[metric]

    return value


def _canonical(segment: str, segments: SegmentSpec) -> str:
    if not segment:
        return ""
    key, value = segments.resolve(segment)
    return f"{key}={value}"


def _critical_part(gate: Gate, critical: str, segments: SegmentSpec,
                   result: Callable[[Gate, str], GateResult]) -> GateResult:  # fmt: skip
    name = _canonical(critical, segments)
    return result(Gate(**{**gate.__dict__, "segment": name, "preset": False}), name)


def _with_critical(result: GateResult, gate: Gate, parts: tuple[GateResult, ...]) -> GateResult:
    """A regression beyond the threshold in a critical segment fails the gate even when the
    whole passes; one that is likely but unproven there makes a passing gate inconclusive."""
    failed = [part for part in parts if part.status == FAIL]
    if failed:
        names = ", ".join(part.gate.segment or "" for part in failed)
        note = f"{'also ' if result.status == FAIL else ''}fails in critical segment {names}"
        return replace(result, status=FAIL, note=note, more_needed=None, segments=parts)
    doubtful = [part for part in parts if part.status == INCONCLUSIVE and _beyond(gate, part.estimate)]
    if result.status == PASS and doubtful:
        names = ", ".join(part.gate.segment or "" for part in doubtful)
        note = f"may regress in critical segment {names}"
        return replace(result, status=INCONCLUSIVE, note=note, more_needed=None, segments=parts)
    return replace(result, segments=parts)


def _beyond(gate: Gate, estimate: Estimate) -> bool:
    if estimate.value is None:
        return False
    return estimate.value > gate.threshold if gate.upper else estimate.value < gate.threshold
