"""The provider interface and registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping

from replay.errors import InputError
from replay.types import Completion


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
    """Sends one attempt of a chat request to one endpoint."""

    @abstractmethod
    def build_body(self, request: dict[str, Any]) -> dict[str, Any]:
        """The body to send: the logged request with the arm's model and parameters."""

    @abstractmethod
    async def send(self, body: dict[str, Any], timeout_s: float) -> Completion:
        """Send one attempt; raise :class:`ProviderError` on any failure."""

    async def aclose(self) -> None:
        """Release connections."""


ProviderFactory = Callable[..., Provider]
PROVIDERS: dict[str, ProviderFactory] = {}


def register_provider(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    def decorate(factory: ProviderFactory) -> ProviderFactory:
        PROVIDERS[name] = factory
        return factory

    return decorate


def get_provider(name: str) -> ProviderFactory:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise InputError(f"unknown provider '{name}' (known: {', '.join(sorted(PROVIDERS))})") from None
