"""The provider interface and registry.

A provider is everything one API's wire format and policy decide: the body it sends, one
attempt, which failures are fatal or retried and after how long, how many tokens a request
counts, which parameters it sent, and what the environment must supply. The attempt loop
(:class:`replay.arm.ArmClient`) knows none of it.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, TypeVar

from replay.errors import InputError
from replay.retry import RetryPlan
from replay.types import Completion

if TYPE_CHECKING:
    from replay.config import Arm


class ProviderError(Exception):
    """One failed attempt: an HTTP error answer, or a transport failure (``status`` None)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        error_class: str = "http_error",
        headers: Mapping[str, str] | None = None,
        latency_ms: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.error_class = error_class
        self.headers = dict(headers or {})
        self.latency_ms = latency_ms

    @property
    def transport(self) -> bool:
        return self.status is None


class Provider(ABC):
    """Sends one attempt of a chat request to one endpoint, and says what its answers mean."""

    default_params: ClassVar[Mapping[str, Any]] = {}
    """The parameters a scenario's arm sends unless it says otherwise."""
    default_base_url: ClassVar[str | None] = None
    """The endpoint of an arm whose scenario names no ``base_url`` (Gemini's); None: it must name one."""

    @classmethod
    @abstractmethod
    def from_arm(cls, name: str, arm: Arm) -> Provider:
        """The provider of one arm (``candidate`` or ``production``) of a scenario."""

    @classmethod
    def check_arm(cls, name: str, arm: Arm) -> None:
        """Raise :class:`InputError` naming the key when the environment lacks what the arm needs
        (its key, its headers' variables); called before a run exists, so nothing is left behind."""

    @abstractmethod
    def build_body(self, request: dict[str, Any]) -> dict[str, Any]:
        """The body to send: the logged request with the arm's model and parameters."""

    @abstractmethod
    async def send(self, body: dict[str, Any], timeout_s: float) -> Completion:
        """Send one attempt; raise :class:`ProviderError` on any failure."""

    @abstractmethod
    def retry_plan(self, error: ProviderError, attempt: int, max_attempts: int, rng: random.Random) -> RetryPlan:
        """What to do after attempt number ``attempt`` (1-based) failed with ``error``."""

    @abstractmethod
    def prompt_tokens(self, body: dict[str, Any]) -> int:
        """An estimate of the tokens the request's prompt counts against a token limit."""

    @abstractmethod
    def max_output_tokens(self, body: dict[str, Any]) -> int | None:
        """The cap on the answer's tokens the request declares, if it declares one."""

    @abstractmethod
    def sent_params(self, body: dict[str, Any]) -> dict[str, Any]:
        """The parameters the body sent (stored with each outcome, compared across arms)."""

    async def aclose(self) -> None:
        """Release connections."""


ProviderFactory = type[Provider]
"""A provider class: the registry builds arms with :meth:`Provider.from_arm`."""
PROVIDERS: dict[str, ProviderFactory] = {}


_Registered = TypeVar("_Registered", bound=ProviderFactory)


def register_provider(name: str) -> Callable[[_Registered], _Registered]:
    def decorate(factory: _Registered) -> _Registered:
        PROVIDERS[name] = factory
        return factory

    return decorate


def get_provider(name: str) -> ProviderFactory:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise InputError(f"unknown provider '{name}' (known: {', '.join(sorted(PROVIDERS))})") from None
