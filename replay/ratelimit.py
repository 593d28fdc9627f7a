"""Per-arm pacing: a concurrency cap plus requests- and tokens-per-minute.

Requests are spaced evenly (no burst) because providers enforce their per-minute
limits in short windows: 300 rpm means at most 5 in any second, not 300 at the top of
the minute. The spacing is measured from the moment each request actually leaves, so
an event-loop stall never releases a burst of overdue requests. A server's retry hint
pauses the whole arm, so one 429 slows every worker instead of just the request that
got it. No I/O; the clock and the sleep are injectable for tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

SAFETY = 1.03
"""Space requests 3% wider than the limit, so clock and network jitter never tip a window over."""


class Pacer:
    """Pure arithmetic over an injectable clock: when may the next request leave?"""

    def __init__(self, rpm: float | None, tpm: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.request_interval = 60.0 / rpm * SAFETY if rpm else 0.0
        self.seconds_per_token = 60.0 / tpm * SAFETY if tpm else 0.0
        self.clock = clock
        self.next_request = float("-inf")
        self.next_token = float("-inf")
        self.blocked_until = float("-inf")

    @property
    def paces(self) -> bool:
        return bool(self.request_interval or self.seconds_per_token)

    def earliest(self) -> float:
        return max(self.next_request, self.next_token, self.blocked_until)

    def take(self, tokens: int = 0) -> float:
        """Record a request leaving now; returns its send time."""
        now = self.clock()
        self.next_request = now + self.request_interval
        self.next_token = now + tokens * self.seconds_per_token
        return now

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
        self._turn = asyncio.Lock()  # FIFO: requests leave in the order they asked

    async def wait_turn(self, tokens: int = 0) -> None:
        """Wait until this request may leave, and mark it sent."""
        if not self.pacer.paces and self._clock() >= self.pacer.blocked_until:
            return
        async with self._turn:
            while True:
                delay = self.pacer.earliest() - self._clock()
                if delay <= 0:
                    break
                await self._sleep(delay)
            self.pacer.take(tokens)

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
