"""Serving services until a signal: the program's main loop, for ``Service.serve()`` and ``almanet serve``.

The first SIGINT/SIGTERM drains (invocations in flight finish, bounded), a second stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._runner import run

if TYPE_CHECKING:
    from ._service import Service

__all__ = ["serve_services", "serve_until_signal"]

logger = logging.getLogger("almanet._service")  # one logger for a service and its serving loop (README shows it)


async def serve_services(
    services: list[Service],
    addresses: tuple[str, ...] | None = None,
    on_started: Callable[[], None] | None = None,
    **session_options: Any,
) -> int:
    """Serve until SIGINT/SIGTERM, then drain; a second signal stops at once.

    Returns 0 when every service drained, 130 when a second signal cut the drain short (the
    invocations still in flight then go back to nsqd, to be delivered elsewhere).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    hard = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            hard.set()
            return
        logger.info("stopping: finishing invocations in flight (signal again to stop at once)")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    started: list[Service] = []
    try:
        for service in services:
            await service.start(addresses, **session_options)
            started.append(service)
        if on_started is not None:
            on_started()
        await stop.wait()
    except BaseException:
        await asyncio.gather(*(s.stop() for s in started), return_exceptions=True)
        raise
    draining = asyncio.ensure_future(asyncio.gather(*(s.stop() for s in started), return_exceptions=True))
    interrupted = asyncio.ensure_future(hard.wait())
    await asyncio.wait({draining, interrupted}, return_when=asyncio.FIRST_COMPLETED)
    interrupted.cancel()
    if not draining.done():
        draining.cancel()
        logger.warning("stopped at once: invocations in flight go back to nsqd")
        return 130
    logger.info("stopped")
    return 0


def serve_until_signal(
    services: list[Service],
    addresses: tuple[str, ...] | None = None,
    on_started: Callable[[], None] | None = None,
    **session_options: Any,
) -> int:
    """``serve_services`` in a new event loop (uvloop when installed); for ``serve()`` and the CLI."""
    return run(serve_services(services, addresses, on_started, **session_options))
