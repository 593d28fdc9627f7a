"""Providers: how one attempt of a request reaches an endpoint.

A provider sends one attempt and returns a :class:`~replay.types.Completion` or raises
:class:`ProviderError`; retries, pacing and storage belong to the runner. Providers
register by name: the OpenAI-compatible one (``openai``), Azure OpenAI's (``azure``), Gemini's
OpenAI-compatible endpoint (``gemini``) and the Anthropic Messages one (``anthropic``).
"""

from __future__ import annotations

from replay.providers.base import PROVIDERS, Provider, ProviderError, get_provider, register_provider
from replay.providers import openai_compat as _openai_compat  # noqa: F401  registers "openai"
from replay.providers.openai_compat import OpenAIEmbeddingsProvider
from replay.providers import anthropic as _anthropic  # noqa: F401  registers "anthropic"
from replay.providers import azure as _azure  # noqa: F401  registers "azure"
from replay.providers import gemini as _gemini  # noqa: F401  registers "gemini"

EMBEDDING_PROVIDERS: dict[str, type[OpenAIEmbeddingsProvider]] = {"openai": OpenAIEmbeddingsProvider}
"""The APIs an ``embeddings`` endpoint may speak, by the name its ``provider`` key gives."""

__all__ = ["EMBEDDING_PROVIDERS", "PROVIDERS", "Provider", "ProviderError", "get_provider", "register_provider"]
