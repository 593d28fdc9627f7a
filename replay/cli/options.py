"""Option bundles shared by several commands."""

from __future__ import annotations

import math
from typing import Any, Callable

import click

from replay.store import DEFAULT_STORE

F = Callable[..., Any]


def store_option(func: F) -> F:
    return click.option(
        "--store",
        "store_path",
        default=DEFAULT_STORE,
        show_default=True,
        envvar="REPLAY_STORE",
        type=click.Path(dir_okay=False),
        help="SQLite file holding runs and results.",
    )(func)


def open_store(path: str, create: bool = False) -> Any:
    """The store at ``path``; only commands that record runs create it (``create``), the others
    say that a missing store is missing, and read one they cannot write read-only."""
    from replay.store import Store

    return Store(path, create=create)


class _FiniteFloatRange(click.FloatRange):
    """click's FloatRange lets ``nan`` through (every comparison with NaN is false)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class _IntRange(click.IntRange):
    """An IntRange whose 64-bit bound (the store's limit, not a choice) reads as 2**63 in help and errors."""

    def _describe_range(self) -> str:
        from replay.config import INT64

        if self.max == INT64:
            return f"{'-2**63' if self.min == -INT64 - 1 else self.min}<=x<2**63"
        return super()._describe_range()


def number_type(key: str) -> click.ParamType:
    """The click type of the flag overriding the numeric scenario ``key`` (same range)."""
    from replay.config import RANGES

    limits = RANGES[key]
    if limits.integer:
        return _IntRange(int(limits.low), int(limits.high))
    return _FiniteFloatRange(limits.low, limits.high, min_open=limits.low_open)


def finite_float(low: float | None = None, high: float | None = None, min_open: bool = False) -> click.ParamType:
    return _FiniteFloatRange(low, high, min_open=min_open)
