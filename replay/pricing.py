"""USD prices per million tokens, and turning usage into cost.

The table covers common models; a scenario's ``prices`` overrides or extends it.
A model is looked up exactly, then by its longest matching prefix, so dated
snapshots (``gpt-4o-2024-08-06``) find their family; a gateway's name (OpenRouter's
``anthropic/claude-3.5-haiku``) by the vendor's name for it. An answer whose endpoint reports
its own cost (:attr:`replay.types.Completion.cost_usd`) is not priced here.

An entry may also price prompt caching: ``cache_write`` and ``cache_read`` per million
tokens (Anthropic's 5-minute cache writes and cache hits). Usage that counts cache tokens
is priced with :meth:`PriceTable.cost_of`; where an entry has no cache rate, those tokens
cost the input rate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from replay.types import Usage

PRICES_PER_MILLION: dict[str, tuple[float, ...]] = {
    # model: (input, output[, cache_write, cache_read]), USD per 1M tokens, list prices
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    # Claude, with 5-minute cache writes and cache hits, from Anthropic's pricing page
    # (https://platform.claude.com/docs/en/about-claude/pricing) and the model pages
    # (https://platform.claude.com/docs/zh-CN/models/{opus-5-5,sonnet-5-5,sonnet-5}/overview),
    # read 2026-12-01. Haiku 5.5 is priced by prompt length, which one entry cannot say: add it under `prices`.
    "claude-fable-5-1": (10.00, 50.00, 12.50, 0.25),
    "claude-fable-5": (10.00, 50.00, 12.50, 1.00),
    "claude-opus-5-5": (4.00, 20.00, 5.00, 0.20),
    "claude-sonnet-5-5": (2.00, 10.00, 2.50, 0.20),
    "claude-sonnet-5": (2.00, 10.00, 2.50, 0.20),
    "claude-opus-5": (5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-8": (5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-7": (5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-6": (5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-5": (5.00, 25.00, 6.25, 0.50),
    "claude-opus-4": (15.00, 75.00, 18.75, 1.50),  # Opus 4 and 4.1
    "claude-sonnet-4": (3.00, 15.00, 3.75, 0.30),  # Sonnet 4, 4.5 and 4.6
    "claude-haiku-4-5": (1.00, 5.00, 1.25, 0.10),
    "claude-3-5-haiku": (0.80, 4.00, 1.00, 0.08),
    "claude-3-haiku": (0.25, 1.25, 0.30, 0.03),
}


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cache_write: float | None = None
    cache_read: float | None = None

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        return ((prompt_tokens or 0) * self.input + (completion_tokens or 0) * self.output) / 1_000_000

    def usage_cost(self, usage: Usage) -> float:
        """The cost of ``usage``, its cache writes and reads (part of ``prompt_tokens``) at their own rates."""
        written, read = usage.cache_write_tokens or 0, usage.cache_read_tokens or 0
        fresh = max(0, (usage.prompt_tokens or 0) - written - read)
        write_rate = self.input if self.cache_write is None else self.cache_write
        read_rate = self.input if self.cache_read is None else self.cache_read
        prompt = fresh * self.input + written * write_rate + read * read_rate
        return (prompt + (usage.completion_tokens or 0) * self.output) / 1_000_000


def vendor_names(model: str) -> list[str]:
    """The names a gateway's model name may stand for, the likeliest first: without the vendor
    prefix (OpenRouter's and LiteLLM's ``anthropic/``) and the variant (``:free``, ``:nitro``),
    its version dots as the vendor writes them (``claude-3.5-haiku`` is ``claude-3-5-haiku``;
    ``claude-opus-4.5`` must not read as ``claude-opus-4``), then as given (``gpt-4.1``)."""
    bare = model.rsplit("/", 1)[-1].split(":", 1)[0]
    dashed = _VERSION_DOT.sub("-", bare)
    return [dashed, bare] if dashed != bare else [bare]


_VERSION_DOT = re.compile(r"(?<=\d)\.(?=\d)")


class PriceTable:
    def __init__(self, overrides: dict[str, dict[str, float]] | None = None) -> None:
        self._prices = {name: Price(*rates) for name, rates in PRICES_PER_MILLION.items()}
        self._resolved: dict[str, Price | None] = {}
        for name, entry in (overrides or {}).items():
            base = self._prices.get(name, Price(0.0, 0.0))
            self._prices[name] = Price(entry.get("input", base.input), entry.get("output", base.output),
                                       entry.get("cache_write", base.cache_write), entry.get("cache_read", base.cache_read))

    def lookup(self, model: str) -> Price | None:
        """The price of ``model``: exactly, then by its longest known prefix; a gateway's name
        (``anthropic/claude-3.5-haiku``, ``openai/gpt-4o-mini:nitro``) by the vendor's own name."""
        if model in self._prices:  # the common case, without the gateway's spellings
            return self._prices[model]
        if model not in self._resolved:
            self._resolved[model] = next(filter(None, map(self._known, vendor_names(model))), None)
        return self._resolved[model]

    def _known(self, model: str) -> Price | None:
        if model in self._prices:
            return self._prices[model]
        matches = [name for name in self._prices if model.startswith(name)]
        return self._prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        price = self.lookup(model)
        return None if price is None else price.cost(prompt_tokens, completion_tokens)

    def cost_of(self, model: str, usage: Usage) -> float | None:
        """The cost of one answer's usage, cache tokens at the model's cache rates."""
        price = self.lookup(model)
        return None if price is None else price.usage_cost(usage)
