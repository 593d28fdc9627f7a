"""USD prices per million tokens, and turning usage into cost.

The table covers common models; a scenario's ``prices`` overrides or extends it.
A model is looked up exactly, then by its longest matching prefix, so dated
snapshots (``gpt-4o-2024-08-06``) find their family.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    # model: (input, output), USD per 1M tokens, list prices
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
    "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
}


@dataclass(frozen=True)
class Price:
    input: float
    output: float

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        return ((prompt_tokens or 0) * self.input + (completion_tokens or 0) * self.output) / 1_000_000


class PriceTable:
    def __init__(self, overrides: dict[str, dict[str, float]] | None = None) -> None:
        self._prices = {name: Price(*pair) for name, pair in PRICES_PER_MILLION.items()}
        for name, entry in (overrides or {}).items():
            base = self._prices.get(name, Price(0.0, 0.0))
            self._prices[name] = Price(entry.get("input", base.input), entry.get("output", base.output))

    def lookup(self, model: str) -> Price | None:
        if model in self._prices:
            return self._prices[model]
        matches = [name for name in self._prices if model.startswith(name)]
        return self._prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        price = self.lookup(model)
        return None if price is None else price.cost(prompt_tokens, completion_tokens)
