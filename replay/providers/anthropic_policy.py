"""What the Anthropic Messages API means by its answers: which are fatal, which are retried and
after how long, and when its rate-limit headers say the arm must wait.

Written after the official SDK's retry policy (anthropic-sdk-python ``_base_client.py``,
``_should_retry`` and ``_calculate_retry_timeout``): retried are connection errors,
timeouts, 408, 409, 429 and every 5xx (529 ``overloaded_error`` among them), after
:func:`replay.retry.backoff_delay` (the SDK's ``min(0.5 * 2**n, 8)`` with its jitter);
``x-should-retry`` overrides the status; a server hint (``retry-after-ms``, ``retry-after``
in seconds or as an HTTP date) wins over the backoff. Two differences, both because a
replay is not an interactive caller: a hint over the SDK's 60 s is honoured (up to
:data:`~replay.retry.MAX_HINT_S`) rather than ignored, and with no hint a 429 or 529 waits
until the ``anthropic-ratelimit-*-reset`` of an exhausted limit. A hinted wait slows the
whole arm (:class:`~replay.arm.ArmClient` pauses its limiter).

Fatal answers stop the arm, since every request would meet them: 401 (``authentication_error``),
402 (``billing_error``), 403 (``permission_error``), a credit balance too low (Anthropic
answers it as a 400), and a redirect. Pure, no I/O.
"""

from __future__ import annotations

import random
import time
from datetime import datetime
from typing import Any, Mapping

from replay.providers.openai_policy import retry_hint as _seconds_hint
from replay.retry import RetryPlan, plan_after_failure

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header every request sends."""
DEFAULT_API_KEY_ENV = "ANTHROPIC_API_KEY"
"""Where the key comes from when an arm names no ``api_key_env`` (the SDK's default too)."""
DEFAULT_PARAMS: Mapping[str, Any] = {"temperature": 0}
"""Sent unless an arm's ``params`` say otherwise: Anthropic has no ``seed``."""
DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` (required by the API) when the logged request has none: ``default_max_tokens`` on the arm."""
FATAL_STATUS = frozenset({401, 402, 403})
FATAL_TYPES = frozenset({"authentication_error", "billing_error", "permission_error"})
_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")


def is_fatal(status: int | None, error_type: str | None, message: str = "") -> bool:
    if status is None:
        return False
    if status in FATAL_STATUS or 300 <= status < 400 or error_type in FATAL_TYPES:
        return True
    return status == 400 and "credit balance" in message.lower()


def ratelimit_reset(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """When an ``anthropic-ratelimit-*-remaining`` count is 0, the seconds until its ``-reset``
    (an RFC 3339 time); the longest such wait."""
    waits = []
    for kind in _LIMITS:
        remaining = headers.get(f"anthropic-ratelimit-{kind}-remaining")
        reset = headers.get(f"anthropic-ratelimit-{kind}-reset")
        if remaining is None or reset is None or remaining.strip() != "0":
            continue
        try:
            when = datetime.fromisoformat(reset.strip().replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        waits.append(max(0.0, when - (now if now is not None else time.time())))
    return max(waits) if waits else None


def retry_hint(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``/``retry-after`` first (as the SDK
    reads them), then the reset of an exhausted ``anthropic-ratelimit-*`` limit."""
    lowered = {key.lower(): value for key, value in headers.items()}
    hint = _seconds_hint({key: value for key, value in lowered.items() if key.startswith("retry-after")}, now)
    return hint if hint is not None else ratelimit_reset(lowered, now)


def _positive_hint(headers: Mapping[str, str]) -> float | None:
    """A hint of 0 s or less backs off instead, as the Anthropic SDK ignores it."""
    hint = retry_hint(headers)
    return hint if hint is not None and hint > 0 else None


def plan_retry(
    *,
    attempt: int,
    max_attempts: int,
    status: int | None,
    error_type: str | None = None,
    message: str = "",
    headers: Mapping[str, str] | None = None,
    transport_error: bool = False,
    rng: random.Random | None = None,
) -> RetryPlan:
    """What to do after attempt number ``attempt`` (1-based) failed."""
    return plan_after_failure(fatal=is_fatal(status, error_type, message), attempt=attempt, max_attempts=max_attempts, status=status,
                              headers=headers, transport_error=transport_error, rng=rng, hint_of=_positive_hint)  # fmt: skip
