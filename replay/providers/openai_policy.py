"""What the OpenAI API means by its answers: which are fatal, which are retried and after how
long, how many tokens a request counts, which parameters were sent, where the key comes from.

Modelled on the official OpenAI and Anthropic SDKs; pure, no I/O. Retried: connection
errors, timeouts, 408, 409, 429 and 5xx, after :func:`replay.retry.backoff_delay`. A server
hint (``retry-after-ms``, ``retry-after`` in seconds or as an HTTP date,
``x-ratelimit-reset-*`` when the remaining count is 0) wins over the backoff, and
``x-should-retry`` overrides everything. Fatal answers stop the whole arm: 401, 402 (a
gateway's "insufficient credits", OpenRouter's), 403 (except a gateway's moderation flag on one
input), an error whose code is ``insufficient_quota`` or LiteLLM's ``budget_exceeded``, and a
redirect (3xx: replay follows none, so every request to that ``base_url`` would meet it).
"""

from __future__ import annotations

import os
import random
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

from replay.errors import InputError
from replay.retry import RetryPlan, plan_after_failure

DEFAULT_PARAMS: Mapping[str, Any] = {"temperature": 0, "seed": 1234}
"""Sent unless an arm's ``params`` say otherwise: as deterministic as the API allows."""
FATAL_STATUS = frozenset({401, 402, 403})
FATAL_CODES = frozenset({"insufficient_quota", "budget_exceeded"})
"""Error codes every further request would meet too: OpenAI's spent quota (a 429), a LiteLLM
proxy's spent budget (a 400 of type ``budget_exceeded``)."""
FLAGGED = "moderation_flagged"
"""The code given to a 403 that flags one input (OpenRouter's moderation, with the reasons in its
``metadata``): that request's error, not the arm's."""
EPOCH_AFTER_S = 1e9
"""A reset "duration" this large (31 years) is a Unix time, as some gateways send it."""
PROMPT_KEYS = frozenset({"messages", "tools", "functions", "response_format", "prediction", "system"})
"""What a chat request says besides its parameters: everything else in a body is a parameter sent
(``system`` is an Anthropic Messages request's system prompt, when the log holds one).""" 
OUTPUT_LIMIT_KEYS = ("max_completion_tokens", "max_tokens")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str) -> float | None:
    """Parse OpenAI's reset durations such as ``1s``, ``6m0s`` or ``20ms`` into seconds."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(a + b for a, b in parts) != value:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def retry_hint(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, or None when it gives no usable hint."""
    lowered = {key.lower(): value for key, value in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    if "retry-after" in lowered:
        raw = lowered["retry-after"]
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = parsedate_to_datetime(raw).timestamp()
                return max(0.0, when - (now if now is not None else time.time()))
            except (TypeError, ValueError):
                pass
    return ratelimit_reset(lowered)


def ratelimit_reset(headers: Mapping[str, str]) -> float | None:
    """When a ``x-ratelimit-remaining-*`` count is 0, the matching reset duration (a Unix time, as
    some gateways send it, counted from now)."""
    waits = []
    for kind in ("requests", "tokens"):
        remaining = headers.get(f"x-ratelimit-remaining-{kind}")
        reset = headers.get(f"x-ratelimit-reset-{kind}")
        if remaining is None or reset is None:
            continue
        try:
            if float(remaining) > 0:
                continue
        except ValueError:
            continue
        seconds = parse_duration(reset)
        if seconds is not None and seconds >= EPOCH_AFTER_S:
            seconds = max(0.0, seconds - time.time())
        if seconds is not None:
            waits.append(seconds)
    return max(waits) if waits else None


def is_fatal(status: int | None, error_code: str | None) -> bool:
    if status is None:
        return False
    if status == 403 and error_code == FLAGGED:
        return False
    return status in FATAL_STATUS or 300 <= status < 400 or (400 <= status < 500 and error_code in FATAL_CODES)


def plan_retry(
    *,
    attempt: int,
    max_attempts: int,
    status: int | None,
    error_code: str | None = None,
    headers: Mapping[str, str] | None = None,
    transport_error: bool = False,
    rng: random.Random | None = None,
) -> RetryPlan:
    """What to do after attempt number ``attempt`` (1-based) failed."""
    return plan_after_failure(fatal=is_fatal(status, error_code), attempt=attempt, max_attempts=max_attempts, status=status,
                              headers=headers, transport_error=transport_error, rng=rng, hint_of=retry_hint)  # fmt: skip


def sent_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a chat request: what is stored with each outcome and compared across arms."""
    return {key: value for key, value in body.items() if key not in PROMPT_KEYS}


_REJECTS = re.compile(r"unrecogni[sz]ed|unknown|unsupported|not supported|does not support|not permitted|not allowed"
                      r"|extra (?:inputs|fields)|extra_forbidden|unexpected|cannot find field|invalid (?:parameter|argument|field)", re.I)
_INSTEAD = re.compile(r"\buse '?([A-Za-z_][\w]*)'? instead", re.I)
_NEVER_HINTED = frozenset({"model", "stream", "lossy"})


def rejected_parameter(status: int | None, message: str | None, params: Mapping[str, Any]) -> str | None:
    """The sent parameter an error answer says the server refuses (``Unrecognized request argument
    supplied: seed``, vLLM's ``extra_forbidden`` on ``stream_options``, Gemini's ``Unknown name
    "seed"``): the one the message names first. None for other errors (a value out of range...)."""
    found = rejected_parameters(status, message, params)
    return found[0] if found else None


def rejected_parameters(status: int | None, message: str | None, params: Mapping[str, Any]) -> list[str]:
    """Every sent parameter an error answer says the server refuses, in the order the message names
    them (Gemini lists each ``Unknown name`` of a request in one 400)."""
    if status not in (400, 422) or not message or not _REJECTS.search(message):
        return []
    found: list[tuple[int, str]] = []
    for key in params:
        if key not in _NEVER_HINTED:
            match = re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)", message)
            if match:
                found.append((match.start(), key))
    return [key for _, key in sorted(found)]


def rejected_parameter_hint(arm: str, param: str | list[str], status: int | None, message: str) -> str:
    """One line: what the endpoint refused, and the patch that stops sending it (them)."""
    names = [param] if isinstance(param, str) else list(param)
    instead = _INSTEAD.search(message)
    fixes = []
    for name in names:
        pointer = "/" + name.replace("~", "~0").replace("/", "~1")
        if len(names) == 1 and instead and instead.group(1) != name:
            fixes.append(f"{{op: move, from: {pointer}, path: /{instead.group(1)}}}")
        else:
            fixes.append(f"{{op: remove, path: {pointer}}}")
    said = " ".join(message.split())
    said = said if len(said) <= 120 else said[:117] + "..."
    quoted = " and ".join(f"'{name}'" for name in names)
    what, it = ("the parameter", "it") if len(names) == 1 else ("the parameters", "them")
    hint = (f"{arm}: the endpoint rejects {what} {quoted} ({status}: {said}); stop sending {it} with"
            f" {arm}.transform.patch: [{', '.join(fixes)}]")  # fmt: skip
    if "stream_options" in names:
        hint += " (usage is then counted locally and marked estimated)"
    return hint


def max_output_tokens(body: Mapping[str, Any]) -> int | None:
    """The answer's token cap a request declares, which the provider counts against its limit."""
    for key in OUTPUT_LIMIT_KEYS:
        if isinstance(body.get(key), int):
            return int(body[key])
    return None


def api_key_for(name: str, api_key_env: str | None) -> str | None:
    """The arm's key from its environment variable; the message never shows the key."""
    if not api_key_env:
        return None
    api_key = os.environ.get(api_key_env)
    if not api_key:
        raise InputError(f"{name}.api_key_env: the environment variable {api_key_env} is not set")
    if any(char.isspace() or not char.isprintable() for char in api_key):
        raise InputError(
            f"{name}.api_key_env: the value of {api_key_env} contains a space, a line break or a control character"
        )
    return api_key
