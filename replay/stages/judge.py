"""The judge stage: each answered pair judged as soon as it is offered, while the replay runs.

The judge is an arm of its own: an :class:`~replay.arm.ArmClient` with its own limits,
retries and provider, paced by its own limiter, its spend added to the run's (so the
budget counts it). Verdicts are stored under :func:`replay.judge.verdict_key`, so a verdict
already stored (by an earlier run with the same answers, a resume, ``replay judge``) is
reused and never paid twice. An answer that is not the requested JSON is asked again once,
then counted as a judge error; a judge endpoint that fails for good (a wrong key) stops
the judging, not the run: ``replay judge RUN`` judges the rest later.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import orjson

from replay.arm import ArmClient, NotSent
from replay.config import Arm, Judge, Limits
from replay.errors import ArmStopped, StoreWriteError
from replay.judge import (
    DEFAULT_RUBRIC,
    DEFAULT_TEMPLATE,
    answer_text,
    candidate_first,
    in_sample,
    parse_verdict,
    render_prompt,
    same_answer,
    verdict_key,
)
from replay.pipeline import AnsweredPair, PairStage, StageServices
from replay.pricing import PriceTable
from replay.providers import Provider, get_provider
from replay.secrets import scrub_shapes
from replay.stages.compare import group_by_request
from replay.store import Store
from replay.tokens import count_text_tokens, estimate_prompt_tokens
from replay.types import ARM_LOGGED, ARM_PRODUCTION, COMPARED_ARM, PAIR_CANDIDATE, PAIR_NOISE, Completion

ARM_JUDGE = "judge"
PARSE_ATTEMPTS = 2
"""Calls per order when the answer is not the requested JSON: the first, and one retry."""
MAX_ERROR_CHARS = 500
UNREACHABLE_AFTER = 3
"""Requests that failed to connect, with no answer yet, before the judging stops (as an arm's run does)."""


@dataclass(frozen=True)
class _Job:
    kind: str
    request_id: str
    turn: int
    candidate_is_a: bool
    key: str
    prompt: str


class JudgeStage(PairStage):
    """Judges the pairs of a run as they are answered (see the module's docstring)."""

    name = "judge"

    def __init__(self, judge: Judge, seed: int, prices: dict[str, dict[str, float]] | None = None,
                 provider_for_arm: Callable[[str, Arm], Provider] | None = None) -> None:  # fmt: skip
        self.judge = judge
        self.seed = seed
        self.prices = PriceTable(prices or {})
        self.provider_for_arm = provider_for_arm or (lambda name, arm: get_provider(arm.provider).from_arm(name, arm))
        self.template = judge.prompt or DEFAULT_TEMPLATE
        self.rubric = judge.rubric if judge.rubric is not None else DEFAULT_RUBRIC
        self.calls = 0
        """Calls this stage made (retries of invalid answers included; not HTTP retries)."""
        self.errors = 0
        self._services: StageServices | None = None
        self._client: ArmClient | None = None
        self._queue: asyncio.Queue[_Job | None] | None = None
        self._workers: list[asyncio.Future[None]] = []
        self._seen: set[tuple[str, str]] = set()
        """(pair kind, request id) offered."""
        self._waiting: dict[str, list[tuple[str, str, int, bool]]] = {}
        """verdict key -> the (kind, request, turn, order) waiting for it beyond the one being judged."""
        self._verdicts: list[tuple[str, str, str | None, int, float | None, str]] = []
        self._rows: list[tuple[str, tuple[str, int, bool, str | None, str | None, int, float | None]]] = []
        """(pair kind, row) to store."""
        self._rate = 1.0
        self._selected = 0
        self._stopped: str | None = None
        self._unwritten_note = False
        self._reached = False
        self._connection_failures = 0
        self._unpriced_note = False

    @property
    def turns(self) -> int:
        """Orders each pair is judged in."""
        return 2 if self.judge.both_orders else 1

    @property
    def stopped(self) -> str | None:
        """Why the judging stopped early (a judge endpoint that fails for good), or None."""
        return self._stopped

    # --- the stage --------------------------------------------------------------------

    def start(self, services: StageServices) -> None:
        self._services = services
        arm = self.judge.arm
        self._client = ArmClient(ARM_JUDGE, arm, self.provider_for_arm(ARM_JUDGE, arm), pause=services.pause,
                                 stopping=services.stopping, rng=services.rng)  # fmt: skip
        if self.judge.sample is not None and services.planned:
            self._rate = min(1.0, self.judge.sample / services.planned)

    def offer(self, pair: AnsweredPair) -> None:
        if pair.baseline.status != "ok" or pair.candidate.status != "ok":
            return  # an error is the error rate's to count: there is no answer to judge
        self.offer_answers(pair.request_id, pair.request, _text(pair.candidate.completion), _text(pair.baseline.completion),
                           pair.kind)  # fmt: skip

    async def finish(self) -> None:
        """Judge the run's stored pairs never offered (a resume's earlier answers), then wait for
        every verdict and store it."""
        services = self._services
        if services is None:
            return
        try:
            for kind in self._kinds(services):
                if self._stopped is not None or services.stopping():
                    break
                skip = {request_id for seen_kind, request_id in self._seen if seen_kind == kind}
                for request_id, request, candidate, baseline in unjudged_answers(services.store, services.run_id,
                                                                                 self.turns, skip, kind):  # fmt: skip
                    self.offer_answers(request_id, request, candidate, baseline, kind)
                    await asyncio.sleep(0)  # let the workers start on them meanwhile
            if self._queue is not None:
                await self._drain()
        finally:
            await self.close()

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._flush()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- choosing and asking ------------------------------------------------------------

    def _kinds(self, services: StageServices) -> list[str]:
        """The kinds of pairs the run has: the candidate's, and production's own with a noise floor."""
        scenario = services.store.get_run(services.run_id).scenario
        return [PAIR_CANDIDATE, *([PAIR_NOISE] if scenario.get("noise_floor") else [])]

    def offer_answers(self, request_id: str, request: dict[str, Any], candidate: str, baseline: str,
                      kind: str = PAIR_CANDIDATE) -> None:  # fmt: skip
        """Judge one pair whose two answers are ``candidate`` and ``baseline`` (a no-op for a pair
        already offered, or left out by the sample). Production's own pairs (``kind`` noise: its
        second answer as the candidate) are all judged: they measure the judge's noise floor."""
        if (kind, request_id) in self._seen or self._stopped is not None:
            return
        self._seen.add((kind, request_id))
        if kind == PAIR_CANDIDATE:
            if not in_sample(self.seed, request_id, self._rate):
                return
            if self.judge.sample is not None and self._selected >= self.judge.sample:
                return
            self._selected += 1
        if same_answer(candidate, baseline):
            self._store_row(kind, (request_id, 0, True, None, None, 0, None))
            return
        first = candidate_first(self.seed, request_id)
        orders = (first, not first) if self.judge.both_orders else (first,)
        store = self._store
        for turn, candidate_is_a in enumerate(orders):
            a, b = (candidate, baseline) if candidate_is_a else (baseline, candidate)
            prompt = render_prompt(self.template, self.rubric, request, a, b)
            key = verdict_key(self.judge.arm.model, self.judge.arm.params, self.template, self.rubric, request, a, b)
            if key in self._waiting:
                self._waiting[key].append((kind, request_id, turn, candidate_is_a))
            elif store.judge_verdict(key) is not None:
                self._store_row(kind, (request_id, turn, candidate_is_a, key, None, 0, None))
            else:
                self._waiting[key] = []
                self._enqueue(_Job(kind, request_id, turn, candidate_is_a, key, prompt))

    def _enqueue(self, job: _Job) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            limits = self.judge.arm.limits
            self._workers = [asyncio.ensure_future(self._work()) for _ in range(limits.concurrency)]
        self._queue.put_nowait(job)

    async def _drain(self) -> None:
        assert self._queue is not None
        await self._queue.join()

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            try:
                if job is not None and self._stopped is None:
                    await self._judge(job)
            except NotSent:
                pass  # the run stops: this pair is judged by a resume or 'replay judge'
            except ArmStopped as exc:
                self._stop(str(exc))
            finally:
                self._queue.task_done()

    async def _judge(self, job: _Job) -> None:
        assert self._client is not None
        client = self._client
        body = client.provider.build_body({"messages": [{"role": "user", "content": job.prompt}]})
        tokens = client.provider.prompt_tokens(body) + 200 if self.judge.arm.limits.tpm else 0
        attempts, cost, error = 0, 0.0, "no answer"
        for _ in range(PARSE_ATTEMPTS):
            exchange = await client.call(body, tokens)
            self.calls += 1
            attempts += len(exchange.attempts)
            if exchange.completion is None:
                assert exchange.error is not None
                error = f"{exchange.error.error_class}: {exchange.error.message}"
                self._unreachable(exchange.error.error_class, error)
                break  # the arm's own retries are spent
            self._reached = True
            cost += self._pay(body, exchange.completion)
            verdict = parse_verdict(exchange.completion.text)
            if verdict is not None:
                reason = scrub_shapes(verdict.reason)
                self._verdicts.append((job.key, verdict.winner, reason, attempts, cost, self.judge.arm.model))
                self._answered(job, None, attempts, cost)
                return
            error = "invalid_verdict: the answer is not a JSON object with winner A, B or tie: " + \
                repr((exchange.completion.text or "")[:200])  # fmt: skip
        self.errors += 1
        self._answered(job, scrub_shapes(error)[:MAX_ERROR_CHARS], attempts, cost)

    def _unreachable(self, error_class: str, error: str) -> None:
        """A judge that never connected is dead: after a few such failures, stop asking it rather
        than retrying every pair's every order (the run itself goes on)."""
        if error_class != "connection_error" or self._reached:
            return
        self._connection_failures += 1
        if self._connection_failures >= UNREACHABLE_AFTER:
            self._stop(f"endpoint {self.judge.arm.base_url} is unreachable ({scrub_shapes(error)[:MAX_ERROR_CHARS]})")

    def _answered(self, job: _Job, error: str | None, attempts: int, cost: float) -> None:
        self._store_row(job.kind, (job.request_id, job.turn, job.candidate_is_a, job.key, error, attempts, cost))
        for kind, request_id, turn, candidate_is_a in self._waiting.pop(job.key, []):
            self._store_row(kind, (request_id, turn, candidate_is_a, job.key, error, 0, None))

    def _pay(self, body: dict[str, Any], completion: Completion) -> float:
        model = self.judge.arm.model
        usage = completion.usage
        prompt = usage.prompt_tokens if usage.prompt_tokens is not None else estimate_prompt_tokens(body, model)
        output = usage.completion_tokens if usage.completion_tokens is not None else count_text_tokens(completion.text or "", model)
        known = usage.prompt_tokens is not None and usage.completion_tokens is not None
        priced = self.prices.cost_of(model, usage) if known else self.prices.cost(model, prompt, output)  # cache rates too
        if priced is None and not self._unpriced_note and self._services is not None:
            self._unpriced_note = True
            self._services.warn(f"no price for the judge's model '{model}': its cost counts as unknown (add it under 'prices')")
        cost = priced or 0.0
        if cost and self._services is not None:
            self._services.spend(cost)
        return cost

    def _stop(self, why: str) -> None:
        if self._stopped is None:
            self._stopped = why
            if self._services is not None:
                self._services.warn(f"judge: {why}; judging stopped ('replay judge RUN' judges the rest)")

    # --- storing --------------------------------------------------------------------------

    @property
    def _store(self) -> Store:
        assert self._services is not None, "start() comes first"
        return self._services.store

    def _store_row(self, kind: str, row: tuple[str, int, bool, str | None, str | None, int, float | None]) -> None:
        """Written at the end of this event-loop turn, with whatever else completes in it."""
        self._rows.append((kind, row))
        if len(self._rows) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        if not self._rows and not self._verdicts:
            return
        verdicts, rows = self._verdicts, self._rows
        self._verdicts, self._rows = [], []
        run_id = self._services.run_id if self._services else ""
        try:
            for kind in dict.fromkeys(kind for kind, _ in rows) or (PAIR_CANDIDATE,):
                self._store.add_judgements(run_id, verdicts, [row for row_kind, row in rows if row_kind == kind], kind)
                verdicts = []
        except StoreWriteError as exc:
            if not self._unwritten_note and self._services is not None:
                self._unwritten_note = True
                self._services.warn(f"judge: verdicts not stored ({exc}); 'replay judge RUN' judges those pairs again")


def _text(completion: Completion | None) -> str:
    return answer_text(completion.text, completion.tool_calls) if completion is not None else ""


# --- over a stored run ---------------------------------------------------------------------


def baseline_of(scenario: dict[str, Any]) -> str:
    return ARM_PRODUCTION if scenario.get("baseline") == "fresh" else ARM_LOGGED


def unjudged_answers(store: Store, run_id: str, turns: int, skip: frozenset[str] | set[str] = frozenset(),
                     kind: str = PAIR_CANDIDATE) -> Iterator[tuple[str, dict[str, Any], str, str]]:  # fmt: skip
    """(request_id, request, candidate's answer, baseline's answer) of the run's pairs answered
    on both arms that have no verdict yet (and are not in ``skip``), by request id. Only their
    answers are read: after a run whose every pair was offered, that is none."""
    base_arm, other_arm = baseline_of(store.get_run(run_id).scenario), COMPARED_ARM[kind]
    judged = store.judged_ids(run_id, turns, kind)
    todo = [rid for rid in store.pair_ids(run_id, base_arm, other_arm) if rid not in judged and rid not in skip]
    if not todo:
        return
    cases = store.cases(run_id, only=todo)
    rows = store.answers(run_id, (base_arm, other_arm), ("request_id", "arm", "status", "text", "tool_calls_json"),
                         only=todo)  # fmt: skip
    for request_id, arms in group_by_request(rows):
        base, cand = arms.get(base_arm), arms.get(other_arm)
        if base is None or cand is None or base[2] != "ok" or cand[2] != "ok":
            continue
        request = cases.get(request_id, ({}, {}))[0]
        yield request_id, request, _stored_text(cand), _stored_text(base)




def _stored_text(row: tuple[Any, ...]) -> str:
    return answer_text(row[3], orjson.loads(row[4]) if row[4] else ())


def judge_from_snapshot(scenario: dict[str, Any]) -> Judge | None:
    data = scenario.get("judge")
    if not data:
        return None
    arm = dict(data["arm"])
    return Judge(**{**data, "arm": Arm(**{**arm, "limits": Limits(**arm["limits"])})})


@dataclass(frozen=True)
class JudgedRun:
    run_id: str
    calls: int
    errors: int
    spent_usd: float
    stopped: str | None


def judge_stored(store: Store, run_id: str, warn: Callable[[str], None] = lambda message: None,
                 provider_for_arm: Callable[[str, Arm], Provider] | None = None) -> JudgedRun:  # fmt: skip
    """Judge the stored pairs of a run that have no verdict yet (``replay judge RUN``)."""
    from replay.errors import InputError

    run = store.get_run(run_id)
    judge = judge_from_snapshot(run.scenario)
    if judge is None:
        raise InputError(f"run {run.id} has no judge: add a 'judge:' section to its scenario and run it again")
    if provider_for_arm is None:
        get_provider(judge.arm.provider).check_arm(ARM_JUDGE, judge.arm)
    stage = JudgeStage(judge, int((run.scenario.get("sample") or {}).get("seed", 0)), run.scenario.get("prices"),
                       provider_for_arm)  # fmt: skip
    spent: list[float] = []
    stopping = False

    async def pause(seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def main() -> None:
        services = StageServices(store=store, run_id=run.id, planned=run.planned or 0, pause=pause,
                                 stopping=lambda: stopping, rng=random.Random(), spend=spent.append, warn=warn)  # fmt: skip
        stage.start(services)
        await stage.finish()

    asyncio.run(main())
    return JudgedRun(run.id, stage.calls, stage.errors, sum(spent), stage.stopped)
