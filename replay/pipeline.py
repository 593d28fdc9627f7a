"""The pair pipeline: stages that work on each pair as soon as both its answers are stored.

The engine replays requests; a :class:`PairStage` (comparing, and next judging or
embedding) sees each request's pair the moment its last answer is committed, while the
replay goes on, so the end of a run does not wait for a pass over everything. A stage
that calls a model starts its own tasks and uses the services the engine lends it (the
run's store, budget and stop signal); one that only computes does its work in
:meth:`PairStage.offer`.

Pairs a run never offers (answered before a resume, or by an interrupted run) are still
handled later: the read-only commands compute missing comparisons, and each network
stage can be run over a stored run's pairs that lack its output.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, ClassVar, Sequence

from replay.store import Store
from replay.types import PAIR_CANDIDATE, LogRecord, Outcome


@dataclass(frozen=True)
class AnsweredPair:
    """One request answered on the baseline arm and on the arm compared with it, as stored."""

    request_id: str
    request: dict[str, Any]
    """The logged request body."""
    metadata: dict[str, Any]
    baseline: Outcome
    """The ``logged`` or ``production`` answer."""
    candidate: Outcome
    """The answer compared with the baseline: the candidate's, or for a ``noise`` pair,
    production's second answer."""
    kind: str = PAIR_CANDIDATE
    """:data:`~replay.types.PAIR_CANDIDATE` or :data:`~replay.types.PAIR_NOISE`."""


@dataclass(frozen=True)
class PairKind:
    """Which two arms make a pair of one kind."""

    kind: str
    baseline_arm: str
    other_arm: str


@dataclass(frozen=True)
class StageServices:
    """What the engine lends a stage for one run."""

    store: Store
    run_id: str
    planned: int
    """The requests the run samples (its pairs, when every one is answered)."""
    pause: Callable[[float], Awaitable[None]]
    """Sleeps; raises :class:`replay.arm.NotSent` once the run stops."""
    stopping: Callable[[], bool]
    rng: random.Random
    spend: Callable[[float], None]
    """Adds USD to the run's spend, which counts against ``limits.budget_usd``."""
    warn: Callable[[str], None]
    """One line for the user (stderr, through the run's reporter)."""


class PairStage(ABC):
    """Works on each pair of a run while the run goes on."""

    name: ClassVar[str]

    def start(self, services: StageServices) -> None:
        """Called once, before the first pair is offered."""

    @abstractmethod
    def offer(self, pair: AnsweredPair) -> None:
        """Called on the event loop as soon as both answers of a pair are committed. Must not
        block: a stage that calls the network starts its own task(s) and awaits them in
        :meth:`finish`."""

    async def finish(self) -> None:
        """Called once after the last answer: finish and store the stage's own work."""


class PairTracker:
    """Holds each dispatched request's first answers until a pair of it is complete, then
    offers the pair to every stage. Holds only what is in flight: a request is forgotten
    once each of its pairs is offered."""

    def __init__(self, stages: Sequence[PairStage], kinds: Sequence[PairKind]) -> None:
        self.stages = tuple(stages)
        self.kinds = {kind.kind: kind for kind in kinds}
        self._waiting: dict[str, tuple[LogRecord, dict[str, Outcome], set[str]]] = {}

    def __bool__(self) -> bool:
        return bool(self.stages)

    def expect(self, record: LogRecord, kinds: Sequence[str] = (PAIR_CANDIDATE,)) -> None:
        """A record each of whose pairs of these kinds has both answers still to come in this run."""
        self._waiting[record.id] = (record, {}, set(kinds))

    def answered(self, outcome: Outcome) -> None:
        """An outcome was committed; offer each pair it completes."""
        waiting = self._waiting.get(outcome.request_id)
        if waiting is None:
            return
        record, answers, kinds = waiting
        answers[outcome.arm] = outcome
        for name in sorted(kinds):
            kind = self.kinds[name]
            baseline, other = answers.get(kind.baseline_arm), answers.get(kind.other_arm)
            if baseline is None or other is None:
                continue
            kinds.discard(name)
            pair = AnsweredPair(record.id, record.request, record.metadata, baseline, other, name)
            for stage in self.stages:
                stage.offer(pair)
        if not kinds:
            del self._waiting[outcome.request_id]
