"""Option bundles shared by several commands."""

from __future__ import annotations

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
