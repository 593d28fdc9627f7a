"""Per-arm pacing: a concurrency cap plus requests- and tokens-per-minute.

Requests are spaced evenly (a GCRA with no burst) because providers enforce their
per-minute limits in short windows: 300 rpm means at most 5 in any second, not 300
at the top of the minute. A server's retry hint pauses the whole arm, so one 429
slows every worker instead of just the request that got it. No I/O; the clock and
the sleep are injectable for tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

SAFETY = 1.03
"""Space requests 3% wider than the limit: scheduling jitter must never tip a window over."""


class Pacer:
    """Hands out send times; pure arithmetic over an injectable clock."""

    def __init__(self, rpm: float | None, tpm: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.request_interval = 60.0 / rpm * SAFETY if rpm else 0.0
        self.seconds_per_token = 60.0 / tpm * SAFETY if tpm else 0.0
        self.clock = clock
        self._next_request = 0.0
        self._next_token = 0.0
        self.blocked_until = 0.0

    def reserve(self, tokens: int = 0) -> float:
        """Reserve the earliest send time for a request of ``tokens``, in clock units."""
        start = max(self.clock(), self._next_request, self._next_token, self.blocked_until)
        self._next_request = start + self.request_interval
        self._next_token = start + tokens * self.seconds_per_token
        return start

    def pause_until(self, when: float) -> None:
        """Hold every new send until ``when`` (a server asked us to wait)."""
        self.blocked_until = max(self.blocked_until, when)


class Limiter:
    """The pacer plus a concurrency cap, used as ``async with limiter.slot(tokens):``."""

    def __init__(
        self,
        concurrency: int,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.concurrency = concurrency
        self.pacer = Pacer(rpm, tpm, clock)
        self._sleep = sleep
        self._clock = clock
        self._semaphore = asyncio.Semaphore(concurrency)

    async def wait_turn(self, tokens: int = 0) -> None:
        """Wait until the pacer lets this request go; re-queues if a pause arrived meanwhile."""
        while True:
            when = self.pacer.reserve(tokens)
            delay = when - self._clock()
            if delay > 0:
                await self._sleep(delay)
            if self._clock() >= self.pacer.blocked_until:
                return

    def pause(self, seconds: float) -> None:
        self.pacer.pause_until(self._clock() + seconds)

    def slot(self, tokens: int = 0) -> "_Slot":
        return _Slot(self, tokens)


class _Slot:
    def __init__(self, limiter: Limiter, tokens: int) -> None:
        self.limiter, self.tokens = limiter, tokens

    async def __aenter__(self) -> None:
        await self.limiter._semaphore.acquire()
        try:
            await self.limiter.wait_turn(self.tokens)
        except BaseException:
            self.limiter._semaphore.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.limiter._semaphore.release()
