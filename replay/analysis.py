"""The Python API for notebooks: a store's runs, and a run's pairs with their comparisons, as
pandas DataFrames.

    import replay

    store = replay.open_store(".replay/replay.db")
    store.runs()                     # one row per run, newest first (what `replay runs --json` lists)
    pairs = store.results("latest")  # one row per request answered on both arms
    pairs.groupby("metadata.category")["similarity"].mean()

The store is opened read-only: nothing is migrated or written. Pairs not compared yet (a run
whose report never ran, or one compared under other settings) are compared in memory with the
run's own settings, as ``replay report`` would: the measures are the report's.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from replay.evaluate import add_semantic_similarity, attach_judge, baseline_arm, measure_table, settings_for
from replay.store import DEFAULT_STORE, Store
from replay.types import COMPARED_ARM, PAIR_CANDIDATE, PAIR_NOISE

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

ARM_COLUMNS = ("status", "text", "error_class", "error_message", "model")
"""What each side's stored outcome adds to the comparison's own measures (latency, cost, tokens,
finish reason... measured per side, as ``baseline_*`` and ``candidate_*``)."""
SIDES = {"b_": "baseline_", "c_": "{other}_"}
"""The comparison's prefixes for its two sides, as the DataFrame names them."""


def open_store(path: str = DEFAULT_STORE) -> RunStore:
    """The store at ``path`` (``replay run --store``'s default when not given), read-only."""
    return RunStore(path)


class RunStore:
    """A store's runs and results as DataFrames; a context manager that closes the store."""

    def __init__(self, path: str = DEFAULT_STORE) -> None:
        self.path = path
        self.store = Store(path, create=False, read_only=True)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def runs(self) -> pd.DataFrame:
        """One row per run, newest first: id, name, status, planned, outcomes and errors (the arms
        sent to, the log's answers not counted), started and ended (UTC times), seconds, message."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        rows = []
        for run in self.store.runs():
            counts = self.store.counts(run.id)
            sent = {arm: by_status for arm, by_status in counts.items() if arm != "logged"}
            rows.append({
                "id": run.id, "name": run.name, "status": run.status, "planned": run.planned,
                "outcomes": sum(sum(by_status.values()) for by_status in sent.values()),
                "errors": sum(by_status.get("error", 0) for by_status in sent.values()),
                "started": _utc(run.started_at), "ended": _utc(run.ended_at),
                "seconds": None if run.ended_at is None else round(run.ended_at - run.started_at, 1),
                "message": run.message,
            })  # fmt: skip
        columns = ["id", "name", "status", "planned", "outcomes", "errors", "started", "ended", "seconds", "message"]
        frame = pd.DataFrame(rows, columns=columns)
        for name in ("started", "ended"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        return frame.astype({"planned": "Int64", "outcomes": "int64", "errors": "int64"})

    def results(self, run: str = "latest", kind: str = PAIR_CANDIDATE) -> pd.DataFrame:
        """One row per pair of ``run`` (an id, a unique id prefix or ``latest``, as the commands take
        it), in log order: ``request_id``, ``seq``, the request's metadata as ``metadata.KEY``
        columns, each side's outcome and measures (``baseline_*`` and ``candidate_*``), then the
        comparison's measures (``similarity``, ``exact_match``, ``divergence``, ``reasons``...),
        the semantic similarity and the judge's verdict where the run has them.

        ``kind="noise"``: production against itself (a run with ``noise_floor``), the other side
        named ``noise_*``. An unknown run raises :class:`replay.errors.StoreError`. The frame's
        ``attrs`` say the run, the kind, the baseline's arm and what the comparison noted."""
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        if kind not in COMPARED_ARM:
            raise ValueError(f"kind must be {PAIR_CANDIDATE!r} or {PAIR_NOISE!r}, got {kind!r}")
        row = self.store.get_run(run)
        notes: list[str] = []
        pairs = measure_table(self.store, row, settings_for(row), notes, kind)
        add_semantic_similarity(self.store, row, pairs, notes, kind)
        attach_judge(self.store, row, pairs, kind)
        measures = pd.DataFrame(dict(pairs.table), index=range(len(pairs))) if len(pairs) else pd.DataFrame()
        base, other = baseline_arm(row), COMPARED_ARM[kind]
        outcomes = self._outcomes(row.id, base, other)
        frame = pd.DataFrame(outcomes, columns=_outcome_columns(outcomes, other))
        if len(measures):
            measures = measures.drop(columns=["metadata"], errors="ignore")
            measures = measures.rename(columns=lambda name: _side_name(name, other))
            clashing = [name for name in measures.columns if name in frame.columns and name != "request_id"]
            frame = frame.drop(columns=clashing).merge(measures, on="request_id", how="inner")  # the report's values
        else:
            frame = frame.iloc[0:0]
        frame = frame.sort_values("seq", kind="stable").reset_index(drop=True)
        frame.attrs.update({"run": row.id, "kind": kind, "baseline_arm": base, "notes": notes})
        return frame

    def _outcomes(self, run_id: str, base: str, other: str) -> list[dict[str, Any]]:
        """Per request answered on both sides: its place, metadata and each side's stored outcome."""
        import orjson

        by_request: dict[str, dict[str, Any]] = {}
        for result in self.store.results(run_id):
            arm = result["arm"]
            if arm not in (base, other):
                continue
            entry = by_request.get(result["request_id"])
            if entry is None:
                entry = by_request[result["request_id"]] = {"request_id": result["request_id"], "seq": result["seq"]}
                metadata = orjson.loads(result["metadata_json"]) if result["metadata_json"] else {}
                entry.update({f"metadata.{key}": value for key, value in metadata.items()})
            prefix = "baseline_" if arm == base else f"{other}_"
            entry.update({prefix + name: result[name] for name in ARM_COLUMNS})
            entry[f"has_{prefix}"] = True
        both = ("has_baseline_", f"has_{other}_")
        return [{key: value for key, value in entry.items() if key not in both}
                for entry in by_request.values() if all(entry.get(key) for key in both)]  # fmt: skip


def _outcome_columns(outcomes: list[dict[str, Any]], other: str) -> list[str]:
    metadata = sorted({key for entry in outcomes for key in entry if key.startswith("metadata.")})
    sides = [f"{prefix}{name}" for name in ARM_COLUMNS for prefix in ("baseline_", f"{other}_")]
    return ["request_id", "seq", *metadata, *sides]


def _side_name(name: str, other: str) -> str:
    for prefix, side in SIDES.items():
        if name.startswith(prefix):
            return side.format(other=other) + name[len(prefix):]
    return name


def _utc(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
