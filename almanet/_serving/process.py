"""Serving services until a signal: the program's main loop, for ``Service.serve()`` and ``almanet serve``.

The first SIGINT/SIGTERM drains (invocations in flight finish, bounded), a second stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from .._runner import run
from .._wire.errors import broker_error, config_error, invalid_argument

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._calling.options import SessionOptions

__all__ = ["Servable", "make_ops", "serve_configured", "serve_services", "serve_until_signal"]

logger = logging.getLogger("almanet._service")  # one logger for a service and its serving loop (README shows it)


class Servable(Protocol):
    """What the serve loop needs of a service; ``service.Service`` is one.

    Owned here so that the registry imports the loop (``Service.serve()``) and not the reverse.
    """

    async def start(
        self, addresses: tuple[str, ...] | None = None, **session_options: Unpack[SessionOptions]
    ) -> None: ...

    async def stop(self, drain_timeout: float | None = None) -> None: ...


async def serve_services(
    services: list[Servable],
    addresses: tuple[str, ...] | None = None,
    on_started: Callable[[], None] | None = None,
    *,
    ops: Any = None,
    **session_options: Any,
) -> int:
    """Serve until SIGINT/SIGTERM, then drain; a second signal stops at once.

    Returns 0 when every service drained, 130 when a second signal cut the drain short (the
    invocations still in flight then go back to nsqd, to be delivered elsewhere). ``ops``
    (``ops.Ops``, ``serve --http``): metrics and the health endpoint, open from before the
    services start until they have drained.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    hard = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            hard.set()
            return
        logger.info("stopping: finishing invocations in flight (signal again to stop at once)")
        if ops is not None:
            ops.draining()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    started: list[Servable] = []
    try:
        if ops is not None:
            ops.attach(services)
            await ops.open()
        for service in services:
            await service.start(addresses, **session_options)
            started.append(service)
        if on_started is not None:
            on_started()
        if ops is not None and not stop.is_set():
            ops.started()
        await stop.wait()
    except BaseException:
        await asyncio.gather(*(s.stop() for s in started), return_exceptions=True)
        if ops is not None:
            await ops.close()
        raise
    try:
        return await _drain(started, hard)
    finally:
        if ops is not None:
            await ops.close()


async def _drain(started: list[Servable], hard: asyncio.Event) -> int:
    draining = asyncio.ensure_future(asyncio.gather(*(s.stop() for s in started), return_exceptions=True))
    interrupted = asyncio.ensure_future(hard.wait())
    either: list[asyncio.Future[Any]] = [draining, interrupted]
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    interrupted.cancel()
    if not draining.done():
        draining.cancel()
        # the drains requeue what still runs and leave; waiting for that also retrieves the
        # gather's CancelledError, which asyncio would otherwise report with a traceback
        await asyncio.gather(draining, return_exceptions=True)
        logger.warning("stopped at once: invocations in flight go back to nsqd")
        return 130
    logger.info("stopped")
    return 0


def serve_until_signal(
    services: list[Servable],
    addresses: tuple[str, ...] | None = None,
    on_started: Callable[[], None] | None = None,
    **session_options: Any,
) -> int:
    """``serve_services`` in a new event loop (uvloop when installed); for ``serve()`` and the CLI."""
    return run(serve_services(services, addresses, on_started, **session_options))


def make_ops(address: str | None, report_fd: int | None = None, metrics: bool = True) -> Any:
    """``ops.Ops`` for ``--http ADDRESS`` (or a worker's pipe), or None; ImportError names the extra.

    ``metrics`` False: a worker whose supervisor serves no ``--http`` (readiness reports only).
    """
    if address is None and report_fd is None:
        return None
    if metrics:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise ImportError("--http (serve.http) needs prometheus-client: pip install 'almanet[ops]'") from None
    from .ops import Ops, pipe_reporter

    return Ops(address, pipe_reporter(report_fd) if report_fd is not None else None, metrics=metrics)


def serve_configured(
    services: list[Servable],
    addresses: tuple[str, ...] | None,
    config: str | os.PathLike[str] | None,
    session_options: dict[str, Any],
) -> None:
    """``Service.serve()``: the settings (environment, almanet.toml) as ``almanet serve`` reads them.

    The configured nsqd win over the service's own; ``addresses`` and ``session_options`` win
    over both. A known error is one line on stderr and the CLI's exit code (2 config or bad input,
    4 broker), never a traceback; a second signal exits 130.
    """
    from .._settings.config import load_settings
    from .._settings.configure import serve_addresses
    from .._settings.configure import session_options as configured_options

    try:
        settings = load_settings(config)
    except config_error as exc:
        _exit(f"config error: {exc}", 2)
    options = configured_options(settings)
    configured = serve_addresses(settings, options)
    options.update(session_options)
    if settings.log_format == "json":  # log.format: the handlers the program has, in JSON
        from .logs import JsonFormatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    try:
        options.setdefault("ops", make_ops(settings.serve_http))
    except ImportError as exc:
        _exit(f"error: {exc}", 2)
    try:
        code = serve_until_signal(services, configured if addresses is None else addresses, **options)
    except invalid_argument as exc:
        _exit(f"error: {exc}", 2)
    except broker_error as exc:
        _exit(f"broker unavailable: {exc}", 4)
    if code:
        raise SystemExit(code)


def _exit(line: str, code: int) -> NoReturn:
    """A program's end on a known error: one line on stderr, the CLI's exit code, no traceback."""
    sys.stderr.write(line + "\n")
    raise SystemExit(code)
