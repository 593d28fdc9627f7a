"""One client for one arm: the attempt loop any stage can use to call a model.

Paces each attempt through the arm's :class:`~replay.ratelimit.Limiter`, sends it, asks the
provider what a failure means (fatal, retried and after how long), backs off, and records
every attempt. Latency is the answering attempt's own: queueing for a turn and backing off
never count. What a stage does with the answer (store it, price it, compare it) is its own.

The loop (:class:`AttemptLoop`) is generic over the answer: a chat :class:`Completion` for
the arms (:class:`ArmClient`), a batch of vectors for an embeddings endpoint; all it reads
of an answer is its latency and the wait a server asked for.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, Protocol, TypeVar

from replay.config import Arm
from replay.errors import ArmStopped
from replay.providers import Provider, ProviderError
from replay.ratelimit import Limiter
from replay.retry import RetryPlan
from replay.types import Attempt, Completion

T = TypeVar("T")
Pause = Callable[[float], Awaitable[None]]
"""Waits for a turn or a retry; raises :class:`NotSent` when the stage stops meanwhile."""


class NotSent(Exception):
    """A request abandoned before its next attempt because the stage is stopping: nothing is stored."""


class Answer(Protocol):
    """What the attempt loop reads of an answer."""

    @property
    def latency_ms(self) -> float | None: ...
    @property
    def ratelimit_wait_s(self) -> float | None:
        """Set when the endpoint said its limit is used up: the whole arm waits this long."""


A = TypeVar("A", bound=Answer)
A_co = TypeVar("A_co", bound=Answer, covariant=True)


class Sender(Protocol[A_co]):
    """What the attempt loop needs of a provider: one attempt, and what a failure means."""

    async def send(self, body: dict[str, Any], timeout_s: float) -> A_co: ...
    def retry_plan(self, error: ProviderError, attempt: int, max_attempts: int, rng: random.Random) -> RetryPlan: ...
    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Exchange(Generic[A]):
    """What one request came to: the answer (or the last attempt's error) and every attempt made.
    Slotted: one is made per request, on the engine's hot path."""

    completion: A | None
    error: ProviderError | None
    attempts: tuple[Attempt, ...]


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class AttemptLoop(Generic[A]):
    """Sends requests to one endpoint, ``limits.concurrency`` at a time at most."""

    def __init__(
        self,
        name: str,
        arm: Arm,
        provider: Sender[A],
        *,
        pause: Pause = _sleep,
        stopping: Callable[[], bool] = lambda: False,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.arm = arm
        self.provider = provider
        self.limiter = Limiter(arm.limits.concurrency, arm.limits.rpm, arm.limits.tpm, sleep=pause)
        self._pause = pause
        self._stopping = stopping
        self._rng = rng or random.Random()

    async def call(self, body: dict[str, Any], tokens: int = 0) -> Exchange[A]:
        """Send ``body`` until it is answered, fails for good or runs out of attempts; ``tokens``
        is what it counts against the arm's tokens-per-minute limit.

        Raises :class:`~replay.errors.ArmStopped` on a fatal answer (every request to this
        endpoint would meet it) and :class:`NotSent` when the stage stops before an attempt."""
        limits, provider = self.arm.limits, self.provider
        attempts: list[Attempt] = []
        for number in range(1, limits.max_attempts + 1):
            async with self.limiter.slot(tokens):
                if self._stopping():
                    raise NotSent  # no new attempt once the stage stops: a resume sends it afresh
                started = time.time()
                try:
                    completion = await _within(provider.send(body, limits.timeout_s), limits.timeout_s)
                except asyncio.TimeoutError:
                    error = ProviderError(f"no complete answer within {limits.timeout_s:g}s", error_class="timeout",
                                          latency_ms=limits.timeout_s * 1000)  # fmt: skip
                except ProviderError as exc:
                    error = exc
                else:
                    attempts.append(Attempt(number, started, completion.latency_ms, 200))
                    if completion.ratelimit_wait_s:
                        self.limiter.pause(completion.ratelimit_wait_s)
                    return Exchange(completion, None, tuple(attempts))
            plan = provider.retry_plan(error, number, limits.max_attempts, self._rng)
            attempts.append(
                Attempt(number, started, error.latency_ms, error.status, error.error_class, error.message,
                        plan.delay_s if plan.retry else None)
            )  # fmt: skip
            if plan.fatal:
                raise ArmStopped(f"{self.name} endpoint answered {error.status}: {error.message} — not retrying")
            if not plan.retry:
                break
            if plan.hinted:
                self.limiter.pause(plan.delay_s)
            await self._pause(plan.delay_s)
        return Exchange(None, error, tuple(attempts))

    async def aclose(self) -> None:
        await self.provider.aclose()


class ArmClient(AttemptLoop[Completion]):
    """The attempt loop of a chat arm (candidate, production): its provider also builds the bodies."""

    provider: Provider

    def __init__(self, name: str, arm: Arm, provider: Provider, *, pause: Pause = _sleep,
                 stopping: Callable[[], bool] = lambda: False, rng: random.Random | None = None) -> None:  # fmt: skip
        super().__init__(name, arm, provider, pause=pause, stopping=stopping, rng=rng)


async def _within(awaitable: Awaitable[T], seconds: float) -> T:
    """A total deadline for one attempt; ``asyncio.timeout`` (3.11+) spares a task per request."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)
