"""Small asyncio helpers for integration tests (no pytest-asyncio here).

``run(scenario)`` runs a coroutine with a hard deadline, so a hung await fails the test instead of
stalling until pytest-timeout. ``serving`` (almanet.testing's, on the service's own addresses) and
``joined`` start/stop a service or a session around a block even when the block fails, so one
failing test leaves nothing subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import almanet
import almanet.testing

T = TypeVar("T")

DEFAULT_DEADLINE = 10.0


def run(scenario: Coroutine[Any, Any, T], timeout: float = DEFAULT_DEADLINE) -> T:
    """``asyncio.run`` bounded by ``timeout`` seconds."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await scenario

    return asyncio.run(bounded())


def serving(
    service: almanet.Service, **session_options: Any
) -> contextlib.AbstractAsyncContextManager[almanet.Service]:
    return almanet.testing.serving(service, None, **session_options)


@contextlib.asynccontextmanager
async def joined(*addresses: str, **options: Any) -> AsyncIterator[almanet.Almanet]:
    session = almanet.new_session(*addresses, **options)
    async with session:
        yield session


async def wait_for_async(
    predicate: Callable[[], Awaitable[T] | T],
    timeout: float,
    interval: float = 0.02,
    message: str = "condition not met",
) -> T:
    """Poll ``predicate`` (sync or async) inside the event loop until it is truthy, with a deadline.

    Exceptions count as "not yet"; the last one is chained to the AssertionError at the deadline.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = predicate()
            if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                result = await result  # type: ignore[misc]
        except Exception as exc:
            last_exc = exc
        else:
            if result:
                return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (after {timeout:g}s)") from last_exc
        await asyncio.sleep(interval)  # a poll interval, not a synchronisation
