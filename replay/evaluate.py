"""From stored outcomes to a decision: compare pairs, aggregate, gate.

Comparisons are stored with the digest of the settings that produced them, so a
report or a re-gate of an unchanged run reads them back instead of recomputing, and
changing the comparison settings recomputes them. Nothing here sends a request.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np
import orjson

from replay.gates import Decision, decidable, SegmentSpec, decide, segment_labels, segment_mask
from replay.metrics import METRICS, MetricValue, Pairs
from replay.session_metrics import Sessions, sessions_of
from replay.settings import DecisionSettings, decision_from
from replay.stats import Estimate, wilson
from replay.store import RunRow, Store
from replay.types import ARM_LOGGED, ARM_NOISE, ARM_PRODUCTION, COMPARED_ARM, PAIR_CANDIDATE, PAIR_NOISE



def baseline_arm(run: RunRow) -> str:
    return ARM_PRODUCTION if run.scenario.get("baseline") == "fresh" else ARM_LOGGED


def settings_for(run: RunRow, gates_override: Any = None, on_inconclusive: str | None = None) -> DecisionSettings:
    raw = dict(run.scenario.get("decision") or {})
    if on_inconclusive:
        raw["on_inconclusive"] = on_inconclusive
    return decision_from(raw, gates_override)


def compare_run(store: Store, run: RunRow, settings: DecisionSettings) -> list[dict[str, Any]]:
    """Per-pair measure dicts for every request answered on both arms, computing what is missing."""
    return measure_table(store, run, settings).rows


def measure_table(store: Store, run: RunRow, settings: DecisionSettings, notes: list[str] | None = None,
                  kind: str = PAIR_CANDIDATE) -> Pairs:  # fmt: skip
    """The per-pair measures of every request answered on both arms, as a table, computing
    (and storing) what is missing.

    Measures are stored as JSON written and read with orjson, several times faster than
    the standard library at both (figures: the README's benchmarks). Fresh comparisons come back from the workers as columns, so the first
    report decodes nothing. What the user should know (comparisons that could not be
    stored) is added to ``notes``.
    """
    from replay.stages.compare import Digests, compare_stored

    digest = settings.compare_digest()
    base_arm, other_arm = baseline_arm(run), COMPARED_ARM[kind]
    pair_count = store.pair_count(run.id, base_arm, other_arm)
    if pair_count and pair_count == store.comparisons_with_digest(run.id, digest, kind):
        stored_rows = store.comparisons(run.id, digest, kind)
        rows = [_stored_row(request_id, measures_json) for request_id, measures_json in stored_rows]
        if len(rows) == pair_count:  # nothing changed between the two reads
            return Pairs(rows)
    ids = store.pair_ids(run.id, base_arm, other_arm)
    stored = dict(store.comparisons(run.id, digest, kind))  # one read: ids and measures of one snapshot
    todo = [request_id for request_id in ids if request_id not in stored]
    per_comparator = settings.comparator_digests()
    digests = Digests(digest, orjson.dumps(per_comparator).decode())
    refresh = _refreshable(store, run.id, digest, per_comparator, kind) if todo else {}
    dense = 2 * len(todo) >= len(ids)
    fresh = compare_stored(store, run.id, base_arm, todo, settings.compare, digests, dense, refresh, kind)
    if notes is not None:
        notes.extend(fresh.notes)
    table = Pairs.from_columns(dict(fresh.columns), len(fresh.ids))
    if len(fresh.ids) == len(ids):  # all computed just now: nothing to read back
        return table
    new = dict(zip(fresh.ids, table.rows))
    return Pairs([new.get(request_id) or _stored_row(request_id, stored[request_id]) for request_id in ids])


def _refreshable(store: Store, run_id: str, digest: str, current: dict[str, str],
                 kind: str = PAIR_CANDIDATE) -> dict[str, tuple[frozenset[str], dict[str, Any]]]:  # fmt: skip
    """The pairs stored under other settings whose stale comparators can be recomputed alone
    (each declares its measures): request id -> (stale comparators, stored measures)."""
    from replay.compare.base import ALL_COMPARATORS, COMPARATOR_INFO

    refresh: dict[str, tuple[frozenset[str], dict[str, Any]]] = {}
    known: dict[str, frozenset[str] | None] = {}  # the rows of one run share a few digest sets
    for request_id, digests_json, measures_json in store.comparisons_to_refresh(run_id, digest, kind):
        if digests_json not in known:
            before = orjson.loads(digests_json)
            stale = frozenset(name for name, value in current.items() if before.get(name) != value)
            refreshable = bool(stale) and set(before) == set(current) and ALL_COMPARATORS not in stale \
                and all(COMPARATOR_INFO[name].measures for name in stale)  # fmt: skip
            known[digests_json] = stale if refreshable else None
        stale_names = known[digests_json]
        if stale_names is not None:
            refresh[request_id] = (stale_names, orjson.loads(measures_json))
    return refresh


def _stored_row(request_id: str, measures_json: str | bytes) -> dict[str, Any]:
    row: dict[str, Any] = orjson.loads(measures_json)
    row["request_id"] = request_id
    return row


def prepare_evaluation(pairs: int) -> None:
    """Draw what evaluating ``pairs`` pairs will first need, ahead of time (from another
    thread while a run replays): the bootstrap's resample counts for the whole table."""
    from replay.stats.bootstrap import resample_weights

    if pairs > 1:
        resample_weights(pairs)


@dataclass(frozen=True)
class Disagreement:
    request_id: str
    divergence: float
    reasons: tuple[str, ...]
    segment: str
    beyond_noise: bool | None = None
    """The pair diverges more than production's own pairs mostly do (None: no noise floor measured)."""
    judge: str | None = None
    """The judge's verdict on the pair (candidate, baseline, tie or error), when it judged it."""
    judge_reason: str | None = None


NOISE_QUANTILE = 0.95
"""A pair is beyond noise when it diverges more than this share of production's own pairs."""


@dataclass(frozen=True)
class NoiseFloor:
    """How much production differs from itself: the pairwise measures of its noise pairs."""

    n: int
    metrics: dict[str, MetricValue]
    """Every pairwise metric (no baseline side), production against production."""
    divergence_limit: float | None
    """The divergence below which :data:`NOISE_QUANTILE` of production's own pairs lie."""
    against_logged: bool
    """The baseline is the logged answers: the floor includes production's drift since then."""


@dataclass(frozen=True)
class Drift:
    """Production's fresh answers against the logged ones, where both answered."""

    arm: str
    """The arm of the fresh answers: ``production`` (a fresh baseline) or ``noise``."""
    pairs: int
    changed: int
    """Answers (text or tool calls) that differ at all."""
    fingerprint_known: int
    fingerprint_changed: int
    model_known: int
    model_changed: int


@dataclass(frozen=True)
class JudgeReport:
    """The judge's figures beyond its metric: who judged, what it cost, how far to trust it."""

    model: str
    both_orders: bool
    metric: MetricValue
    """``judge_win_rate`` over the whole run (wins, ties, losses, errors and the rest in its extras)."""
    identical: int
    """Pairs whose answers were identical once normalised: ties without a call."""
    requests: int
    """Requests this run sent the judge, retries included."""
    cached: int
    """Orders whose verdict was already stored, and not paid again."""
    cost_usd: float
    warnings: tuple[str, ...] = ()
    """What makes its verdicts less trustworthy (same family as an arm, position bias, a length preference)."""
    agreement: Any = None
    """A :class:`replay.stats.agreement.Agreement` with the human reviews, where both judged a pair."""


@dataclass(frozen=True)
class Evaluation:
    """Everything a report shows, computed once; renderers only format it."""

    run: RunRow
    settings: DecisionSettings
    decision: Decision
    metrics: dict[str, MetricValue]
    segments: dict[str, dict[str, dict[str, MetricValue]]]
    """segment key -> value -> metric name -> value."""
    disagreements: tuple[Disagreement, ...]
    counts: dict[str, dict[str, int]]
    pairs: int
    reviews: Estimate | None = None
    review_counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    """What the user should know that did not stop the report, said on stderr."""
    noise: NoiseFloor | None = None
    drift: Drift | None = None
    lossy: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per arm: what adapting the logged requests to its API lost, and on how many requests."""
    tokens_estimated: dict[str, int] = field(default_factory=dict)
    """Per arm: the answers whose tokens were counted locally, their endpoint having sent no usage."""
    judge: JudgeReport | None = None
    """The run's judge, when it has one."""
    sessions: Sessions | None = None
    """How whole conversations fared, when the run's records name them."""
    mix: dict[str, Any] | None = None
    """The sample's traffic mix next to the whole log's (:meth:`replay.sampling.Selector.mix`), for a
    run sampled by time, strata or dedupe."""

    @property
    def baseline_arm(self) -> str:
        return baseline_arm(self.run)


def evaluate(store: Store, run_ref: str, gates_override: Any = None, top: int = 10,
             on_inconclusive: str | None = None) -> Evaluation:  # fmt: skip
    with _no_gc_pauses():
        return _evaluate(store, run_ref, gates_override, top, on_inconclusive)


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Decoding a large run's measure dicts creates millions of objects and no cycles; with the
    collector on, its repeated passes over them take longer than the decoding itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _evaluate(store: Store, run_ref: str, gates_override: Any, top: int, on_inconclusive: str | None) -> Evaluation:
    run = store.get_run(run_ref)
    settings = settings_for(run, gates_override, on_inconclusive)
    notes: list[str] = []
    pairs = measure_table(store, run, settings, notes)
    add_semantic_similarity(store, run, pairs, notes)
    weights = run_weights(store, run)
    add_weights(pairs, weights)
    noise = measure_table(store, run, settings, notes, PAIR_NOISE) if run.scenario.get("noise_floor") else None
    if noise is not None:
        add_semantic_similarity(store, run, noise, notes, PAIR_NOISE)
        add_weights(noise, weights)
    verdicts = attach_judge(store, run, pairs)
    if noise is not None:
        attach_judge(store, run, noise, PAIR_NOISE)  # the judge's own noise floor: production against itself
    evaluation = _aggregate(store, run, settings, pairs, top, noise)
    judge = judge_report(store, run, evaluation, verdicts)
    return replace(evaluation, notes=tuple(notes), drift=drift_of(store, run), lossy=store.lossy_counts(run.id),
                   judge=judge, sessions=sessions_of(store, run.id, run.scenario, baseline_arm(run)),
                   tokens_estimated=store.estimated_counts(run.id), mix=store.mix(run.id))


def drift_of(store: Store, run: RunRow) -> Drift | None:
    """Where production answered afresh: how often, and how visibly, it changed since the log."""
    arm = ARM_PRODUCTION if run.scenario.get("baseline") == "fresh" else ARM_NOISE if run.scenario.get("noise_floor") else None
    if arm is None:
        return None
    pairs, changed, fingerprint_known, fingerprint_changed, model_known, model_changed = store.drift(run.id, arm)
    return Drift(arm, pairs, changed, fingerprint_known, fingerprint_changed, model_known, model_changed) if pairs else None


def noise_limit(store: Store, run: RunRow, settings: DecisionSettings) -> float | None:
    """The divergence beyond which a pair differs more than production from itself (None
    without a noise floor)."""
    if not run.scenario.get("noise_floor"):
        return None
    noise = measure_table(store, run, settings, kind=PAIR_NOISE)
    add_weights(noise, run_weights(store, run))
    return _divergence_limit(noise)


def run_weights(store: Store, run: RunRow) -> dict[str, int]:
    """request id -> weight, for a run sampled with ``dedupe`` (other runs have none to read)."""
    return store.case_weights(run.id) if (run.scenario.get("sample") or {}).get("dedupe") else {}


def add_weights(pairs: Pairs, weights: dict[str, int]) -> None:
    """Weigh a deduplicated run's pairs (``weights``: request id -> its copies, where more than 1):
    every metric then counts each pair as often as its request was sampled. A run without
    weights keeps its table, and its figures, as they were."""
    if weights and len(pairs):
        pairs.set_weights([weights.get(request_id, 1) for request_id in pairs.values("request_id")])


def _divergence_limit(noise: Pairs) -> float | None:
    divergences = noise.numbers("divergence") if len(noise) else np.array([])
    if not divergences.size:
        return None
    w = noise.weights()
    if w is not None:
        from replay.stats.weighted import percentile_one

        return percentile_one(divergences, w, NOISE_QUANTILE * 100).value
    return float(np.quantile(divergences, NOISE_QUANTILE))


def noise_floor_of(noise: Pairs, run: RunRow) -> NoiseFloor:
    metrics = {name: METRICS[name].compute(noise) for name in shown_metrics(run) if not METRICS[name].paired}
    return NoiseFloor(len(noise), metrics, _divergence_limit(noise), run.scenario.get("baseline") != "fresh")


def add_semantic_similarity(store: Store, run: RunRow, pairs: Pairs, notes: list[str], kind: str = PAIR_CANDIDATE) -> None:
    """Join each pair's stored cosine (``semantic_similarity``) to the table of pairs of ``kind``,
    for a run with an ``embeddings`` endpoint; nothing is sent (pairs never embedded are counted
    in ``notes``)."""
    from replay.stages.embeddings import embeddings_model, semantic_similarities

    model = embeddings_model(run.scenario)
    if model is None or not len(pairs):
        return
    values, said = semantic_similarities(store, run.id, model, baseline_arm(run), pairs.values("request_id"), kind)
    pairs.add_column("semantic_similarity", values)
    notes.extend(said)


def shown_metrics(run: RunRow) -> list[str]:
    """The metrics a run's reports show: those whose scenario key (``embeddings``, ``judge``) it
    has, and all the others."""
    return [name for name, definition in METRICS.items() if not definition.needs or run.scenario.get(definition.needs)]


def _aggregate(store: Store, run: RunRow, settings: DecisionSettings, pairs: Pairs, top: int,
               noise: Pairs | None = None) -> Evaluation:  # fmt: skip
    cache: dict[str, dict[str, MetricValue]] = {}
    shown = shown_metrics(run)
    settings = replace(settings, gates=decidable(settings.gates, lambda key: bool(run.scenario.get(key))))
    # Segments in a second thread while this one does the whole table: the bootstrap's
    # sorting and counting run in numpy with the interpreter lock released.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="replay-segments") as pool:
        segments_done = pool.submit(segment_metrics, pairs, settings.segments, cache, shown)
        whole = cache.setdefault("", {})
        for name in shown:
            whole[name] = METRICS[name].compute(pairs)
        segments = segments_done.result()
    decision = decide(settings.gates, pairs, settings.segments, settings.on_inconclusive, cache, noise)
    reviews, review_counts = human_win_rate(store, run.id)
    floor = noise_floor_of(noise, run) if noise is not None else None
    limit = floor.divergence_limit if floor is not None else None
    return Evaluation(
        run=run, settings=settings, decision=decision, metrics={name: whole[name] for name in shown},
        segments=segments, disagreements=tuple(top_disagreements(pairs, settings.segments, top, noise_limit=limit)),
        counts=store.counts(run.id), pairs=len(pairs), reviews=reviews, review_counts=review_counts, noise=floor,
    )  # fmt: skip


def segment_metrics(
    pairs: Pairs, segments: SegmentSpec, cache: dict[str, dict[str, MetricValue]], names: list[str] | None = None
) -> dict[str, dict[str, dict[str, MetricValue]]]:
    """Per segment the ``names`` metrics (default: all)."""
    names = list(METRICS) if names is None else names
    out: dict[str, dict[str, dict[str, MetricValue]]] = {}
    for key in segments.by:
        for value in sorted(set(segment_labels(pairs, key))):
            subset = pairs.subset(segment_mask(pairs, key, value))
            known = cache.setdefault(f"{key}={value}", {})
            for name in names:
                if name not in known:
                    known[name] = METRICS[name].compute(subset)
            out.setdefault(key, {})[value] = {name: known[name] for name in names}
    return out


# --- the judge ------------------------------------------------------------------------------

LOW_CONSISTENCY = 0.6
"""Below this share of verdicts surviving the swap of the answers, the report says the judge's
verdicts are mostly noise (GPT-4 keeps about 65% with one fixed order: Zheng et al. 2023)."""


def attach_judge(store: Store, run: RunRow, pairs: Pairs, kind: str = PAIR_CANDIDATE) -> dict[str, Any]:
    """Add the run's judge verdicts on its pairs of ``kind`` (the candidate's, or production's own)
    to the table as columns (``judge``, ...); request id -> verdict."""
    from replay.judge.summary import judge_columns, pair_verdicts

    judge = run.scenario.get("judge")
    if not judge:
        return {}
    turns = 2 if judge.get("both_orders", True) else 1
    verdicts = {v.request_id: v for v in pair_verdicts(store.judgements(run.id, kind=kind), turns)}
    for key, column in judge_columns(verdicts, pairs.values("request_id")).items():
        pairs.add_column(key, column)
    return verdicts


def judge_report(store: Store, run: RunRow, evaluation: Evaluation, verdicts: dict[str, Any]) -> JudgeReport | None:
    judge = run.scenario.get("judge")
    if not judge:
        return None
    metric = evaluation.metrics["judge_win_rate"]
    return JudgeReport(
        model=str(judge["arm"]["model"]), both_orders=bool(judge.get("both_orders", True)), metric=metric,
        identical=sum(1 for v in verdicts.values() if v.identical), requests=sum(v.calls for v in verdicts.values()),
        cached=sum(v.cached for v in verdicts.values()), cost_usd=store.judge_spent(run.id),
        warnings=tuple(judge_warnings(run.scenario, metric)), agreement=judge_agreement(store, run.id, verdicts),
    )  # fmt: skip


def judge_warnings(scenario: dict[str, Any], metric: MetricValue) -> list[str]:
    from replay.judge.family import same_family, same_model

    model = str(scenario["judge"]["arm"]["model"])
    warnings = []
    for arm in ("candidate", "production"):
        other = (scenario.get(arm) or {}).get("model")
        if other and same_model(model, other):
            warnings.append(f"the judge is the {arm}'s own model ({model}, allow_self_judge: true): it favours its own answers")
        elif other and same_family(model, other):
            warnings.append(f"the judge ({model}) is of the same family as the {arm} ({other}): judges favour answers"
                            " of their own family; a judge from another vendor is more trustworthy")  # fmt: skip
    consistency = metric.extra.get("position_consistency")
    if consistency is not None and consistency.n >= 10 and consistency.value is not None and consistency.value < LOW_CONSISTENCY:
        warnings.append(f"position consistency is {consistency.value * 100:.0f}% (n={consistency.n}): the verdict flips when"
                        " the answers swap places on most pairs, so the judge's verdicts are mostly noise"
                        " (flipped verdicts count as ties)")  # fmt: skip
    first = metric.extra.get("first_position")
    if first is not None and first.known and first.n >= 10 and (first.low > 0.5 or first.high < 0.5):
        side = "first" if first.value > 0.5 else "second"
        warnings.append(f"the judge prefers the answer shown {side}: it picked the first-shown answer in"
                        f" {first.value * 100:.0f}% of {first.n} decisive verdicts")  # fmt: skip
    longer, shorter = metric.extra.get("when_longer"), metric.extra.get("when_shorter")
    if longer is not None and shorter is not None and longer.n >= 10 and shorter.n >= 10 and longer.known and shorter.known:
        if longer.low > shorter.high:
            warnings.append(f"the judge may prefer longer answers: the candidate's win rate is {longer.value * 100:.0f}%"
                            f" when its answer is longer and {shorter.value * 100:.0f}% when it is shorter")  # fmt: skip
    return warnings


def judge_agreement(store: Store, run_id: str, verdicts: dict[str, Any]) -> Any:
    """The judge against the human reviewers, on the pairs both judged (one item per review)."""
    from replay.judge.summary import ERROR
    from replay.stats.agreement import agreement

    both = [(verdicts[rid].outcome, verdict) for rid, _, verdict in store.reviews(run_id)
            if rid in verdicts and verdicts[rid].outcome != ERROR]  # fmt: skip
    if not both:
        return None
    return agreement([judge for judge, _ in both], [human for _, human in both], ("candidate", "baseline", "tie"))


def top_disagreements(pairs: Pairs, segments: SegmentSpec, top: int | None, segment: str | None = None,
                      noise_limit: float | None = None) -> list[Disagreement]:  # fmt: skip
    """Pairs ranked by how sharply they diverge, most divergent first; identical pairs left out."""
    key, value = segments.resolve(segment) if segment else (None, None)
    chosen = []
    divergences = pairs.numbers("divergence")
    ids, all_reasons, all_metadata = pairs.column("request_id"), pairs.column("reasons"), pairs.column("metadata")
    judges, judge_reasons = pairs.column("judge"), pairs.column("judge_reason")
    keep = divergences > 0
    if key is not None:
        keep &= segment_labels(pairs, key) == value
    candidates = np.flatnonzero(keep)
    if top is not None and candidates.size > top:
        # only pairs at least as divergent as the top-th can rank (ties kept for the id order)
        threshold = np.partition(divergences[candidates], candidates.size - top)[candidates.size - top]
        candidates = candidates[divergences[candidates] >= threshold]
    for index in candidates:
        metadata = all_metadata[index] or {}
        label = ", ".join(f"{k}={metadata.get(k)}" for k in segments.by if k in metadata)
        reasons = tuple(all_reasons[index] or ())
        beyond = None if noise_limit is None else bool(divergences[index] > noise_limit)
        chosen.append(Disagreement(ids[index], float(divergences[index]), reasons, label, beyond, judges[index],
                                   judge_reasons[index]))  # fmt: skip
    chosen.sort(key=lambda d: (-d.divergence, d.request_id))
    return chosen[:top] if top is not None else chosen


def human_win_rate(store: Store, run_id: str) -> tuple[Estimate | None, dict[str, int]]:
    """Candidate wins over decided verdicts, ties counted as half a win each way."""
    verdicts = [verdict for _, _, verdict in store.reviews(run_id)]
    if not verdicts:
        return None, {}
    counts = {v: verdicts.count(v) for v in ("candidate", "baseline", "tie")}
    n = len(verdicts)
    wins = counts["candidate"] + counts["tie"] / 2
    return wilson_half(wins, n), counts


def wilson_half(wins: float, n: int) -> Estimate:
    """Wilson interval allowing half wins (ties), by interpolating the integer bounds."""
    low_k, high_k = int(wins), min(n, int(wins) + 1)
    low, high = wilson(low_k, n), wilson(high_k, n)
    frac = wins - low_k
    assert low.low is not None and low.high is not None and high.low is not None and high.high is not None
    return Estimate(wins / n, low.low + frac * (high.low - low.low), low.high + frac * (high.high - low.high), n)
