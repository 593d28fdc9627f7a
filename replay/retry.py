"""What every provider's retry policy shares: the plan after a failed attempt and the backoff
schedule; pure, no I/O. Which answers are fatal or retried, and what a server's hint means,
is each provider's own (see :meth:`replay.providers.Provider.retry_plan`).

Backoff is ``min(0.5 * 2**n, 8)`` seconds times a jitter in [0.75, 1.0].
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Mapping

MAX_HINT_S = 300.0
"""A longer server hint is capped: a replay can wait, but not forever."""

INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class RetryPlan:
    """What to do after a failed attempt (a run's PASS or FAIL is :class:`replay.gates.Decision`)."""

    retry: bool
    fatal: bool = False
    delay_s: float = 0.0
    hinted: bool = False
    """True when the delay comes from the server: the whole arm should slow down."""


def backoff_delay(retry_number: int, rng: random.Random | None = None) -> float:
    """Delay before retry ``retry_number`` (0 for the first retry)."""
    jitter = 1 - 0.25 * (rng or random).random()
    return float(min(INITIAL_BACKOFF_S * 2**retry_number, MAX_BACKOFF_S) * jitter)


RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Retried by both official SDKs, with every 5xx."""


def plan_after_failure(
    *,
    fatal: bool,
    attempt: int,
    max_attempts: int,
    status: int | None,
    headers: Mapping[str, str] | None,
    transport_error: bool,
    rng: random.Random | None,
    hint_of: Callable[[Mapping[str, str]], float | None],
) -> RetryPlan:
    """The SDKs' retry rule once a provider has said whether the failure is ``fatal``: obey
    ``x-should-retry``, retry 408/409/429/5xx and transport errors, wait the server's hint
    (``hint_of`` reads it, capped at :data:`MAX_HINT_S`) or back off."""
    if fatal:
        return RetryPlan(retry=False, fatal=True)
    headers = headers or {}
    should = {key.lower(): value for key, value in headers.items()}.get("x-should-retry")
    if should == "false":
        return RetryPlan(retry=False)
    retryable = transport_error or status in RETRYABLE_STATUS or (status is not None and status >= 500)
    if should == "true":
        retryable = True
    if not retryable or attempt >= max_attempts:
        return RetryPlan(retry=False)
    hint = hint_of(headers)
    if hint is not None:
        return RetryPlan(retry=True, delay_s=min(hint, MAX_HINT_S), hinted=True)
    return RetryPlan(retry=True, delay_s=backoff_delay(attempt - 1, rng))
