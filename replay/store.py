"""The run store: SQLite (WAL), the only state shared between commands.

Every outcome is committed as it completes, so a ``kill -9`` loses at most the
requests in flight, and ``--resume`` re-sends only what has no stored outcome.
No API key or Authorization header is ever written here: runs hold the scenario
snapshot, which names environment variables, never their values.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sqlite3
import time
import urllib.parse
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, TypeVar

from replay import __version__
from replay import fastjson
from replay.errors import RunInUse, StoreError, StoreWriteError
from replay.owners import ABANDONED, Owner
from replay.types import PAIR_CANDIDATE, PAIR_NOISE, LogRecord, Outcome

DEFAULT_STORE = os.path.join(".replay", "replay.db")

MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []
migration = MIGRATIONS.append
F = TypeVar("F", bound=Callable[..., Any])


def _writes(method: F) -> F:
    """A write the store may refuse (disk full, read-only file, an altered schema) raises
    :class:`StoreWriteError` naming the store and SQLite's reason, never a bare sqlite3 error."""

    @functools.wraps(method)
    def write(self: "Store", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreWriteError(f"{self.path}: cannot write to the store ({exc})") from exc

    return write  # type: ignore[return-value]


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    _statements(
        db,
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            scenario_json TEXT NOT NULL,
            scenario_hash TEXT NOT NULL,
            tool_version TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            status TEXT NOT NULL,
            planned INTEGER,
            message TEXT
        );
        CREATE TABLE cases (
            run_id TEXT NOT NULL REFERENCES runs(id),
            request_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            request_json TEXT NOT NULL,
            metadata_json TEXT NOT NULL,
            PRIMARY KEY (run_id, request_id)
        );
        CREATE TABLE results (
            run_id TEXT NOT NULL REFERENCES runs(id),
            request_id TEXT NOT NULL,
            arm TEXT NOT NULL,
            status TEXT NOT NULL,
            http_status INTEGER,
            error_class TEXT,
            error_message TEXT,
            text TEXT,
            tool_calls_json TEXT,
            refusal TEXT,
            finish_reason TEXT,
            latency_ms REAL,
            ttft_ms REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            tokens_estimated INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            attempts INTEGER NOT NULL,
            attempts_json TEXT NOT NULL,
            params_json TEXT NOT NULL,
            model TEXT,
            system_fingerprint TEXT,
            completed_at REAL NOT NULL,
            PRIMARY KEY (run_id, request_id, arm)
        );
        """,
    )


@migration
def m002_comparisons_and_reviews(db: sqlite3.Connection) -> None:
    """Per-pair comparisons (recomputed when the comparison settings change) and human reviews."""
    _statements(
        db,
        """
        CREATE TABLE comparisons (
            run_id TEXT NOT NULL REFERENCES runs(id),
            request_id TEXT NOT NULL,
            baseline_arm TEXT NOT NULL,
            spec_digest TEXT NOT NULL,
            divergence REAL NOT NULL,
            measures_json TEXT NOT NULL,
            PRIMARY KEY (run_id, request_id)
        );
        CREATE TABLE review_items (
            run_id TEXT NOT NULL REFERENCES runs(id),
            item_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            candidate_is TEXT NOT NULL,
            exported_at REAL NOT NULL,
            PRIMARY KEY (run_id, item_id)
        );
        CREATE TABLE reviews (
            run_id TEXT NOT NULL REFERENCES runs(id),
            item_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            verdict TEXT NOT NULL,
            comment TEXT,
            imported_at REAL NOT NULL,
            PRIMARY KEY (run_id, item_id, reviewer)
        );
        """,
    )


@migration
def m003_indexes_for_reports(db: sqlite3.Connection) -> None:
    """Counting outcomes per arm and status, and comparisons per settings digest, from the
    indexes alone, without reading whole rows."""
    _statements(
        db,
        """
        CREATE INDEX IF NOT EXISTS results_by_arm_status ON results(run_id, arm, status);
        CREATE INDEX IF NOT EXISTS comparisons_by_digest ON comparisons(run_id, spec_digest);
        """,
    )


@migration
def m004_run_owners(db: sqlite3.Connection) -> None:
    """Who is running a run: a lease that the owner renews (``heartbeat_at``) and releases on
    any exit; a lease whose process is dead, or that was not renewed in ``replay.owners.LEASE_S``, is free."""
    _statements(
        db,
        """
        CREATE TABLE IF NOT EXISTS run_owners (
            run_id TEXT PRIMARY KEY REFERENCES runs(id),
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            token TEXT NOT NULL,
            heartbeat_at REAL NOT NULL
        );
        """,
    )


@migration
def m005_case_digests(db: sqlite3.Connection) -> None:
    """What identifies each case's request (:func:`request_digest`), so that a resume notices
    a log edited since the run started. Cases stored before this have none."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(cases)")}
    if "request_digest" not in columns:
        db.execute("ALTER TABLE cases ADD COLUMN request_digest TEXT")


@migration
def m006_comparator_digests(db: sqlite3.Connection) -> None:
    """The digest of each comparator's options a comparison was made under (a JSON object), so
    a change of one option recomputes that comparator's measures only. Older rows have none."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(comparisons)")}
    if "comparator_digests" not in columns:
        db.execute("ALTER TABLE comparisons ADD COLUMN comparator_digests TEXT")


@migration
def m007_judge_verdicts(db: sqlite3.Connection) -> None:
    """The judge's verdicts, keyed by everything that shaped them (``replay.judge.key``), so
    no run pays twice for one; and which of them each run's pairs (of each kind: the
    candidate's, production's own) came to, in which order."""
    _statements(
        db,
        """
        CREATE TABLE IF NOT EXISTS judge_verdicts (
            verdict_key TEXT PRIMARY KEY,
            winner TEXT NOT NULL,
            reason TEXT,
            attempts INTEGER NOT NULL,
            cost_usd REAL,
            judge_model TEXT NOT NULL,
            judged_at REAL NOT NULL
        );
        CREATE TABLE IF NOT EXISTS judge_pairs (
            run_id TEXT NOT NULL REFERENCES runs(id),
            kind TEXT NOT NULL,
            request_id TEXT NOT NULL,
            turn INTEGER NOT NULL,
            candidate_first INTEGER NOT NULL,
            verdict_key TEXT,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            PRIMARY KEY (run_id, kind, request_id, turn)
        );
        """,
    )


@migration
def m008_embeddings(db: sqlite3.Connection) -> None:
    """Embedding vectors by model and digest of the text embedded (float32 blobs, shared by every
    run: a text embedded once is never sent again), and each pair's cosine under a model, by the
    pair's kind (the candidate's, or the noise floor's), NULL where an arm did not answer."""
    _statements(
        db,
        """
        CREATE TABLE IF NOT EXISTS embeddings (
            model TEXT NOT NULL,
            text_digest TEXT NOT NULL,
            dims INTEGER NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model, text_digest)
        );
        CREATE TABLE IF NOT EXISTS pair_similarities (
            run_id TEXT NOT NULL REFERENCES runs(id),
            request_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            model TEXT NOT NULL,
            baseline_digest TEXT,
            candidate_digest TEXT,
            cosine REAL,
            PRIMARY KEY (run_id, request_id, kind, model)
        );
        """,
    )


@migration
def m009_noise_comparisons(db: sqlite3.Connection) -> None:
    """The comparisons of production with itself (the noise floor's pairs), kept apart from
    the candidate's so that every query of those stays as it is."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS noise_comparisons (run_id TEXT NOT NULL REFERENCES runs(id),"
        " request_id TEXT NOT NULL, baseline_arm TEXT NOT NULL, spec_digest TEXT NOT NULL, divergence REAL NOT NULL,"
        " measures_json TEXT NOT NULL, comparator_digests TEXT, PRIMARY KEY (run_id, request_id))"
    )


LOSSY_ROWS = "instr(params_json, '\"lossy\"') > 0"
"""The rows :func:`m010_lossy_outcomes` indexes; a query names them with this same expression to use the index."""


@migration
def m010_lossy_outcomes(db: sqlite3.Connection) -> None:
    """The outcomes whose request lost something in adapting it to the arm's API (``params.lossy``),
    indexed apart: a report counts them without reading every result (0.15 s per 100,000 pairs)."""
    db.execute(f"CREATE INDEX IF NOT EXISTS results_lossy ON results(run_id) WHERE {LOSSY_ROWS}")


COMPARISON_TABLES = {PAIR_CANDIDATE: "comparisons", PAIR_NOISE: "noise_comparisons"}
"""Where each kind of pair's comparisons are stored."""


@migration
def m012_sample_weights_and_mix(db: sqlite3.Connection) -> None:
    """Each case's weight (with ``sample.dedupe``, the sampled records its request stands for; 1
    otherwise), and the sample's traffic mix next to the whole log's, gathered by the run's first
    pass, so that a report prints it without the log."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(cases)")}
    if "weight" not in columns:
        db.execute("ALTER TABLE cases ADD COLUMN weight INTEGER NOT NULL DEFAULT 1")
    db.execute("CREATE TABLE IF NOT EXISTS run_mix (run_id TEXT PRIMARY KEY REFERENCES runs(id), mix_json TEXT NOT NULL)")


def request_digest(request: dict[str, Any]) -> str:
    """The request body as JSON with sorted keys, hashed: the same request whatever the key
    order or spacing of the log line it was read from."""
    import orjson

    body = orjson.dumps(request, default=str, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _statements(db: sqlite3.Connection, script: str) -> None:
    """Run each statement inside the caller's transaction (``executescript`` would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@dataclass(frozen=True)
class RunRow:
    id: str
    name: str
    scenario: dict[str, Any]
    scenario_hash: str
    tool_version: str
    started_at: float
    ended_at: float | None
    status: str
    planned: int | None
    message: str | None


RESULT_COLUMNS = (
    "request_id", "arm", "status", "http_status", "error_class", "error_message", "text",
    "tool_calls_json", "refusal", "finish_reason", "latency_ms", "ttft_ms", "prompt_tokens",
    "completion_tokens", "tokens_estimated", "cost_usd", "attempts", "attempts_json",
    "params_json", "model", "system_fingerprint", "completed_at",
)  # fmt: skip


_INSERT_RESULT = (
    f"INSERT OR REPLACE INTO results (run_id, {', '.join(RESULT_COLUMNS)})"
    f" VALUES (?, {', '.join('?' for _ in RESULT_COLUMNS)})"
)


_UPSERT_JUDGE_PAIR = (
    "INSERT INTO judge_pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, kind, request_id, turn) DO UPDATE SET"
    " candidate_first = excluded.candidate_first, verdict_key = excluded.verdict_key, error = excluded.error,"
    " attempts = excluded.attempts + CASE WHEN judge_pairs.verdict_key = excluded.verdict_key THEN judge_pairs.attempts ELSE 0 END,"
    " cost_usd = COALESCE(excluded.cost_usd, 0) + CASE WHEN judge_pairs.verdict_key = excluded.verdict_key"
    " THEN COALESCE(judge_pairs.cost_usd, 0) ELSE 0 END"
)
"""One order of one pair judged again (an error retried, a resume finding its verdict stored):
what the run paid for the same verdict before is kept, added to, never forgotten."""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class Store:
    def __init__(self, path: str = DEFAULT_STORE, create: bool = True, read_only: bool = False) -> None:
        """Open the store at ``path``, creating it when ``create`` (``replay run``); commands that
        only read pass ``create=False``, so that a mistyped path says so instead of yielding an
        empty store. A store that cannot be written (a read-only filesystem or file) opens read-only,
        and so does any with ``read_only`` (the Python API: nothing migrated, nothing written)."""
        self.path = path
        self.read_only = False
        if not create and not os.path.isfile(path):
            what = "is a directory, not a store" if os.path.isdir(path) else "no store there"
            raise StoreError(f"{path}: {what} ('replay run' creates one; --store or REPLAY_STORE names another)")
        try:
            if create or (_writable(path) and not read_only):
                self._open(path)
            else:
                self._open_read_only(path)
            self._has_owners = self._has_table("run_owners")
            self._has_embeddings = self._has_table("pair_similarities")  # a read-only store of an older version has none
            self._has_weights = self._has_table("run_mix")  # m012 added both
            self._lossy_index = " INDEXED BY results_lossy" if self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'results_lossy'").fetchone() else ""
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{path}: cannot open the store ({exc})") from None

    def _open(self, path: str) -> None:
        if path != ":memory:":  # SQLite's own name for a database in memory (tests, notebooks)
            make_private_folders(os.path.dirname(os.path.abspath(path)))
            make_private_file(path)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        for companion in (f"{path}-wal", f"{path}-shm"):  # SQLite gives them the store's mode; older ones may differ
            if os.path.exists(companion):
                make_private_file(companion)

    def _open_read_only(self, path: str) -> None:
        """Read-only; where SQLite cannot even keep its shared-memory file next to the store
        (a read-only filesystem), as immutable: nothing else can be writing it there."""
        self.read_only = True
        uri = "file:" + urllib.parse.quote(os.path.abspath(path))
        for mode in ("?mode=ro", "?immutable=1"):
            self.db = sqlite3.connect(uri + mode, uri=True, isolation_level=None, check_same_thread=False)
            try:
                done = {row[0] for row in self.db.execute("SELECT name FROM _migrations")}
            except sqlite3.OperationalError as exc:
                self.db.close()
                if mode == "?immutable=1" or "no such table" in str(exc):
                    raise
                continue
            _refuse_newer(path, done)
            return

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY)")
        done = {row[0] for row in self.db.execute("SELECT name FROM _migrations")}
        _refuse_newer(self.path, done)
        for step in MIGRATIONS:
            if step.__name__ not in done:
                with self.transaction():
                    # another process may have run it since: look again under the write lock
                    if self.db.execute("SELECT 1 FROM _migrations WHERE name = ?", (step.__name__,)).fetchone():
                        continue
                    step(self.db)
                    self.db.execute("INSERT INTO _migrations VALUES (?)", (step.__name__,))

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    def transaction(self) -> sqlite3.Connection:
        """A write transaction. IMMEDIATE takes the write lock at once, so that a second writer
        (comparison workers, a report next to a run) waits out ``busy_timeout`` instead of
        failing when a deferred read has to be upgraded to a write."""
        self.db.execute("BEGIN IMMEDIATE")
        return _Tx(self.db)  # type: ignore[return-value]

    def close(self) -> None:
        self.db.close()

    # --- runs --------------------------------------------------------------------

    @_writes
    def create_run(self, run_id: str, name: str, scenario: dict[str, Any], scenario_hash: str) -> None:
        self.db.execute(
            "INSERT INTO runs (id, name, scenario_json, scenario_hash, tool_version, started_at, status)"
            " VALUES (?, ?, ?, ?, ?, ?, 'running')",
            (run_id, name, json.dumps(scenario, default=str), scenario_hash, __version__, time.time()),
        )

    @_writes
    def set_status(self, run_id: str, status: str, message: str | None = None, ended: bool = True) -> None:
        self.db.execute(
            "UPDATE runs SET status = ?, message = ?, ended_at = ? WHERE id = ?",
            (status, message, time.time() if ended else None, run_id),
        )

    @_writes
    def set_planned(self, run_id: str, planned: int) -> None:
        self.db.execute("UPDATE runs SET planned = ? WHERE id = ?", (planned, run_id))

    def runs(self) -> list[RunRow]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY started_at DESC, id DESC").fetchall()
        return [self._run_row(row) for row in rows]

    def _run_row(self, row: tuple[Any, ...]) -> RunRow:
        run = _run_row(row)
        if run.status == "running" and self.owner(run.id) is None:
            return replace(run, status=ABANDONED)
        return run

    # --- owners ------------------------------------------------------------------

    def owner(self, run_id: str) -> Owner | None:
        """The live process that owns the run, if any."""
        if not self._has_owners:
            return None
        row = self.db.execute("SELECT pid, host, token, heartbeat_at FROM run_owners WHERE run_id = ?", (run_id,)).fetchone()
        owner = Owner(*row) if row else None
        return owner if owner is not None and owner.alive() else None

    @_writes
    def claim(self, run_id: str) -> Owner:
        """Own the run, or raise :class:`RunInUse` while another live process owns it."""
        me = Owner.this_process()
        with self.transaction() as db:  # the write lock: two processes cannot both see it free
            row = db.execute("SELECT pid, host, token, heartbeat_at FROM run_owners WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None and Owner(*row).alive():
                raise RunInUse(f"run {run_id} is being run by another process ({Owner(*row).describe()}):"
                               " wait for it to end, or stop it, then resume")  # fmt: skip
            db.execute("INSERT OR REPLACE INTO run_owners VALUES (?, ?, ?, ?, ?)", (run_id, *me.values()))
        return me

    @_writes
    def heartbeat(self, run_id: str, owner: Owner) -> bool:
        """Renew the lease; False if another process has taken the run over meanwhile."""
        cursor = self.db.execute(
            "UPDATE run_owners SET heartbeat_at = ? WHERE run_id = ? AND token = ?", (time.time(), run_id, owner.token)
        )
        return cursor.rowcount == 1

    @_writes
    def release(self, run_id: str, owner: Owner) -> None:
        self.db.execute("DELETE FROM run_owners WHERE run_id = ? AND token = ?", (run_id, owner.token))

    def get_run(self, ref: str) -> RunRow:
        """A run by id, by unique id prefix, or ``latest``."""
        if ref == "latest":
            row = self.db.execute("SELECT * FROM runs ORDER BY started_at DESC, id DESC LIMIT 1").fetchone()
            if row is None:
                raise StoreError(f"{self.path}: no runs yet")
            return _run_row(row)
        # a prefix, compared as text: LIKE would let '_' and '%' in it match anything
        rows = self.db.execute("SELECT * FROM runs WHERE substr(id, 1, ?) = ?", (len(ref), ref)).fetchall()
        exact = [row for row in rows if row[0] == ref]
        if exact:
            return self._run_row(exact[0])
        if len(rows) == 1:
            return self._run_row(rows[0])
        if rows:
            raise StoreError(f"run id '{ref}' is ambiguous: {', '.join(row[0] for row in rows[:5])}")
        raise StoreError(f"{self.path}: no run '{ref}' (see 'replay runs')")

    # --- cases and results --------------------------------------------------------

    @_writes
    def add_cases(self, run_id: str, cases: list[tuple[int, LogRecord]], weights: dict[str, int] | None = None) -> None:
        """``weights``: request id -> the sampled records the case stands for (``sample.dedupe``); 1 if unlisted."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO cases (run_id, request_id, seq, request_json, metadata_json, request_digest)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, r.id, seq, fastjson.dumps(r.request), fastjson.dumps(r.metadata), request_digest(r.request))
                 for seq, r in cases],
            )  # fmt: skip
            if weights:
                db.executemany("UPDATE cases SET weight = ? WHERE run_id = ? AND request_id = ?",
                               [(weights[r.id], run_id, r.id) for _, r in cases if r.id in weights])  # fmt: skip

    def case_weights(self, run_id: str) -> dict[str, int]:
        """request id -> weight, for the cases weighing more than 1 (none in a store without weights)."""
        if not self._has_weights:
            return {}
        rows = self.db.execute("SELECT request_id, weight FROM cases WHERE run_id = ? AND weight != 1", (run_id,))
        return dict(rows.fetchall())

    @_writes
    def set_mix(self, run_id: str, mix: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO run_mix VALUES (?, ?)", (run_id, json.dumps(mix, sort_keys=True)))

    def mix(self, run_id: str) -> dict[str, Any] | None:
        """The run's traffic mix (:meth:`replay.sampling.Selector.mix`), None if it stored none."""
        if not self._has_table("run_mix"):
            return None
        row = self.db.execute("SELECT mix_json FROM run_mix WHERE run_id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def case_digests(self, run_id: str) -> dict[str, str | None]:
        """request id -> digest of its stored request (None for cases stored before digests were)."""
        rows = self.db.execute("SELECT request_id, request_digest FROM cases WHERE run_id = ?", (run_id,))
        return dict(rows.fetchall())

    @_writes
    def forget(self, run_id: str, request_ids: list[str]) -> None:
        """Drop these requests from the run (case, outcomes, comparisons): a resume sends them afresh."""
        where, args = _id_range(None, None, request_ids)
        with self.transaction() as db:
            for table in ("pair_similarities", "comparisons", "noise_comparisons", "judge_pairs", "results", "cases"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?{where}", (run_id, *args))

    @_writes
    def add_outcomes(self, run_id: str, outcomes: list[Outcome]) -> None:
        """Commit outcomes in one transaction (one fsync-free WAL commit for the lot)."""
        with self.transaction() as db:
            db.executemany(_INSERT_RESULT, [(run_id, *outcome_values(outcome)) for outcome in outcomes])

    def done_keys(self, run_id: str) -> set[tuple[str, str]]:
        rows = self.db.execute("SELECT request_id, arm FROM results WHERE run_id = ?", (run_id,))
        return {(request_id, arm) for request_id, arm in rows}

    def results(self, run_id: str) -> Iterator[dict[str, Any]]:
        cursor = self.db.execute(
            f"SELECT r.{', r.'.join(RESULT_COLUMNS)}, c.seq, c.metadata_json FROM results r"
            " LEFT JOIN cases c ON c.run_id = r.run_id AND c.request_id = r.request_id"
            " WHERE r.run_id = ? ORDER BY c.seq, r.arm",
            (run_id,),
        )
        names = [*RESULT_COLUMNS, "seq", "metadata_json"]
        for row in cursor:
            yield dict(zip(names, row))

    def counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """Per arm: how many outcomes are ok and how many are errors."""
        counts: dict[str, dict[str, int]] = {}
        rows = self.db.execute(
            "SELECT arm, status, COUNT(*) FROM results WHERE run_id = ? GROUP BY arm, status", (run_id,)
        )
        for arm, status, n in rows:
            counts.setdefault(arm, {})[status] = n
        return counts

    def estimated_counts(self, run_id: str) -> dict[str, int]:
        """Per arm: the answers whose tokens were counted locally (the endpoint sent no usage), where any were."""
        rows = self.db.execute(
            "SELECT arm, COUNT(*) FROM results WHERE run_id = ? AND tokens_estimated = 1 GROUP BY arm ORDER BY arm",
            (run_id,),
        )
        return {arm: n for arm, n in rows}

    def priced_arms(self, run_id: str) -> set[str]:
        """The arms every answer of which has a cost (priced, or reported by the endpoint)."""
        rows = self.db.execute(
            "SELECT arm FROM results WHERE run_id = ? AND status = 'ok' GROUP BY arm HAVING COUNT(cost_usd) = COUNT(*)",
            (run_id,),
        )
        return {arm for (arm,) in rows}

    def lossy_counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """Per arm: each lossy step of adapting a request to the arm's API (``params.lossy``), and on how
        many requests; through the index of such rows (a read-only store of an older version has none: a scan)."""
        rows = self.db.execute(
            f"SELECT arm, j.value, COUNT(*) FROM results{self._lossy_index}, json_each(params_json, '$.lossy') j"
            f" WHERE run_id = ? AND {LOSSY_ROWS} GROUP BY arm, j.value ORDER BY arm, COUNT(*) DESC, j.value",
            (run_id,),
        )
        counts: dict[str, dict[str, int]] = {}
        for arm, note, n in rows:
            counts.setdefault(arm, {})[str(note)] = n
        return counts

    def spent(self, run_id: str) -> float:
        """What the run paid: its arms' requests and its judge's."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM results WHERE run_id = ? AND arm != 'logged'", (run_id,)
        ).fetchone()
        return float(row[0]) + self.judge_spent(run_id)

    # --- the judge ------------------------------------------------------------------

    def judge_spent(self, run_id: str) -> float:
        if not self._has_table("judge_pairs"):
            return 0.0
        (spent,) = self.db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM judge_pairs WHERE run_id = ?", (run_id,)).fetchone()
        return float(spent)

    def judge_verdict(self, verdict_key: str) -> tuple[str, str | None] | None:
        """(winner, reason) stored under the key, or None: that verdict was never given."""
        row = self.db.execute("SELECT winner, reason FROM judge_verdicts WHERE verdict_key = ?", (verdict_key,)).fetchone()
        return (row[0], row[1]) if row else None

    @_writes
    def add_judgements(self, run_id: str, verdicts: list[tuple[str, str, str | None, int, float | None, str]],
                       pairs: list[tuple[str, int, bool, str | None, str | None, int, float | None]],
                       kind: str = PAIR_CANDIDATE) -> None:  # fmt: skip
        """``verdicts``: (verdict_key, winner, reason, attempts, cost_usd, judge_model), new verdicts;
        ``pairs``: (request_id, turn, candidate_first, verdict_key, error, attempts, cost_usd), what
        each of the run's pairs came to in each order (a key without a verdict with an error; no key
        for identical answers, a tie without a call); attempts and cost add to what the run already
        paid for the same key. One transaction."""
        now = time.time()
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO judge_verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(*verdict, now) for verdict in verdicts])  # fmt: skip
            db.executemany(_UPSERT_JUDGE_PAIR, [(run_id, kind, rid, turn, int(first), key, error, attempts, cost)
                                                for rid, turn, first, key, error, attempts, cost in pairs])  # fmt: skip

    def judgements(self, run_id: str, request_id: str | None = None, kind: str = PAIR_CANDIDATE) -> list[tuple[Any, ...]]:
        """(request_id, turn, candidate_first, winner, reason, error, judge_model, attempts, cost_usd) of
        the run's judged pairs, by request id and turn: ``winner`` None with an error (or, with
        neither, for identical answers: a tie without a call, ``judge_model`` None too); one
        request's only, with ``request_id``. ``candidate_first`` is 1 or 0."""
        if not self._has_table("judge_pairs"):
            return []
        return self.db.execute(
            "SELECT p.request_id, p.turn, p.candidate_first, v.winner, v.reason,"
            " CASE WHEN v.winner IS NULL AND p.verdict_key IS NOT NULL THEN COALESCE(p.error, 'no verdict stored') END,"
            " v.judge_model, p.attempts, p.cost_usd"
            " FROM judge_pairs p LEFT JOIN judge_verdicts v ON v.verdict_key = p.verdict_key"
            " WHERE p.run_id = ? AND p.kind = ?" + (" AND p.request_id = ?" if request_id is not None else "") +
            " ORDER BY p.request_id, p.turn",
            (run_id, kind, *((request_id,) if request_id is not None else ())),
        ).fetchall()  # fmt: skip

    def judged_ids(self, run_id: str, turns: int = 2, kind: str = PAIR_CANDIDATE) -> set[str]:
        """The run's pairs with a verdict in each of its ``turns`` orders (or a tie without a call):
        the rest, with an error or an order never judged, are what ``replay judge`` and a resume
        judge again."""
        if not self._has_table("judge_pairs"):
            return set()
        rows = self.db.execute(
            "SELECT p.request_id FROM judge_pairs p LEFT JOIN judge_verdicts v ON v.verdict_key = p.verdict_key"
            " WHERE p.run_id = ? AND p.kind = ? GROUP BY p.request_id"
            " HAVING SUM(CASE WHEN p.verdict_key IS NOT NULL AND v.winner IS NULL THEN 1 ELSE 0 END) = 0"
            " AND (COUNT(*) >= ? OR SUM(p.verdict_key IS NULL) > 0)",
            (run_id, kind, turns),
        )
        return {row[0] for row in rows}


    # --- comparisons and reviews ---------------------------------------------------

    def cases(
        self, run_id: str, first: str | None = None, last: str | None = None, only: list[str] | None = None
    ) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """request id -> (request body, metadata), for ids from ``first`` to ``last`` when given,
        or for the ids listed in ``only``."""
        import orjson  # a large run's request bodies decode several times faster than with json

        where, args = _id_range(first, last, only)
        rows = self.db.execute(
            f"SELECT request_id, request_json, metadata_json FROM cases WHERE run_id = ?{where}", (run_id, *args)
        )
        return {rid: (orjson.loads(req), orjson.loads(meta)) for rid, req, meta in rows}

    def case(self, run_id: str, request_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        row = self.db.execute(
            "SELECT request_json, metadata_json FROM cases WHERE run_id = ? AND request_id = ?", (run_id, request_id)
        ).fetchone()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def result_rows(self, run_id: str, request_id: str) -> dict[str, dict[str, Any]]:
        """arm -> stored result row, for one request."""
        cursor = self.db.execute(
            f"SELECT {', '.join(RESULT_COLUMNS)} FROM results WHERE run_id = ? AND request_id = ?", (run_id, request_id)
        )
        return {row[1]: dict(zip(RESULT_COLUMNS, row)) for row in cursor}

    def answers(
        self, run_id: str, arms: tuple[str, ...], columns: tuple[str, ...], first: str | None = None,
        last: str | None = None, only: list[str] | None = None,
    ) -> Iterator[tuple[Any, ...]]:  # fmt: skip
        """The given result columns of the given arms as tuples, a request's rows together (ordered
        by request id, then arm): what comparisons read, without the attempts and parameters.
        ``first`` and ``last`` bound the request ids, so that workers can each read their own share;
        ``only`` lists them instead (a few scattered ids must not cost reading all between)."""
        unknown = set(columns) - set(RESULT_COLUMNS)
        if unknown:
            raise ValueError(f"not result columns: {sorted(unknown)}")
        marks = ", ".join("?" for _ in arms)
        where, args = _id_range(first, last, only)
        return self.db.execute(
            f"SELECT {', '.join(columns)} FROM results WHERE run_id = ? AND arm IN ({marks}){where}"
            " ORDER BY request_id, arm",
            (run_id, *arms, *args),
        )

    def session_cases(self, run_id: str, key: str) -> list[tuple[str, str, int, int]]:
        """(session, request id, history length, position) of the run's cases whose metadata
        names a conversation under ``key``, in conversation order (see :mod:`replay.conversations`).
        Read by SQLite's JSON functions: a run without sessions decodes nothing."""
        path = '$."' + key.replace('"', '""') + '"'
        rows = self.db.execute(
            "SELECT s, request_id, n, seq FROM (SELECT json_extract(metadata_json, ?) AS s, request_id, seq,"
            " COALESCE(json_array_length(request_json, '$.messages'), json_array_length(request_json, '$.input'), 0) AS n"
            " FROM cases WHERE run_id = ?) WHERE s IS NOT NULL AND s != '' ORDER BY s, n, seq",
            (path, run_id),
        )
        return [(str(session), request_id, n, seq) for session, request_id, n, seq in rows]

    def pair_ids(self, run_id: str, base_arm: str, candidate_arm: str) -> list[str]:
        """Request ids answered on both arms, in order."""
        rows = self.db.execute(
            "SELECT c.request_id FROM results c JOIN results b ON b.run_id = c.run_id AND b.request_id = c.request_id"
            " WHERE c.run_id = ? AND c.arm = ? AND b.arm = ? ORDER BY c.request_id",
            (run_id, candidate_arm, base_arm),
        )
        return [row[0] for row in rows]

    def pair_count(self, run_id: str, base_arm: str, candidate_arm: str) -> int:
        """Requests answered on both arms (each has, or will have, one comparison)."""
        (pairs,) = self.db.execute(
            "SELECT COUNT(*) FROM results c JOIN results b ON b.run_id = c.run_id AND b.request_id = c.request_id"
            " WHERE c.run_id = ? AND c.arm = ? AND b.arm = ?",
            (run_id, candidate_arm, base_arm),
        ).fetchone()
        return int(pairs)

    def comparisons_with_digest(self, run_id: str, digest: str, kind: str = PAIR_CANDIDATE) -> int:
        row = self.db.execute(
            f"SELECT COUNT(*) FROM {COMPARISON_TABLES[kind]} WHERE run_id = ? AND spec_digest = ?", (run_id, digest)
        ).fetchone()
        return int(row[0])

    def add_comparisons(self, run_id: str, rows: list[tuple[str, str, str, float, str, str]],
                        kind: str = PAIR_CANDIDATE) -> None:  # fmt: skip
        """Rows of (request_id, baseline_arm, spec_digest, divergence, measures_json, comparator_digests_json)."""
        with self.transaction() as db:
            db.executemany(f"INSERT OR REPLACE INTO {COMPARISON_TABLES[kind]} VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(run_id, *r) for r in rows])  # fmt: skip

    def comparisons_to_refresh(self, run_id: str, digest: str, kind: str = PAIR_CANDIDATE) -> Iterator[tuple[str, str, str]]:
        """(request_id, comparator_digests_json, measures_json) of the comparisons made under other
        settings than ``digest`` that know their comparators' digests: those can be refreshed
        comparator by comparator."""
        yield from self.db.execute(
            f"SELECT request_id, comparator_digests, measures_json FROM {COMPARISON_TABLES[kind]}"
            " WHERE run_id = ? AND spec_digest != ? AND comparator_digests IS NOT NULL ORDER BY request_id",
            (run_id, digest),
        )

    def comparisons(self, run_id: str, digest: str | None = None, kind: str = PAIR_CANDIDATE) -> Iterator[tuple[str, str]]:
        """(request_id, measures_json) by request id (the order comparisons are made in),
        only those made under the settings ``digest`` when given."""
        table = COMPARISON_TABLES[kind]
        if digest is None:
            yield from self.db.execute(
                f"SELECT request_id, measures_json FROM {table} WHERE run_id = ? ORDER BY request_id", (run_id,)
            )
            return
        yield from self.db.execute(
            f"SELECT request_id, measures_json FROM {table} WHERE run_id = ? AND spec_digest = ? ORDER BY request_id",
            (run_id, digest),
        )

    def drift(self, run_id: str, fresh_arm: str) -> tuple[int, int, int, int, int, int]:
        """Production's fresh answers (``fresh_arm``) against the logged ones, where both answered:
        (pairs, texts that differ, pairs whose system_fingerprint both sides know, of those the
        ones that differ, pairs whose model both sides know, of those the ones that differ)."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(COALESCE(f.text, '') != COALESCE(l.text, '') OR"
            " COALESCE(f.tool_calls_json, '') != COALESCE(l.tool_calls_json, '')), 0),"
            " COALESCE(SUM(f.system_fingerprint IS NOT NULL AND l.system_fingerprint IS NOT NULL), 0),"
            " COALESCE(SUM(f.system_fingerprint != l.system_fingerprint), 0),"
            " COALESCE(SUM(f.model IS NOT NULL AND l.model IS NOT NULL), 0), COALESCE(SUM(f.model != l.model), 0)"
            " FROM results f JOIN results l ON l.run_id = f.run_id AND l.request_id = f.request_id"
            " WHERE f.run_id = ? AND f.arm = ? AND l.arm = 'logged' AND f.status = 'ok' AND l.status = 'ok'",
            (run_id, fresh_arm),
        ).fetchone()
        return tuple(int(value) for value in row)  # type: ignore[return-value]

    @_writes
    def add_review_items(self, run_id: str, items: list[tuple[str, str, str]]) -> None:
        """Rows of (item_id, request_id, candidate_is 'A' or 'B'): the blinding key."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO review_items VALUES (?, ?, ?, ?, ?)", [(run_id, *item, now) for item in items]
            )

    def review_key(self, item_id: str) -> tuple[str, str, str] | None:
        """(run_id, request_id, candidate_is) for an exported item id."""
        row = self.db.execute(
            "SELECT run_id, request_id, candidate_is FROM review_items WHERE item_id = ?", (item_id,)
        ).fetchone()
        return tuple(row) if row else None

    @_writes
    def add_reviews(self, rows: list[tuple[str, str, str, str, str, str | None]]) -> None:
        """Rows of (run_id, item_id, request_id, reviewer, verdict, comment)."""
        now = time.time()
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?)", [(*r, now) for r in rows])

    def reviews(self, run_id: str) -> list[tuple[str, str, str]]:
        """(request_id, reviewer, verdict) with verdict candidate, baseline or tie."""
        rows = self.db.execute("SELECT request_id, reviewer, verdict FROM reviews WHERE run_id = ?", (run_id,))
        return rows.fetchall()


    # --- embeddings ---------------------------------------------------------------------

    def embedded(self, model: str, digests: list[str]) -> set[str]:
        """Which of these text digests have a vector under ``model``."""
        if not self._has_embeddings or not digests:
            return set()
        rows = self.db.execute(
            "SELECT text_digest FROM embeddings WHERE model = ? AND text_digest IN (SELECT value FROM json_each(?))",
            (model, json.dumps(digests)),
        )
        return {row[0] for row in rows}

    def vectors(self, model: str, digests: list[str]) -> dict[str, bytes]:
        """text digest -> its float32 vector under ``model``, for those that have one."""
        if not self._has_embeddings or not digests:
            return {}
        rows = self.db.execute(
            "SELECT text_digest, vector FROM embeddings WHERE model = ? AND text_digest IN (SELECT value FROM json_each(?))",
            (model, json.dumps(digests)),
        )
        return dict(rows.fetchall())

    @_writes
    def add_vectors(self, model: str, rows: list[tuple[str, int, bytes]]) -> None:
        """Rows of (text digest, dimensions, float32 vector)."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", [(model, *row) for row in rows])

    @_writes
    def add_pair_similarities(self, run_id: str, model: str, rows: list[tuple[str, str | None, str | None, float | None]],
                              kind: str = PAIR_CANDIDATE) -> None:  # fmt: skip
        """Rows of (request id, baseline text digest, other text digest, cosine or None) of pairs of ``kind``."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO pair_similarities VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(run_id, request_id, kind, model, *rest) for request_id, *rest in rows])  # fmt: skip

    def pair_similarities(self, run_id: str, model: str, kind: str = PAIR_CANDIDATE) -> dict[str, float | None]:
        """request id -> the cosine of its pair of ``kind`` under ``model`` (None where an arm did not answer)."""
        if not self._has_embeddings:
            return {}
        rows = self.db.execute(
            "SELECT request_id, cosine FROM pair_similarities WHERE run_id = ? AND kind = ? AND model = ?",
            (run_id, kind, model),
        )
        return dict(rows.fetchall())


    # --- deleting runs -------------------------------------------------------------------

    def run_tables(self) -> list[str]:
        """Every table holding rows of a run (a ``run_id`` column): those of later migrations too."""
        names = [row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return [name for name in names
                if any(column[1] == "run_id" for column in self.db.execute(f"PRAGMA table_info({_quoted(name)})"))]  # fmt: skip

    def run_rows(self, run_ids: list[str]) -> dict[str, int]:
        """Table -> how many rows the runs hold there (``runs`` itself included), for what a deletion would remove."""
        marks = ", ".join("?" for _ in run_ids)
        counts = {"runs": len(run_ids)}
        for table in self.run_tables():
            (n,) = self.db.execute(f"SELECT COUNT(*) FROM {_quoted(table)} WHERE run_id IN ({marks})", run_ids).fetchone()
            counts[table] = int(n)
        for table, n in self._orphans(run_ids).items():
            counts[table] = n
        return counts

    def _orphans(self, run_ids: list[str]) -> dict[str, int]:
        """Cached rows only these runs use: judge verdicts no other run's pairs point to, vectors of
        texts no other run's pairs were embedded from."""
        marks = ", ".join("?" for _ in run_ids)
        counts: dict[str, int] = {}
        if self._has_table("judge_verdicts"):
            (counts["judge_verdicts"],) = self.db.execute(
                f"SELECT COUNT(*) FROM judge_verdicts WHERE verdict_key NOT IN (SELECT verdict_key FROM judge_pairs"
                f" WHERE verdict_key IS NOT NULL AND run_id NOT IN ({marks}))", run_ids).fetchone()  # fmt: skip
        if self._has_table("embeddings"):
            (counts["embeddings"],) = self.db.execute(
                f"SELECT COUNT(*) FROM embeddings e WHERE NOT EXISTS (SELECT 1 FROM pair_similarities p WHERE"
                f" p.run_id NOT IN ({marks}) AND p.model = e.model AND e.text_digest IN (p.baseline_digest, p.candidate_digest))",
                run_ids).fetchone()  # fmt: skip
        return counts

    @_writes
    def delete_runs(self, run_ids: list[str]) -> dict[str, int]:
        """Remove the runs and every row of theirs (and the cached verdicts and vectors only they
        used), in one transaction; a run a live process owns is refused (:class:`RunInUse`).
        Returns table -> rows removed. The freed pages still hold the text until :meth:`compact`."""
        marks = ", ".join("?" for _ in run_ids)
        self.db.execute("PRAGMA secure_delete = ON")  # freed cells are zeroed, even before the VACUUM
        with self.transaction() as db:  # the write lock: no process can claim one of them meanwhile
            for run_id in run_ids:
                owner = self.owner(run_id)
                if owner is not None:
                    raise RunInUse(f"run {run_id} is being run by another process ({owner.describe()}): stop it first")
            removed = self.run_rows(run_ids)
            if "judge_verdicts" in removed:
                db.execute(f"DELETE FROM judge_verdicts WHERE verdict_key NOT IN (SELECT verdict_key FROM judge_pairs"
                           f" WHERE verdict_key IS NOT NULL AND run_id NOT IN ({marks}))", run_ids)  # fmt: skip
            if "embeddings" in removed:
                db.execute(f"DELETE FROM embeddings WHERE NOT EXISTS (SELECT 1 FROM pair_similarities p WHERE"
                           f" p.run_id NOT IN ({marks}) AND p.model = embeddings.model"
                           " AND embeddings.text_digest IN (p.baseline_digest, p.candidate_digest))", run_ids)  # fmt: skip
            for table in self.run_tables():
                db.execute(f"DELETE FROM {_quoted(table)} WHERE run_id IN ({marks})", run_ids)
            db.execute(f"DELETE FROM runs WHERE id IN ({marks})", run_ids)
        return removed

    @_writes
    def compact(self) -> bool:
        """Rewrite the file without the freed pages (``VACUUM``), then copy the WAL into it and
        truncate the WAL to nothing: the deleted text is in neither file's bytes. False when another
        process was reading, so the WAL could not be truncated (its next checkpoint does it)."""
        self.db.execute("VACUUM")
        busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy

    def runs_started_before(self, cutoff: float) -> list[RunRow]:
        rows = self.db.execute("SELECT * FROM runs WHERE started_at < ? ORDER BY started_at, id", (cutoff,)).fetchall()
        return [self._run_row(row) for row in rows]


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type:
            self._rollback()
            return
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error:
            self._rollback()  # a failed COMMIT (disk full) leaves the transaction open
            raise

    def _rollback(self) -> None:
        if self.db.in_transaction:  # SQLite rolls back by itself after some errors
            self.db.execute("ROLLBACK")


PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


def make_private_folders(directory: str) -> None:
    """Create the store's folder and any missing parent, each readable by its owner only; a folder
    that exists is the user's and is left as it is."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_FOLDER)
        except FileExistsError:  # another process made it meanwhile
            continue


def make_private_file(path: str) -> None:
    """Create the file readable and writable by its owner only, or take group and other access
    away from one that exists (a store holds production traffic); a file owned by another user
    is left alone (only its owner may change it)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    except FileExistsError:
        stat = os.stat(path)
        mine = stat.st_uid == os.getuid() if hasattr(os, "getuid") else True
        if stat.st_mode & 0o077 and mine:
            with contextlib.suppress(OSError):  # a filesystem without modes: the store still opens
                os.chmod(path, PRIVATE_FILE)
        return
    os.close(fd)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _writable(path: str) -> bool:
    """SQLite writes the store and, in WAL mode, its -wal and -shm files beside it."""
    directory = os.path.dirname(os.path.abspath(path))
    return os.access(path, os.W_OK) and os.access(directory, os.W_OK)


def _refuse_newer(path: str, done: set[str]) -> None:
    """A store migrated by a newer replay may hold what this version would misread or break."""
    known = {step.__name__ for step in MIGRATIONS}
    newer = sorted(done - known)
    if newer:
        raise StoreError(
            f"{path}: the store was written by a newer version of replay (migration {newer[-1]};"
            f" replay {__version__} knows up to {MIGRATIONS[-1].__name__}): upgrade replay to use it"
        )


def _id_range(first: str | None, last: str | None, only: list[str] | None = None) -> tuple[str, tuple[str, ...]]:
    if only is not None:
        return " AND request_id IN (SELECT value FROM json_each(?))", (json.dumps(only),)
    if first is None or last is None:
        return "", ()
    return " AND request_id BETWEEN ? AND ?", (first, last)


def _run_row(row: tuple[Any, ...]) -> RunRow:
    return RunRow(
        id=row[0], name=row[1], scenario=json.loads(row[2]), scenario_hash=row[3], tool_version=row[4],
        started_at=row[5], ended_at=row[6], status=row[7], planned=row[8], message=row[9],
    )  # fmt: skip


def outcome_values(outcome: Outcome) -> tuple[Any, ...]:
    c = outcome.completion
    return (
        outcome.request_id,
        outcome.arm,
        outcome.status,
        outcome.http_status,
        outcome.error_class,
        outcome.error_message,
        c.text if c else None,
        fastjson.dumps([call.as_dict() for call in c.tool_calls]) if c and c.tool_calls else None,
        c.refusal if c else None,
        c.finish_reason if c else None,
        c.latency_ms if c else None,
        c.ttft_ms if c else None,
        c.usage.prompt_tokens if c else None,
        c.usage.completion_tokens if c else None,
        int(bool(c and c.usage.estimated)),
        outcome.cost_usd,
        len(outcome.attempts),
        fastjson.dumps([attempt.as_dict() for attempt in outcome.attempts]),
        fastjson.dumps(outcome.params),
        c.model if c else None,
        c.system_fingerprint if c else None,
        time.time(),
    )
