"""A scripted in-process provider: engine tests that need no server and no HTTP.

A test says, per prompt, what the endpoint answers, attempt after attempt, and what each
failure means (retried, fatal, or final; the wait it asks for): the engine must obey the
provider's policy whatever it is. Registered as ``scripted`` through the provider registry,
by the ``scripted`` fixture, only while a test uses it; it stays out of the package, so
users never see it among the known providers.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

from replay.config import Arm
from replay.providers import PROVIDERS, Provider, ProviderError, register_provider
from replay.retry import MAX_HINT_S, RetryPlan, backoff_delay
from replay.tokens import estimate_prompt_tokens
from replay.types import Completion, Usage

LATENCY_MS = 5.0
"""Every scripted answer's latency: what a test compares stored latencies with."""


class ScriptedError(ProviderError):
    """A failed attempt that carries its own meaning, as a provider's error bodies and headers do."""

    def __init__(self, message: str, *, retry: bool = True, fatal: bool = False, wait_s: float | None = None,
                 **details: Any) -> None:  # fmt: skip
        super().__init__(message, latency_ms=details.pop("latency_ms", LATENCY_MS), **details)
        self.retry, self.fatal, self.wait_s = retry, fatal, wait_s


def fail(status: int | None, message: str = "scripted failure", **meaning: Any) -> ScriptedError:
    """An error answer (``status``), or a transport failure (``status`` None, ``error_class`` saying which)."""
    error_class = meaning.pop("error_class", "http_error" if status is not None else "connection_error")
    return ScriptedError(message, status=status, error_class=error_class, **meaning)


@dataclass
class Script:
    """What the endpoint at ``base_url`` answers: per prompt, failures played in order, then the answer."""

    base_url: str
    failures: dict[str, list[ScriptedError]] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    """Every body sent, in order."""

    def on(self, prompt: str, *failures: ScriptedError) -> Script:
        self.failures[prompt] = list(failures)
        return self

    def always(self, prompt: str, failure: ScriptedError) -> Script:
        """Fail every attempt for ``prompt`` the same way (``limits.max_attempts`` is at most 100)."""
        self.failures[prompt] = [failure] * 100
        return self

    @property
    def prompts(self) -> list[str]:
        return [_prompt(body) for body in self.bodies]

    def answer(self, body: dict[str, Any], model: str) -> Completion:
        self.bodies.append(body)
        pending = self.failures.get(_prompt(body))
        if pending:
            raise pending.pop(0)
        usage = Usage(estimate_prompt_tokens(body, model), 5)
        return Completion(f"answer to {_prompt(body)}", finish_reason="stop", usage=usage, model=model,
                          latency_ms=LATENCY_MS, ttft_ms=LATENCY_MS)  # fmt: skip


def _prompt(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


SCRIPTS: dict[str, Script] = {}
_ids = itertools.count(1)


class ScriptedProvider(Provider):
    def __init__(self, script: Script, model: str, params: dict[str, Any]) -> None:
        self.script, self.model, self.params = script, model, params

    @classmethod
    def from_arm(cls, name: str, arm: Arm) -> ScriptedProvider:
        return cls(SCRIPTS[arm.base_url], arm.model, arm.params)

    def build_body(self, request: dict[str, Any]) -> dict[str, Any]:
        return {**request, "model": self.model, **self.params}

    async def send(self, body: dict[str, Any], timeout_s: float) -> Completion:
        return self.script.answer(body, self.model)

    def retry_plan(self, error: ProviderError, attempt: int, max_attempts: int, rng: random.Random) -> RetryPlan:
        meant = error if isinstance(error, ScriptedError) else ScriptedError(error.message)  # a timeout: retried
        if meant.fatal:
            return RetryPlan(retry=False, fatal=True)
        if not meant.retry or attempt >= max_attempts:
            return RetryPlan(retry=False)
        if meant.wait_s is not None:
            return RetryPlan(retry=True, delay_s=min(meant.wait_s, MAX_HINT_S), hinted=True)
        return RetryPlan(retry=True, delay_s=backoff_delay(attempt - 1, rng))

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        return estimate_prompt_tokens(body, self.model)

    def max_output_tokens(self, body: dict[str, Any]) -> int | None:
        return body.get("max_tokens")

    def sent_params(self, body: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in body.items() if key != "messages"}


@contextlib.contextmanager
def scripted_endpoint() -> Iterator[Script]:
    """Register the provider and a fresh script for the time of one test."""
    script = Script(f"http://scripted-{next(_ids)}.invalid/v1")
    SCRIPTS[script.base_url] = script
    register_provider("scripted")(ScriptedProvider)
    try:
        yield script
    finally:
        PROVIDERS.pop("scripted", None)
        SCRIPTS.pop(script.base_url, None)
