"""Deterministic sampling: a record is in or out by a seeded hash of its id alone.

The same id gets the same draw whatever the file order or the other records, so a
rerun (or a resume) picks exactly the same requests. With ``max``, the records with
the smallest draws win: still independent of order, and a uniform random subset.

Beyond that (:class:`Selector`): a time window (``since``, ``until``), strata
(``stratify_by``: metadata keys, or ``hour_of_day`` / ``weekday`` of the record's UTC
timestamp) among which ``max`` is allocated in proportion to their traffic with a floor
each (largest remainders, so the allocations sum to ``max``; within a stratum the smallest
draws win), and ``dedupe``: identical requests among the sampled records replayed once,
weighted by their number of copies. Still one streaming pass, memory bounded by the sample
(times the strata), and the same records whatever the file order.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any, Iterable, NamedTuple

from replay.types import LogRecord


def draw(seed: int | str, record_id: str) -> float:
    """A uniform number in [0, 1) fixed by the seed and the id."""
    digest = hashlib.blake2b(f"{seed}\x00{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


TIME_STRATA = ("hour_of_day", "weekday")
"""Strata read from the record's timestamp (UTC), not its metadata."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_HOURS = tuple(f"{hour:02d}" for hour in range(24))
NONE = "(none)"
"""The stratum of a record without the key (or, for a time stratum, without a timestamp)."""
MAX_STRATA = 100
"""Distinct strata a sample may have: more is a key too fine to stratify by (a user id)."""
DEFAULT_MIN_PER_STRATUM = 1
"""The floor per stratum unless ``sample.min_per_stratum`` says otherwise: every stratum
seen is represented, and tiny strata are over-represented by at most one record each."""


@dataclass(frozen=True)
class SampleSpec:
    rate: float = 1.0
    max: int | None = None
    seed: int = 0
    since: str | None = None
    """The earliest timestamp sampled (ISO 8601, UTC), resolved when the scenario is loaded."""
    until: str | None = None
    """The latest timestamp sampled (exclusive)."""
    stratify_by: tuple[str, ...] = ()
    min_per_stratum: int = DEFAULT_MIN_PER_STRATUM
    dedupe: bool = False

    @property
    def extended(self) -> bool:
        """It uses a time window, strata or dedupe (anything :func:`select_ids` alone cannot do)."""
        return bool(self.since or self.until or self.stratify_by or self.dedupe)

    def snapshot(self) -> dict[str, Any]:
        """As stored with a run; the keys left at their defaults are left out, so a run
        sampled as before keeps the snapshot (and digest) it had."""
        data = asdict(self)
        for key in ("since", "until", "dedupe"):
            if not data[key]:
                del data[key]
        if not self.stratify_by:
            del data["stratify_by"], data["min_per_stratum"]
        else:
            data["stratify_by"] = list(self.stratify_by)
        return data

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> "SampleSpec":
        values = dict(data)
        values["stratify_by"] = tuple(values.get("stratify_by") or ())
        return cls(**values)


def select_ids(ids: Iterable[str], spec: SampleSpec) -> set[str]:
    """Return the sampled ids; memory grows with ``max`` (or the sample), not the log."""
    if spec.max is None:
        return {record_id for record_id in ids if draw(spec.seed, record_id) < spec.rate}
    heap: list[tuple[float, str]] = []  # max-heap by draw, via negation
    for record_id in ids:
        u = draw(spec.seed, record_id)
        if u >= spec.rate:
            continue
        if len(heap) < spec.max:
            heapq.heappush(heap, (-u, record_id))
        elif -heap[0][0] > u:
            heapq.heapreplace(heap, (-u, record_id))
    return {record_id for _, record_id in heap}


def empty_sample_message(spec: SampleSpec, records: int) -> str:
    """Why a run would have nothing to send, and what to change."""
    return (f"sample.rate: {spec.rate:g} selects none of the {records} record(s) (seed {spec.seed});"
            " raise it (--sample) to replay something")  # fmt: skip


def empty_window_message(spec: SampleSpec, selection: "Selection", records: int) -> str | None:
    """Why a time window left nothing to send (None when there is no window)."""
    if not (spec.since or spec.until) or selection.in_window:
        return None
    window = f"from {spec.since or 'the start'} until {spec.until or 'now'}"
    missing = f" ({selection.without_timestamp} have no timestamp)" if selection.without_timestamp else ""
    return (f"sample.since/sample.until: none of the {records} records read falls in the window {window}{missing};"
            " widen it (--since, --until) to replay something")  # fmt: skip


def subsample(ids: Iterable[str], size: int, seed: int, purpose: str) -> set[str]:
    """``size`` of the ids, drawn independently of the sample itself (the draws are salted
    with ``purpose``), and as stable: the same run picks the same ones on resume."""
    return set(heapq.nsmallest(size, ids, key=lambda record_id: (draw(f"{purpose}:{seed}", record_id), record_id)))


def select_units(items: Iterable[tuple[str, str | None]], spec: SampleSpec) -> set[str]:
    """Like :func:`select_ids` over ``(record id, unit)`` pairs, drawing once per unit: the
    records of one conversation are in or out together. A record of no unit (None) is drawn
    on its own id, exactly as :func:`select_ids` draws it. With ``max``, the unit that would
    cross the limit is left out whole, so a sample may hold fewer than ``max`` records."""
    if spec.max is None:
        return {record_id for record_id, unit in items if _unit_draw(spec.seed, record_id, unit) < spec.rate}
    heap: list[tuple[float, str]] = []
    cut = 2.0  # the smallest draw left out: its unit may be in the heap only in part
    for record_id, unit in items:
        u = _unit_draw(spec.seed, record_id, unit)
        if u >= spec.rate:
            continue
        if len(heap) < spec.max:
            heapq.heappush(heap, (-u, record_id))
        elif -heap[0][0] > u:
            cut = min(cut, -heapq.heapreplace(heap, (-u, record_id))[0])
        else:
            cut = min(cut, u)
    return {record_id for negative, record_id in heap if -negative != cut}


def _unit_draw(seed: int, record_id: str, unit: str | None) -> float:
    return draw(seed, record_id) if unit is None else draw(seed, f"session\x00{unit}")


# --- times ---------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"\s*(\d+)\s*([mhdw])\s*\Z")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def resolve_moment(value: str, now: datetime) -> str:
    """``7d``, ``12h``, ``30m``, ``2w`` (before ``now``) or an ISO 8601 time (a date alone is its
    midnight; no zone is UTC), as ISO 8601 UTC with ``Z``; ValueError says what is accepted."""
    relative = _RELATIVE.match(value)
    if relative:
        moment = now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO 8601 time (2026-11-01T09:00:00Z) or a span before now"
                             f" such as 7d, 12h, 30m or 2w, got {value!r}") from None  # fmt: skip
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def epoch(timestamp: str) -> float:
    """Epoch seconds of a record's ISO 8601 timestamp (no zone: UTC, as the readers read it)."""
    moment = datetime.fromisoformat(timestamp[:-1] + "+00:00" if timestamp[-1:] in ("Z", "z") else timestamp)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def stratum_of(record: LogRecord, keys: tuple[str, ...], moment: float | None) -> str:
    """The record's stratum label: ``billing``, ``09`` (hour, UTC), ``Mon``; several keys joined by ``, ``."""
    parts = []
    for key in keys:
        if key in TIME_STRATA:
            if moment is None:
                parts.append(NONE)
            elif key == "hour_of_day":
                parts.append(_HOURS[int(moment // 3600) % 24])
            else:  # 1970-01-01 was a Thursday
                parts.append(WEEKDAYS[(int(moment // 86400) + 3) % 7])
        else:
            value = (record.metadata or {}).get(key)
            parts.append(NONE if value is None else str(value))
    return ", ".join(parts)


# --- the allocation -------------------------------------------------------------------------------


class AllocationError(ValueError):
    """The floors of the strata alone need more records than ``max``."""


def allocate(available: dict[str, int], total: int, floor: int) -> dict[str, int]:
    """``total`` records shared among strata in proportion to ``available``, each at least
    ``floor`` (or all it has), never more than it has, summing to ``total`` (all, with fewer).

    A stratum whose proportional share is below its floor gets the floor, and the rest is
    shared among the others in proportion, until no share is below its floor; the shares
    are then rounded by largest remainder (ties: the larger stratum, then the name)."""
    if sum(available.values()) <= total:
        return dict(available)
    floors = {name: min(floor, n) for name, n in available.items()}
    if sum(floors.values()) > total:
        raise AllocationError(f"{len(floors)} strata at {floor} each need {sum(floors.values())} records")
    fixed: dict[str, int] = {}
    free = {name: n for name, n in available.items() if n}
    quotas: dict[str, Fraction] = {}
    while free:
        budget = total - sum(fixed.values())
        pool = sum(free.values())
        quotas = {name: Fraction(budget * n, pool) for name, n in free.items()}
        low = [name for name, quota in quotas.items() if quota < floors[name]]
        if not low:
            break
        for name in low:
            fixed[name] = floors[name]
            del free[name]
    shares = {name: int(quota) for name, quota in quotas.items() if name in free}
    left = total - sum(fixed.values()) - sum(shares.values())
    ranked = sorted(shares, key=lambda name: (-(quotas[name] - shares[name]), -free[name], name))
    for name in ranked[:left]:
        shares[name] += 1
    return {name: fixed.get(name, shares.get(name, 0)) for name in available}


# --- the selector ---------------------------------------------------------------------------------


class _Facts(NamedTuple):
    """What the selection keeps of a sampled record: enough for its stratum, the mix and dedupe
    (a tuple: a frozen dataclass costs a microsecond more to build, and the pass builds many)."""

    id: str
    u: float
    moment: float | None
    segments: tuple[str, ...]
    digest: bytes | None


MIX_TRACKED = 1000
"""Distinct values counted per key of the whole log's mix; later new ones count as ``(other)``."""
MIX_SHOWN = 50
"""Values a mix table keeps (the most common); the rest are summed as ``(other)``."""
OTHER = "(other)"


@dataclass(frozen=True)
class Selection:
    """The sample, and what the report says of it."""

    ids: set[str]
    """The records replayed (with dedupe, one per distinct request)."""
    weights: dict[str, int] = field(default_factory=dict)
    """Replayed id -> the sampled records it stands for, where that is more than 1."""
    mix: dict[str, Any] | None = None
    """The sample's traffic mix next to the whole log's (:meth:`Selector.mix`); None for a plain sample."""
    selected: int = 0
    """Records sampled (before dedupe)."""
    without_timestamp: int = 0
    """Records left out by the time window for having no timestamp."""
    in_window: int = 0
    """Records the time window (if any) kept."""


class Selector:
    """Picks the sample from records offered one by one, in one pass.

    ``offer(record, unit)``: a record of a unit (a conversation's session id) is drawn on the
    unit, as :func:`select_units` draws it, so a unit's records are in or out together (one
    crossing the limit, or a stratum's allocation, is left out whole); ``max`` counts records.
    Within a stratum the smallest draws win, so the sample is the same whatever the order the
    records come in. ``mix_keys``: metadata keys whose shares the mix compares when the sample
    has no strata (the scenario's segment keys). A unit whose records fall in different strata
    (a conversation across an hour) is taken per stratum, and may be cut at the border."""

    def __init__(self, spec: SampleSpec, mix_keys: tuple[str, ...] = ()) -> None:
        self.spec = spec
        self.mix_keys = () if spec.stratify_by else mix_keys
        self._since = epoch(spec.since) if spec.since else None
        self._until = epoch(spec.until) if spec.until else None
        self._cap = spec.max
        self._floor = spec.min_per_stratum if spec.stratify_by else 0
        self._heaps: dict[str, list[tuple[float, str]]] = {}
        """Per stratum, the kept records by draw (a max-heap via negation; without ``max`` unbounded)."""
        self._spare: dict[str, list[tuple[float, str]]] = {}
        """Without ``max``, per stratum the ``floor`` smallest draws above the rate, to top a stratum up."""
        self._units: dict[str, list[_Facts]] = {}
        """Kept record id -> what is kept of it (a list: a log may repeat an id)."""
        self._cut: dict[str, float] = {}
        self._spare_cut: dict[str, float] = {}
        """Per stratum, the smallest draw the heap (or the spare heap) left out."""
        self.available: Counter[str] = Counter()
        """Records per stratum in the window (and under the rate, with ``max``)."""
        self.records = 0
        self.outside = 0
        self.without_timestamp = 0
        self._log_span: list[float] = []
        self._log_tally: dict[str, Counter[str]] = {key: Counter() for key in self._tallied()}
        self._windowed = self._since is not None or self._until is not None
        self._prefix = f"{spec.seed}\x00".encode()

    # --- the pass ------------------------------------------------------------------------

    def _tallied(self) -> list[str]:
        """The keys of the whole log's mix: the strata (one key), else the mix keys."""
        return [_joined(self.spec.stratify_by)] if self.spec.stratify_by else list(self.mix_keys)

    def offer(self, record: LogRecord, unit: str | None = None) -> None:
        self.records += 1
        timestamp = record.timestamp
        moment = epoch(timestamp) if timestamp else None
        if moment is not None:
            self._span(self._log_span, moment)
        stratum = stratum_of(record, self.spec.stratify_by, moment) if self.spec.stratify_by else ""
        if self._log_tally:
            self._tally(record, stratum)
        if self._windowed and not self._in_window(moment):
            return
        key = record.id
        drawn = key if unit is None else f"session\x00{unit}"  # as select_units draws a conversation
        u = int.from_bytes(hashlib.blake2b(self._prefix + drawn.encode(), digest_size=8).digest(), "big") / 2**64  # draw()
        below = u < self.spec.rate
        if self._cap is None or below:
            self.available[stratum] += 1
        if key in self._units:
            self._units[key].append(self._facts(record, u, moment))
            return
        if len(self.available) > MAX_STRATA:
            keys = _joined(self.spec.stratify_by)
            raise AllocationError(f"sample.stratify_by: {keys} has more than {MAX_STRATA} distinct values in the log;"
                                  " stratify by a coarser key")  # fmt: skip
        if self._cap is None:
            self._keep_uncapped(key, record, u, moment, stratum, below)
        elif below:
            self._keep_capped(key, record, u, moment, stratum)

    def _in_window(self, moment: float | None) -> bool:
        if self._since is None and self._until is None:
            return True
        if moment is None:
            self.without_timestamp += 1
            return False
        if (self._since is not None and moment < self._since) or (self._until is not None and moment >= self._until):
            self.outside += 1
            return False
        return True

    def _keep_uncapped(self, key: str, record: LogRecord, u: float, moment: float | None, stratum: str,
                       below: bool) -> None:  # fmt: skip
        if below:
            self._heaps.setdefault(stratum, []).append((-u, key))
            self._add(key, record, u, moment)
        elif self._floor:
            self._bounded(self._spare.setdefault(stratum, []), self._floor, self._spare_cut, stratum, key, record, u, moment)

    def _keep_capped(self, key: str, record: LogRecord, u: float, moment: float | None, stratum: str) -> None:
        assert self._cap is not None
        self._bounded(self._heaps.setdefault(stratum, []), self._cap, self._cut, stratum, key, record, u, moment)

    def _bounded(self, heap: list[tuple[float, str]], size: int, cuts: dict[str, float], stratum: str, key: str,
                 record: LogRecord, u: float, moment: float | None) -> None:  # fmt: skip
        """Keep the ``size`` smallest draws in ``heap``; the smallest draw left out is the stratum's
        cut in ``cuts``: a unit with records on both sides of it is left out whole (:func:`select_units`)."""
        if len(heap) < size:
            heapq.heappush(heap, (-u, key))
        elif -heap[0][0] > u:
            negated, dropped = heapq.heapreplace(heap, (-u, key))
            del self._units[dropped]
            cuts[stratum] = min(cuts.get(stratum, 2.0), -negated)
        else:
            cuts[stratum] = min(cuts.get(stratum, 2.0), u)
            return
        self._add(key, record, u, moment)

    def _add(self, key: str, record: LogRecord, u: float, moment: float | None) -> None:
        self._units[key] = [self._facts(record, u, moment)]

    def _facts(self, record: LogRecord, u: float, moment: float | None) -> _Facts:
        segments = tuple(_label((record.metadata or {}).get(key)) for key in self.mix_keys)
        return _Facts(record.id, u, moment, segments, request_digest(record.request) if self.spec.dedupe else None)

    def _tally(self, record: LogRecord, stratum: str) -> None:
        if self.spec.stratify_by:
            for counter in self._log_tally.values():
                _count(counter, stratum)
            return
        if self.mix_keys:
            metadata = record.metadata or {}
            for key, counter in self._log_tally.items():
                _count(counter, _label(metadata.get(key)))

    @staticmethod
    def _span(span: list[float], moment: float) -> None:
        if not span:
            span.extend((moment, moment))
        elif moment < span[0]:
            span[0] = moment
        elif moment > span[1]:
            span[1] = moment

    # --- the result ------------------------------------------------------------------------

    def result(self) -> Selection:
        allocation = self._allocation()
        chosen: list[_Facts] = []
        strata: Counter[str] = Counter({stratum: 0 for stratum in allocation})
        for stratum, count in allocation.items():
            kept = sorted((-negated, key) for negated, key in self._heaps.get(stratum, []))
            kept += sorted((-negated, key) for negated, key in self._spare.get(stratum, []))
            # a unit (a conversation) with records left out, by a heap or by the allocation, is left out whole
            cuts = {self._cut.get(stratum), self._spare_cut.get(stratum), kept[count][0] if count < len(kept) else None}
            for u, key in kept[:count]:
                if u not in cuts:
                    chosen.extend(self._units[key])
                    strata[stratum] += len(self._units[key])
        ids, weights = _deduped(chosen) if self.spec.dedupe else ({facts.id for facts in chosen}, {})
        in_window = self.records - self.outside - self.without_timestamp
        return Selection(ids, weights, self.mix(chosen, strata, len(ids)), len(chosen), self.without_timestamp, in_window)

    def _allocation(self) -> dict[str, int]:
        """Records to take per stratum (fewer where a unit would cross the count)."""
        if not self.spec.stratify_by:
            return {"": self._cap if self._cap is not None else len(self._heaps.get("", []))}
        if self._cap is None:  # the rate's own share, topped up to the floor
            strata = set(self._heaps) | set(self._spare)
            return {s: max(len(self._heaps.get(s, [])), min(self._floor, self.available[s])) for s in sorted(strata)}
        kept = {stratum: len(heap) for stratum, heap in self._heaps.items()}
        try:
            shares = allocate(dict(sorted(self.available.items())), self._cap, self._floor)
        except AllocationError as exc:
            raise AllocationError(f"sample.min_per_stratum: {exc}, more than sample.max ({self._cap}):"
                                  " lower the floor or raise the max") from None  # fmt: skip
        return {stratum: min(shares[stratum], kept.get(stratum, 0)) for stratum in shares}

    def mix(self, chosen: list[_Facts], strata: Counter[str], replayed: int) -> dict[str, Any]:
        """The sample's traffic mix next to the whole log's, as stored with the run (plain data)."""
        spec = self.spec
        sample_span: list[float] = []
        for facts in chosen:
            if facts.moment is not None:
                self._span(sample_span, facts.moment)
        tables = []
        if spec.stratify_by:
            key = _joined(spec.stratify_by)
            tables.append(_table(key, self._log_tally.get(key, Counter()), strata))
        for index, key in enumerate(self.mix_keys):
            tables.append(_table(key, self._log_tally.get(key, Counter()), Counter(f.segments[index] for f in chosen)))
        return {
            "records": self.records, "sampled": len(chosen), "replayed": replayed,
            "log_range": _range(self._log_span), "sample_range": _range(sample_span),
            "since": spec.since, "until": spec.until, "outside_window": self.outside,
            "without_timestamp": self.without_timestamp,
            "stratify_by": list(spec.stratify_by), "min_per_stratum": spec.min_per_stratum if spec.stratify_by else None,
            "dedupe": spec.dedupe, "tables": tables,
        }  # fmt: skip


def _deduped(chosen: list[_Facts]) -> tuple[set[str], dict[str, int]]:
    """One record per distinct request (the one with the smallest draw, then id), weighted by
    how many of the sampled records carry that request."""
    groups: dict[bytes | None, list[_Facts]] = {}
    for facts in chosen:
        groups.setdefault(facts.digest, []).append(facts)
    ids: set[str] = set()
    weights: dict[str, int] = {}
    for copies in groups.values():
        first = min(copies, key=lambda facts: (facts.u, facts.id))
        ids.add(first.id)
        if len(copies) > 1:
            weights[first.id] = len(copies)
    return ids, weights


def request_digest(request: dict[str, Any]) -> bytes:
    """The request as sent (model and every parameter), canonical JSON (sorted keys) hashed:
    two log lines with the same body are the same request whatever their spacing or key order."""
    import orjson

    return hashlib.blake2b(orjson.dumps(request, default=str, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def _label(value: Any) -> str:
    return NONE if value is None else str(value)


def _joined(keys: tuple[str, ...]) -> str:
    return ", ".join(keys)


def _count(counter: Counter[str], value: str) -> None:
    counter[value if value in counter or len(counter) < MIX_TRACKED else OTHER] += 1


def _range(span: list[float]) -> dict[str, str | None]:
    return {"first": iso(span[0]) if span else None, "last": iso(span[1]) if span else None}


def _table(key: str, log: Counter[str], sample: Counter[str]) -> dict[str, Any]:
    """One key's values by share of the log, most common first (ties by value), the log's and
    the sample's counts; beyond :data:`MIX_SHOWN` values the rest summed as ``(other)``."""
    ranked = sorted(set(log) | set(sample), key=lambda value: (-log[value], -sample[value], value))
    shown, rest = ranked[:MIX_SHOWN], ranked[MIX_SHOWN:]
    rows = [{"value": value, "log": log[value], "sample": sample[value]} for value in shown if value != OTHER]
    other_log = sum(log[value] for value in rest) + log[OTHER]
    other_sample = sum(sample[value] for value in rest) + sample[OTHER]
    if other_log or other_sample:
        rows.append({"value": OTHER, "log": other_log, "sample": other_sample})
    return {"key": key, "log_total": sum(log.values()), "sample_total": sum(sample.values()), "values": rows}
