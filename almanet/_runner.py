"""Running almanet's coroutines: ``asyncio.run``, on uvloop when it is installed.

uvloop makes a sequential call ~20% faster and 200 calls in flight ~25% more per second (see
bench/RESULTS.md). It is a dependency wherever it has wheels (CPython, not Windows); without it
the standard loop runs everything the same. ``ALMANET_LOOP=asyncio`` forces the standard loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("ALMANET_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion in a new event loop (uvloop when available)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
