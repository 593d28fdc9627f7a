"""The replay engine: sampled log records → paced, retried requests → stored outcomes.

Data flows one way. A dispatcher streams the sampled records (constant memory) into
one bounded queue per arm; each arm has ``concurrency`` workers that send through the
arm's :class:`~replay.arm.ArmClient` (pacing, retries, every attempt recorded) and commit
each outcome as it completes. With a fresh baseline, each record goes to both arms
back to back, so both meet the same conditions. Never prints: progress goes to a
:class:`Reporter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import signal
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Iterator, Protocol, Sequence

from replay.arm import ArmClient, NotSent
from replay.config import Arm, Scenario
from replay.conversations import CLOSED_LOOP, Answer, ClosedLoop, Diverged, order_turns, session_of, with_request
from replay.errors import (
    BudgetExhausted,
    EndpointUnreachable,
    InputError,
    Interrupted,
    RunIncomplete,
    RunTakenOver,
    StoreFailed,
    StoreWriteError,
)
from replay.pricing import PriceTable
from replay.providers import Provider, get_provider
from replay.providers.openai_policy import PROMPT_KEYS
from replay.owners import HEARTBEAT_S, Owner
from replay.pipeline import PairKind, PairStage, PairTracker, StageServices
from replay.privacy import Marks, redactor_for
from replay.readers import ReadStats, check_not_empty, check_segment_keys, iter_records, resolve_log_paths
from replay.resume import check_log
from replay.sampling import (AllocationError, Selection, Selector, empty_sample_message, empty_window_message, select_units,
                             subsample)
from replay.store import Store, new_run_id
from replay.tokens import count_text_tokens, estimate_prompt_tokens
from replay.transforms import Rewriter, SpecError, TransformFailed
from replay.types import (
    ARM_CANDIDATE,
    ARM_LOGGED,
    ARM_NOISE,
    ARM_PRODUCTION,
    PAIR_CANDIDATE,
    PAIR_NOISE,
    Attempt,
    Completion,
    LogRecord,
    Outcome,
    Usage,
)

CASE_BATCH = 64
UNREACHABLE_AFTER = 3
"""Requests that failed on connection errors, with no success yet, before an arm gives up."""
GRACE_S = 5.0
"""After Ctrl-C or SIGTERM, how long the requests in flight may take to answer and be stored."""


def _again(signame: str) -> str:
    return "press Ctrl-C again" if signame == "SIGINT" else f"send {signame} again"


class Reporter:
    """Receives progress events; the CLI renders them. The default ignores them."""

    def start(self, run_id: str, planned: int, to_send: int, resumed: bool) -> None: ...
    def outcome(self, outcome: Outcome, spent_usd: float) -> None: ...
    def warn(self, message: str) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    planned: int
    sent: int
    errors: int
    spent_usd: float
    invalid_lines: int
    message: str | None = None
    read: ReadStats | None = None
    """What the first pass read of each log file: records, skipped entries and why."""


@dataclass
class _ArmState:
    name: str
    """The arm its outcomes are stored as (``noise`` shares production's client and limits)."""
    client: ArmClient
    queue: asyncio.Queue[Any]
    only: set[str] | None = None
    """The request ids this arm answers (the noise floor's sub-sample); None: every one."""
    reached: bool = False
    """The endpoint answered at least once (any HTTP answer, an error status included)."""
    unreachable: list[Outcome] = field(default_factory=list)
    """Connection errors held back until the endpoint answers: if it never does, a resume re-sends them."""
    rewriter: Rewriter | None = None
    """The arm's ``transform``, if it has one."""

    def wants(self, record_id: str) -> bool:
        return self.only is None or record_id in self.only

    @property
    def arm(self) -> Arm:
        return self.client.arm


ProviderForArm = Callable[[str, Arm], Provider]
"""Builds the provider of one arm (``candidate`` or ``production``): tests hand the engine their own."""


def check_arm(name: str, arm: Arm) -> None:
    """What the environment must supply for an arm, checked by its provider before a run exists
    so that a missing key or variable leaves nothing behind."""
    get_provider(arm.provider).check_arm(name, arm)


def provider_for_arm(name: str, arm: Arm) -> Provider:
    return get_provider(arm.provider).from_arm(name, arm)


class ScanObserver(Protocol):
    """Sees every record of the first pass, then the sample (``replay plan``'s tally)."""

    def see(self, record: LogRecord) -> None: ...
    def scanned(self, selected: set[str]) -> None: ...


def scan(scenario: Scenario, skip_invalid: bool,
         observer: ScanObserver | None = None) -> tuple[list[str], set[str], ReadStats]:  # fmt: skip
    """First pass over the logs: validate every line and pick the sample, before sending anything."""
    paths, selection, stats = scan_sample(scenario, skip_invalid, observer)
    return paths, selection.ids, stats


def scan_sample(scenario: Scenario, skip_invalid: bool,
                observer: ScanObserver | None = None) -> tuple[list[str], Selection, ReadStats]:  # fmt: skip
    """:func:`scan`, with the whole :class:`Selection`: the dedupe weights and the traffic mix."""
    paths = resolve_log_paths(scenario.logs, scenario.search_dirs)
    stats = ReadStats()
    watched = scenario.segment_keys()
    records = iter_records(paths, fmt=scenario.log_format, skip_invalid=skip_invalid, stats=stats,
                           max_record_bytes=scenario.max_record_bytes, watch_keys=watched)  # fmt: skip
    key = scenario.session_key
    if scenario.sample.extended:
        selection = _select(scenario, records, tuple(watched), observer)
    elif observer is None:
        selection = Selection(select_units(((record.id, session_of(record.metadata, key)) for record in records),
                                           scenario.sample))  # fmt: skip
    else:
        see = observer.see
        selection = Selection(select_units(((see(record) or record.id, session_of(record.metadata, key))
                                            for record in records), scenario.sample))  # fmt: skip
    check_not_empty(paths, stats)
    check_segment_keys(watched, stats, scenario.source)
    if not selection.ids:
        raise InputError(empty_window_message(scenario.sample, selection, stats.records)
                         or empty_sample_message(scenario.sample, stats.records))  # fmt: skip
    if observer is not None:
        observer.scanned(selection.ids)
    return paths, selection, stats


def _select(scenario: Scenario, records: Iterator[LogRecord], mix_keys: tuple[str, ...],
            observer: ScanObserver | None) -> Selection:  # fmt: skip
    """A time window, strata or dedupe: the :class:`Selector`, which also tallies the log's mix."""
    selector = Selector(scenario.sample, mix_keys)
    key = scenario.session_key
    try:
        for record in records if observer is None else _seen(records, observer):
            selector.offer(record, session_of(record.metadata, key))
        return selector.result()
    except AllocationError as exc:
        raise InputError(f"{scenario.source}: {exc}") from None


def _seen(records: Iterator[LogRecord], observer: ScanObserver) -> Iterator[LogRecord]:
    for record in records:
        observer.see(record)
        yield record


class Engine:
    def __init__(
        self,
        scenario: Scenario,
        store: Store,
        *,
        run_id: str | None = None,
        skip_invalid: bool = False,
        reporter: Reporter | None = None,
        provider_for_arm: ProviderForArm = provider_for_arm,
        resend_changed: bool = False,
        stages: Sequence[PairStage] = (),
        observer: ScanObserver | None = None,
    ) -> None:
        self.scenario = scenario
        self.store = store
        self.resumed = run_id is not None
        self.run_id = run_id or new_run_id()
        self.skip_invalid = skip_invalid
        self.resend_changed = resend_changed
        self.reporter = reporter or Reporter()
        self.provider_for_arm = provider_for_arm
        self.observer = observer
        self.prices = PriceTable(scenario.prices)
        self.rng = random.Random()
        baseline = ARM_PRODUCTION if scenario.baseline == "fresh" and scenario.production is not None else ARM_LOGGED
        kinds = [PairKind(PAIR_CANDIDATE, baseline, ARM_CANDIDATE)]
        if scenario.noise_floor:
            kinds.append(PairKind(PAIR_NOISE, baseline, ARM_NOISE))
        self._pairs = PairTracker(stages, kinds)
        self._stopped_by: RunIncomplete | None = None
        self._stopping = asyncio.Event()  # events bind to the run's loop when first awaited (3.10+)
        self._spent = 0.0
        self._reserved = 0.0
        self._reservations = 0
        self._released = asyncio.Event()
        self._sent = 0
        self._errors = 0
        self._unpriced: set[str] = set()
        self._unwritten: list[Outcome] = []
        self._store_error: StoreWriteError | None = None
        self._in_flight = 0
        self._not_sent = 0
        self._cancelled = False
        self._interrupted_by: tuple[str, int] | None = None
        self._states: list[_ArmState] = []
        self._rewriters: dict[str, Rewriter] = {}
        self._owner: Owner | None = None
        self._weights: dict[str, int] = {}
        """With ``sample.dedupe``: request id -> the sampled records it stands for (more than 1)."""
        self._beat: asyncio.TimerHandle | None = None
        self._redactor = redactor_for(scenario.redact)
        """None without ``redact``: then nothing below looks at placeholders."""
        self._marks: dict[str, tuple[Marks, int]] = {}
        """With redaction: each dispatched record's placeholders, and how many arms' answers are still to come."""

    @property
    def _stop(self) -> RunIncomplete | None:
        """Why the run stops (None while it goes on). Setting it wakes whatever waits: the
        dispatcher waiting for budget, requests waiting for their turn or to retry."""
        return self._stopped_by

    @_stop.setter
    def _stop(self, stop: RunIncomplete | None) -> None:
        self._stopped_by = stop
        if stop is not None:
            self._stopping.set()
            self._released.set()

    # --- public ---------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Run (or resume) to the end; raise a :class:`RunIncomplete` if it stopped early."""
        try:
            paths, selection, stats = scan_sample(self.scenario, self.skip_invalid, self.observer)
        except InputError as exc:  # a malformed record's message may quote it
            if self._redactor is None:
                raise
            raise self._redactor.error(exc) from None
        selected, self._weights = selection.ids, selection.weights
        if selection.without_timestamp:
            self.reporter.warn(f"sample.since/sample.until: {selection.without_timestamp} record(s) without a timestamp"
                               " left out of the sample")  # fmt: skip
        arms = self._arms()
        for name, arm in arms:  # before the run exists: a missing key leaves nothing behind
            check_arm(name, arm)
        self._rewriters = {name: _rewriter(name, arm, self.scenario.search_dirs) for name, arm in arms if arm.transform}
        if self.resumed:
            self._owner = self.store.claim(self.run_id)  # a live run refuses a second process
        try:
            if self.resumed:
                check_log(self.store, self.run_id, paths, self._stored_records(paths, selected), selected,
                          self.resend_changed)  # fmt: skip
                self.store.set_status(self.run_id, "running", ended=False)
            else:
                self.store.create_run(self.run_id, self.scenario.name, self.scenario.snapshot(), self.scenario.digest())
                self._owner = self.store.claim(self.run_id)
            self.store.set_planned(self.run_id, len(selected))
            if selection.mix is not None:
                self.store.set_mix(self.run_id, selection.mix)
            self._spent = self.store.spent(self.run_id)
            try:
                with _fewer_gc_pauses():
                    _run_loop(self._main(paths, selected, arms))
            except Exception as exc:
                self._mark_failed(exc)
                raise
            finally:
                self.reporter.stop()
            self._mark_run()
        finally:
            self._disown()
        status = "completed" if self._stop is None else self._stop.status
        message = None if self._stop is None else str(self._stop)
        summary = RunSummary(self.run_id, status, len(selected), self._sent, self._errors, self._spent, stats.invalid, message,
                             stats)  # fmt: skip
        if self._stop is not None:
            self._stop.run_id = self.run_id
            raise self._stop
        return summary

    def _disown(self) -> None:
        """On any exit; if even this write fails, the dead process's lease frees the run."""
        if self._owner is not None:
            with contextlib.suppress(StoreWriteError):
                self.store.release(self.run_id, self._owner)

    def _heartbeat(self) -> None:
        """Renew the run's lease; if another process took the run over (this one was stopped
        for longer than the lease), stop dispatching: two processes must never run one run."""
        loop = asyncio.get_running_loop()
        try:
            ours = self._owner is None or self.store.heartbeat(self.run_id, self._owner)
        except StoreWriteError:
            ours = True  # the outcomes' writes report the store's trouble
        if not ours:
            self._stop = self._stop or RunTakenOver(f"run {self.run_id}: another process took it over; stopped dispatching")
            return
        self._beat = loop.call_later(HEARTBEAT_S, self._heartbeat)

    def _mark_failed(self, exc: Exception) -> None:
        """A bug (or a fault nothing expected) stopped the run: say so in the store, so that
        ``replay runs`` shows it failed, and a resume can finish it."""
        if isinstance(exc, RunIncomplete):
            return
        with contextlib.suppress(StoreWriteError):
            self.store.set_status(self.run_id, "failed", f"stopped by an unexpected {type(exc).__name__};"
                                                         f" resume with: replay run --resume {self.run_id}")  # fmt: skip

    def _mark_run(self) -> None:
        if isinstance(self._stop, RunTakenOver):
            return  # the run's status is its new owner's to write
        status = "completed" if self._stop is None else self._stop.status
        try:
            self.store.set_status(self.run_id, status, None if self._stop is None else str(self._stop))
        except StoreWriteError as exc:
            said = f"{self._stop}; " if self._stop is not None else ""
            self._stop = StoreFailed(f"{said}the run could not be marked {status}: {exc}")

    # --- setup ------------------------------------------------------------------------

    def _arms(self) -> list[tuple[str, Arm]]:
        arms = [(ARM_CANDIDATE, self.scenario.candidate)]
        if self.scenario.baseline == "fresh" and self.scenario.production is not None:
            arms.append((ARM_PRODUCTION, self.scenario.production))
        if self.scenario.noise_floor and self.scenario.production is not None:
            arms.append((ARM_NOISE, self.scenario.production))
        return arms

    async def _main(self, paths: list[str], selected: set[str], arms: list[tuple[str, Arm]]) -> None:
        states: list[_ArmState] = []
        clients: dict[str, ArmClient] = {}
        noise = subsample(selected, self.scenario.noise_floor or 0, self.scenario.sample.seed, "noise_floor")
        for name, arm in arms:
            # the noise floor asks production again: one client, so one set of limits, for both
            endpoint = ARM_PRODUCTION if name == ARM_NOISE else name
            if endpoint not in clients:
                clients[endpoint] = ArmClient(endpoint, arm, self.provider_for_arm(endpoint, arm), pause=self._pause,
                                              stopping=self._stopping.is_set, rng=self.rng)  # fmt: skip
            queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=arm.limits.concurrency)
            states.append(_ArmState(name, clients[endpoint], queue, noise if name == ARM_NOISE else None,
                                    rewriter=self._rewriters.get(name)))  # fmt: skip
        self._states = states
        done = self.store.done_keys(self.run_id)
        to_send = sum(1 for record_id in selected for state in states
                      if state.wants(record_id) and (record_id, state.name) not in done)  # fmt: skip
        self.reporter.start(self.run_id, len(selected), to_send, self.resumed)
        self._start_stages(len(selected))
        tasks = [asyncio.ensure_future(self._dispatch(paths, selected, states, done))]
        for state in states:
            tasks += [asyncio.ensure_future(self._worker(state)) for _ in range(state.arm.limits.concurrency)]
        restore = self._install_signal_handlers(tasks)
        self._heartbeat()  # renewed now: checking a long log on resume may have taken a while
        flushed = False
        try:
            results = await _gather_failing_fast(tasks)
            self._final_flush()  # the last answers are offered to the stages once stored
            flushed = True
            if self._pairs and not self._cancelled and not any(isinstance(r, BaseException) for r in results):
                tasks.append(asyncio.ensure_future(self._finish_stages()))  # a second Ctrl-C cancels it too
                results += await _gather_failing_fast(tasks[-1:])
            for state in states:  # fewer requests than UNREACHABLE_AFTER, all failed to connect
                if state.unreachable and self._stop is None:
                    self._stop = _unreachable(state)
            if self._interrupted_by and not self._cancelled and isinstance(self._stop, Interrupted):
                self._stop = Interrupted(self._after_grace(*self._interrupted_by))
        finally:
            if not flushed:
                self._final_flush()
            restore()
            if self._beat is not None:
                self._beat.cancel()
            for client in clients.values():
                await client.aclose()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    def _after_grace(self, signame: str, in_flight: int) -> str:
        stored = in_flight - self._not_sent
        said = f"{signame}: stopped dispatching; the {stored} request(s) in flight answered and were stored"
        if self._not_sent:
            said += f"; {self._not_sent} waiting for their turn or a retry were not sent (a resume sends them)"
        return said

    def _start_stages(self, planned: int) -> None:
        services = StageServices(self.store, self.run_id, planned, self._pause, self._stopping.is_set, self.rng,
                                 self._spend, self.reporter.warn)  # fmt: skip
        for stage in self._pairs.stages:
            stage.start(services)

    async def _finish_stages(self) -> None:
        """Each stage finishes its work; one that cannot (its endpoint died) stops the run as
        an arm would, and the run is marked so, with what was stored kept."""
        for stage in self._pairs.stages:
            try:
                await stage.finish()
            except RunIncomplete as stop:
                self._stop = self._stop or stop

    def _spend(self, cost_usd: float) -> None:
        """A stage's spend (a judge's calls): the run's spend, and its budget, include it."""
        self._spent += cost_usd
        budget = self.scenario.budget_usd
        if budget is not None and self._spent > budget and self._stop is None:
            self._stop = BudgetExhausted(_budget_message(budget, self._spent, 0.0))

    def _install_signal_handlers(self, tasks: Sequence[asyncio.Future[Any]]) -> Callable[[], None]:
        """The first Ctrl-C or SIGTERM stops dispatching and gives the requests in flight
        ``GRACE_S`` to answer and be stored; a second one (or the end of the grace) stops at once."""
        loop = asyncio.get_running_loop()
        timers: list[asyncio.TimerHandle] = []

        def hard_stop(reason: str) -> None:
            self._cancelled = True
            lost = f"{self._in_flight} request(s) in flight not stored, a resume re-sends them"
            self._stop = self._stop if isinstance(self._stop, StoreFailed) else Interrupted(f"{reason}; {lost}")
            for task in tasks:
                task.cancel()

        def interrupt(signame: str) -> None:
            if self._cancelled:
                return
            if timers:
                hard_stop(f"{signame} again: stopped at once")
                return
            if not isinstance(self._stop, StoreFailed):
                self._stop = Interrupted(f"{signame}: stopped dispatching")
                self._interrupted_by = (signame, self._in_flight)
            grace = min([GRACE_S] + [state.arm.limits.timeout_s for state in self._states])
            timers.append(loop.call_later(grace, hard_stop, f"{signame}: stopped after waiting {grace:g}s"))
            if self._in_flight:
                self.reporter.warn(
                    f"{signame}: stopped dispatching; waiting up to {grace:g}s for {self._in_flight} request(s) in flight"
                    f" ({_again(signame)} to stop at once)"
                )

        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, interrupt, signal.Signals(signum).name)
                installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

        def restore() -> None:
            for timer in timers:
                timer.cancel()
            for signum in installed:
                loop.remove_signal_handler(signum)

        return restore

    # --- dispatch -----------------------------------------------------------------------

    def _records(self, paths: list[str], selected: set[str]) -> Iterator[LogRecord]:
        records = iter_records(paths, fmt=self.scenario.log_format, skip_invalid=True,
                               max_record_bytes=self.scenario.max_record_bytes)  # fmt: skip
        for record in records:
            if record.id in selected:
                yield record

    def _stored_records(self, paths: list[str], selected: set[str]) -> Iterator[LogRecord]:
        """The sampled records as the store holds them (redacted, with ``redact``)."""
        if self._redactor is None:
            return self._records(paths, selected)
        redact = self._redactor.record
        return (redact(record)[0] for record in self._records(paths, selected))

    def _redacted(self, record: LogRecord, answers: int) -> tuple[LogRecord, LogRecord]:
        """(the record as stored, the record as sent); with ``answers`` still to come, its
        placeholders are kept for them until the last."""
        assert self._redactor is not None
        stored, marks = self._redactor.record(record)
        if answers:
            self._marks[record.id] = (marks, answers)
        return stored, stored if self._redactor.redaction.before_send else record

    def _redact_answer(self, outcome: Outcome, record: LogRecord) -> Outcome:
        """An arm's outcome with the record's placeholders (numbered from the record alone, so
        the same after a resume)."""
        assert self._redactor is not None
        marks, left = self._marks.pop(record.id, (None, 0))
        if marks is None:  # never (one entry per answer queued); still, nothing unredacted is stored
            marks = self._redactor.record(record)[1]
        elif left > 1:
            self._marks[record.id] = (marks, left - 1)
        return self._redactor.outcome(outcome, marks)

    async def _dispatch(
        self, paths: list[str], selected: set[str], states: list[_ArmState], done: set[tuple[str, str]]
    ) -> None:
        cases: list[tuple[int, LogRecord]] = []
        logged: list[Outcome] = []
        # closed loop: the candidate answers a session's turns in order, each once the one before
        # has answered, so its turns are gathered (the sample's, not the log's) and sent last
        conversations: dict[str, list[LogRecord]] | None = {} if self.scenario.sessions == CLOSED_LOOP else None
        try:
            for seq, record in enumerate(self._records(paths, selected)):
                if self._stop is not None:
                    break
                # Cases and logged answers come from the log, so they are written in batches:
                # after a crash, a resume derives them again.
                wanted = [state for state in states if state.wants(record.id)]
                pending = [state for state in wanted if (record.id, state.name) not in done]
                original = sent = record
                if self._redactor is not None:
                    record, sent = self._redacted(record, len(pending))
                cases.append((seq, record))
                logged_done = (record.id, ARM_LOGGED) in done
                if not logged_done:  # with a fresh baseline too: the drift ledger compares them
                    logged.append(self._logged_outcome(record))
                if self._pairs:
                    self._expect(record, pending, wanted, logged_done)
                if len(cases) >= CASE_BATCH:
                    self._write_cases(cases, logged)
                if conversations is not None:  # the session read from the log: placeholders are per record
                    pending = self._gather_turn(sent, pending, conversations, original.metadata)
                if not pending:
                    continue
                estimates = [self._estimate_cost(state, record) for state in pending]
                if not await self._within_budget(sum(estimates)):
                    break
                for state, cost in zip(pending, estimates):
                    self._reserve(cost)
                    await state.queue.put((sent, cost))
            if conversations and self._stop is None:
                self._write_cases(cases, logged)
                await self._dispatch_sessions(conversations, states, done)
        finally:
            self._write_cases(cases, logged)
            if not self._cancelled:  # cancelled: so are the workers, nobody would take these
                for state in states:
                    for _ in range(state.arm.limits.concurrency):
                        await state.queue.put(None)

    def _gather_turn(self, record: LogRecord, pending: list[_ArmState], conversations: dict[str, list[LogRecord]],
                     metadata: dict[str, Any] | None = None) -> list[_ArmState]:  # fmt: skip
        """Hold a closed-loop session's turn for the candidate; the arms left to send it now
        (``metadata``: where its session is read, when not the record's own)."""
        session = session_of(record.metadata if metadata is None else metadata, self.scenario.session_key)
        if session is None:
            return pending
        conversations.setdefault(session, []).append(record)  # answered ones too: a resume goes on from them
        return [state for state in pending if state.name != ARM_CANDIDATE]

    async def _dispatch_sessions(self, conversations: dict[str, list[LogRecord]], states: list[_ArmState],
                                 done: set[tuple[str, str]]) -> None:  # fmt: skip
        state = next(state for state in states if state.name == ARM_CANDIDATE)
        for turns in conversations.values():
            todo = [record for record in turns if (record.id, ARM_CANDIDATE) not in done]
            if not todo:
                continue
            loop = ClosedLoop(order_turns(turns))
            cost = sum(self._estimate_cost(state, record) for record in todo)
            if not await self._within_budget(cost):
                break
            self._reserve(cost)
            await state.queue.put((loop, cost))

    def _expect(self, record: LogRecord, pending: list[_ArmState], wanted: list[_ArmState], logged_done: bool) -> None:
        """Tell the tracker which of the record's pairs get both answers in this run (with
        an answer stored before a resume, the report's catch-up compares the pair)."""
        if len(pending) < len(wanted) or (self.scenario.baseline == "logged" and logged_done):
            return
        kinds = [PAIR_CANDIDATE] + [PAIR_NOISE for state in pending if state.name == ARM_NOISE]
        self._pairs.expect(record, kinds)

    async def _within_budget(self, cost: float) -> bool:
        """Whether the next request fits the budget, waiting for what is in flight to settle first.

        Requests in flight hold their worst-case cost; once they answer, their actual cost is
        usually lower. So the budget stops dispatching only when nothing is in flight and the
        spend so far plus the next request's worst case would pass it."""
        budget = self.scenario.budget_usd
        if budget is None:
            return True
        while self._stop is None and self._spent + self._reserved + cost > budget:
            if not self._reservations:
                self._stop = BudgetExhausted(_budget_message(budget, self._spent, cost))
                break
            self._released.clear()
            await self._released.wait()
        return self._stop is None

    def _reserve(self, cost: float) -> None:
        self._reserved += cost
        self._reservations += 1

    def _release(self, cost: float) -> None:
        self._reservations -= 1
        self._reserved = self._reserved - cost if self._reservations else 0.0  # no float drift
        self._released.set()

    def _write_cases(self, cases: list[tuple[int, LogRecord]], logged: list[Outcome]) -> None:
        """Cases and logged answers come from the log: if the store refuses them, a resume derives them again."""
        try:
            if cases:
                self.store.add_cases(self.run_id, cases, self._weights)
            if logged:
                self.store.add_outcomes(self.run_id, logged)
                for outcome in logged:
                    self._pairs.answered(outcome)
        except StoreWriteError as exc:
            self._store_failed(exc)
        cases.clear()
        logged.clear()

    async def _worker(self, state: _ArmState) -> None:
        while True:
            item = await state.queue.get()
            if item is None:
                return
            work, reserved = item
            self._in_flight += 1
            try:
                if self._stop is None:
                    if isinstance(work, ClosedLoop):
                        await self._converse(state, work)
                    else:
                        outcome = await self._replay(state, work)
                        self._record(state, outcome if self._redactor is None else self._redact_answer(outcome, work))
            except RunIncomplete as stop:
                self._stop = self._stop or stop
            except NotSent:
                self._not_sent += 1
            finally:
                self._in_flight -= 1
                self._release(reserved)

    def _record(self, state: _ArmState, outcome: Outcome) -> None:
        if not state.reached and outcome.attempts:  # an outcome never sent says nothing of the endpoint
            if outcome.error_class == "connection_error":
                # Hold these back: if the endpoint is dead, they must be re-sent on resume.
                state.unreachable.append(outcome)
                if len(state.unreachable) >= UNREACHABLE_AFTER:
                    self._stop = self._stop or _unreachable(state)
                return
            state.reached = True
            for held in state.unreachable:
                self._commit(held)
            state.unreachable.clear()
        self._commit(outcome)

    def _commit(self, outcome: Outcome) -> None:
        """Queue the outcome for the commit at the end of this event-loop turn.

        Outcomes that complete in the same turn share one transaction; nothing waits
        longer than the turn, so a ``kill -9`` still loses only what is in flight.
        """
        self._unwritten.append(outcome)
        if len(self._unwritten) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        self._sent += 1
        self._errors += outcome.status != "ok"
        self._spent += outcome.cost_usd or 0.0
        self.reporter.outcome(outcome, self._spent)

    def _flush(self) -> None:
        if not self._unwritten or self._store_error is not None:
            return
        try:
            self.store.add_outcomes(self.run_id, self._unwritten)
        except StoreWriteError as exc:  # keep the batch: it is written again at the end
            self._store_failed(exc)
            return
        written, self._unwritten = self._unwritten, []
        if self._pairs:
            for outcome in written:
                self._pairs.answered(outcome)

    def _store_failed(self, exc: StoreWriteError) -> None:
        """Stop dispatching at once; what is in flight still answers and is kept for one more try."""
        if self._store_error is None:
            self._store_error = exc
            self._stop = StoreFailed(f"{exc}: dispatching stopped")

    def _final_flush(self) -> None:
        """Once nothing is in flight: write what is left, retrying a write that failed once."""
        failed, self._store_error = self._store_error, None
        self._flush()
        if self._store_error is not None:
            ids = list(dict.fromkeys(outcome.request_id for outcome in self._unwritten))
            self._stop = StoreFailed(
                f"{self._store_error}: dispatching stopped; {len(ids)} answered request(s) could not be stored"
                f" and a resume re-sends them: {_listed(ids)}"
            )
        elif failed is not None:
            self._stop = StoreFailed(f"{failed}: dispatching stopped; a retry stored every answer received")

    async def _converse(self, state: _ArmState, loop: ClosedLoop) -> None:
        """One closed-loop session, turn after turn, until it ends, diverges or fails; turns a
        run answered before a resume are read back, not sent again."""
        stored = self._answered_turns(loop)
        previous: dict[str, Any] | None = None
        answer: Answer | None = None
        for index, record in enumerate(loop.turns):
            request = loop.request(index, previous, answer)
            if isinstance(request, Diverged):
                return
            if record.id in stored:
                answer = stored[record.id]
            else:
                if self._stop is not None:
                    return
                outcome = await self._replay(state, with_request(record, request))
                self._record(state, outcome if self._redactor is None else self._redact_answer(outcome, record))
                completion = outcome.completion
                answer = Answer(completion.text, completion.tool_calls) if completion is not None else None
            if answer is None:  # the candidate failed this turn: nothing to go on from
                return
            previous = request

    def _answered_turns(self, loop: ClosedLoop) -> dict[str, Answer | None]:
        """The candidate's stored answers to the session's turns (None where it failed)."""
        if not self.resumed:
            return {}
        from replay.types import ToolCall

        ids = [record.id for record in loop.turns]
        rows = self.store.answers(self.run_id, (ARM_CANDIDATE,), ("request_id", "status", "text", "tool_calls_json"),
                                  only=ids)  # fmt: skip
        out: dict[str, Answer | None] = {}
        for request_id, status, text, calls_json in rows:
            if status != "ok":
                out[request_id] = None
                continue
            calls = tuple(ToolCall(c.get("id"), c["name"], c["arguments"]) for c in json.loads(calls_json or "[]"))
            out[request_id] = Answer(text, calls)
        return out

    # --- one request ------------------------------------------------------------------------

    async def _replay(self, state: _ArmState, record: LogRecord) -> Outcome:
        client = state.client
        if state.rewriter is None:
            body = client.provider.build_body(record.request)
        else:
            try:
                body = state.rewriter.body(record, client.provider.build_body)
            except TransformFailed as exc:
                return _not_transformed(state.name, record, exc)
        params = client.provider.sent_params(body)
        tokens = 0
        if client.arm.limits.tpm:
            tokens = client.provider.prompt_tokens(body) + _expected_output_tokens(client.provider, body, record)
        exchange = await client.call(body, tokens)
        if exchange.completion is not None:
            return self._ok(state, record, body, exchange.completion, exchange.attempts, params)
        error = exchange.error
        assert error is not None  # an exchange holds an answer or the last attempt's error
        return Outcome(
            request_id=record.id, arm=state.name, status="error", completion=None, attempts=exchange.attempts,
            params=params, http_status=error.status, error_class=error.error_class, error_message=error.message,
        )  # fmt: skip

    async def _pause(self, seconds: float) -> None:
        """Wait for a turn or a retry, unless the run stops meanwhile (then the request is not sent)."""
        if self._stop is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
        if self._stop is not None:
            raise NotSent

    def _ok(
        self, state: _ArmState, record: LogRecord, body: dict[str, Any], completion: Completion,
        attempts: tuple[Attempt, ...], params: dict[str, Any],
    ) -> Outcome:  # fmt: skip
        model = body.get("model") or state.arm.model  # a transform's model_map may send another
        if completion.usage.prompt_tokens is None or completion.usage.completion_tokens is None:
            completion = _with_estimated_usage(completion, body, model)
        cost = self._cost(model, completion)
        return Outcome(
            request_id=record.id, arm=state.name, status="ok", completion=completion, attempts=attempts,
            params=params, http_status=200, cost_usd=cost,
        )  # fmt: skip

    def _cost(self, model: str, completion: Completion) -> float | None:
        """What the endpoint says the answer cost, else its price at the model sent, else at the
        model that answered (a gateway's alias names no model the price table knows)."""
        if completion.cost_usd is not None:
            return completion.cost_usd
        cost = self.prices.cost_of(model, completion.usage)
        if cost is None and completion.model and completion.model != model:
            cost = self.prices.cost_of(completion.model, completion.usage)
        if cost is None and model not in self._unpriced:
            self._unpriced.add(model)
            self.reporter.warn(f"no price for model '{model}': its cost counts as unknown (add it under 'prices')")
        return cost

    def _estimate_cost(self, state: _ArmState, record: LogRecord) -> float:
        if self.scenario.budget_usd is None:
            return 0.0
        provider = state.client.provider
        prompt = provider.prompt_tokens(record.request)
        cost = self.prices.cost(state.arm.model, prompt, _expected_output_tokens(provider, record.request, record))
        return cost or 0.0

    def _logged_outcome(self, record: LogRecord) -> Outcome:
        """The production answer from the log, stored as the ``logged`` arm."""
        model = str(record.request.get("model") or (record.answer.model if record.answer else None) or "")
        failed = record.error is not None or (record.status is not None and record.status >= 400)
        if failed or record.answer is None:
            message = str(record.error) if record.error is not None else "no response in the log"
            return Outcome(
                request_id=record.id, arm=ARM_LOGGED, status="error", completion=None, attempts=(),
                params={}, http_status=record.status, error_class="logged_error" if failed else "missing",
                error_message=message,
            )  # fmt: skip
        completion = record.answer
        if completion.usage.prompt_tokens is None:
            completion = _with_estimated_usage(completion, record.request, model)
        price = completion.cost_usd if completion.cost_usd is not None else self.prices.cost_of(model, completion.usage)
        return Outcome(
            request_id=record.id, arm=ARM_LOGGED, status="ok", completion=completion, attempts=(),
            params={k: v for k, v in record.request.items() if k not in PROMPT_KEYS},
            http_status=record.status or 200, cost_usd=price,
        )  # fmt: skip


def _rewriter(name: str, arm: Arm, search_dirs: tuple[str, ...]) -> Rewriter:
    """The arm's transform, compiled before the run exists (a resume imports the hook again)."""
    assert arm.transform is not None
    try:
        return Rewriter(arm.transform, search_dirs)
    except SpecError as exc:
        raise InputError(f"{name}.transform.{exc.key}: {exc}") from None


def _not_transformed(arm: str, record: LogRecord, failure: TransformFailed) -> Outcome:
    """The record's outcome when the arm's transform fails on it: nothing was sent, nothing is retried."""
    return Outcome(request_id=record.id, arm=arm, status="error", completion=None, attempts=(), params={},
                   error_class="transform_error", error_message=str(failure))  # fmt: skip


def _listed(ids: list[str], at_most: int = 10) -> str:
    shown = ", ".join(ids[:at_most])
    return shown + (f" and {len(ids) - at_most} more" if len(ids) > at_most else "")


def _usd(amount: float) -> str:
    """$0.01 and $5 as a person writes them; smaller amounts with the digits that matter."""
    return f"${amount:.2f}" if round(amount, 2) == amount else f"${amount:.4f}"


def _budget_message(budget: float, spent: float, cost: float) -> str:
    if spent == 0:
        return f"budget {_usd(budget)} is less than one request could cost (~{_usd(cost)}): nothing sent"
    return f"budget {_usd(budget)} reached: spent {_usd(spent)}, and the next request could cost ~{_usd(cost)} more"


def _unreachable(state: _ArmState) -> EndpointUnreachable:
    return EndpointUnreachable(
        f"{state.client.name} endpoint {state.arm.base_url} is unreachable: {state.unreachable[-1].error_message}"
    )


def _run_loop(main: Awaitable[None]) -> None:
    """Run on uvloop where it is installed (Linux and macOS): its event loop and socket
    transports are written in C, so the client spends less CPU per request on it than on
    asyncio's own loop, and at high concurrency the client is CPU-bound. Elsewhere, asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]
        return
    uvloop.run(main)  # type: ignore[arg-type]


@contextlib.contextmanager
def _fewer_gc_pauses() -> Iterator[None]:
    """Collect garbage less often while replaying.

    Every request allocates a few hundred short-lived objects; at the default gen-0
    threshold (700) the collector runs several times per request and re-scans the
    long-lived heap (modules, the id set). Freezing what exists and raising the
    threshold spares the engine those scans, a visible share of its CPU per request.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _expected_output_tokens(provider: Provider, body: dict[str, Any], record: LogRecord) -> int:
    """What the provider will count against the token limit for the answer: the request's cap,
    else what the logged answer took."""
    declared = provider.max_output_tokens(body)
    if declared is not None:
        return declared
    logged = record.answer.usage.completion_tokens if record.answer else None
    return logged if isinstance(logged, int) else 256


def _with_estimated_usage(completion: Completion, body: dict[str, Any], model: str) -> Completion:
    answer = (completion.text or "") + "".join(call.name + call.arguments for call in completion.tool_calls)
    usage = Usage(
        prompt_tokens=completion.usage.prompt_tokens
        if completion.usage.prompt_tokens is not None
        else estimate_prompt_tokens(body, model),
        completion_tokens=completion.usage.completion_tokens
        if completion.usage.completion_tokens is not None
        else count_text_tokens(answer, model),
        estimated=True,
    )
    return replace(completion, usage=usage)


async def _gather_failing_fast(tasks: Sequence[asyncio.Future[Any]]) -> list[BaseException | None]:
    """Wait for every task, as ``gather(return_exceptions=True)`` does, except that a task
    failing unexpectedly cancels the others: they would wait forever for work it was to
    hand over (the dispatcher feeds the workers' queues), and the run would hang."""
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        if any(not task.cancelled() and task.exception() is not None for task in done):
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            break
    return [None if task.cancelled() else task.exception() for task in tasks]
