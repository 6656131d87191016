"""``serve --http``: /healthz, /readyz and /metrics of a served process, and its readiness.

The endpoint is a few lines of asyncio on the serving loop itself, not aiohttp (the ``ui``
extra) nor prometheus-client's threaded server: it serves three fixed GETs to probes and
scrapers, and answering from the loop is what makes /healthz true: a loop that is stuck does not
answer. Nothing here is imported unless ``--http`` (``serve.http``) is given.

Readiness (/readyz) is 503 while the services start, 200 once every subscription is live on
every nsqd the session knows, 503 again while an nsqd is lost, and 503 from the first SIGTERM
through the drain, so that a load balancer or Kubernetes stops counting on the process first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._nsq.address import split_address
from .._wire.errors import invalid_argument

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["METRICS_TYPE", "TEXT_TYPE", "Endpoint", "Ops", "pipe_reporter", "readiness"]

logger = logging.getLogger("almanet._service")

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable", 400: "Bad Request"}
TEXT_TYPE = "text/plain; charset=utf-8"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # prometheus-client's CONTENT_TYPE_LATEST


class Endpoint:
    """A tiny HTTP/1.1 server: GET (or HEAD) of a fixed set of paths, one request a connection."""

    def __init__(self, address: str, routes: dict[str, Callable[[], Awaitable[tuple[int, str, bytes]]]]) -> None:
        self.host, self.port = split_address(address)
        self.routes = routes
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        logger.info("health and metrics on http://%s/ (/healthz, /readyz, /metrics)", self.address)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, path = _request_line(head)
            if method not in ("GET", "HEAD"):
                status, kind, body = 405, TEXT_TYPE, b"only GET\n"
            elif path in self.routes:
                status, kind, body = await self.routes[path]()
            else:
                status, kind, body = 404, TEXT_TYPE, f"no {path}: try /healthz, /readyz or /metrics\n".encode()
            header = (
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(header.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass  # a probe that hung up or sent garbage: nothing to answer
        finally:
            writer.close()


def _request_line(head: bytes) -> tuple[str, str]:
    method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    return method, path.split("?", 1)[0]


def readiness(services: list[Any]) -> tuple[bool, str]:
    """(ready, why not): every subscription of every service live on every nsqd it targets."""
    missing: list[str] = []
    for service in services:
        running = service.running
        if running is None:
            return False, "not started\n"
        for consumer in running.consumers:
            lost = set(consumer.addresses) - set(consumer.live())
            missing.extend(f"{consumer.topic}/{consumer.channel} on nsqd {a}" for a in sorted(lost))
    if missing:
        return False, "waiting for: " + ", ".join(missing[:5]) + ("..." if len(missing) > 5 else "") + "\n"
    return True, "ready\n"


class Ops:
    """What ``serve --http`` adds to the serve loop: metrics on the services, the endpoint, readiness.

    ``address`` None: no endpoint (a worker under ``serve --workers``, whose supervisor serves it);
    ``report`` then gets each change of readiness (``ready``, ``unready``, ``draining``).
    """

    def __init__(
        self, address: str | None, report: Callable[[str], None] | None = None, *, metrics: bool = True
    ) -> None:
        # a worker without --http on its supervisor reports readiness only: no metrics work
        self.metrics: Metrics | None = None
        if metrics:
            from .metrics import Metrics

            self.metrics = Metrics()
        self.services: list[Any] = []
        self.state = "starting"  # starting | serving | draining
        self.endpoint = Endpoint(address, self._routes()) if address is not None else None
        self.report = report
        self._reported = ""
        self._timer: asyncio.TimerHandle | None = None
        self._parent = os.getppid()

    def attach(self, services: list[Any]) -> None:
        self.services = services
        if self.metrics is None:
            return
        for service in services:
            self.metrics.watch(service.procedures.values())
            service.observer = self.metrics

    async def open(self) -> None:
        if self.endpoint is not None:
            try:
                await self.endpoint.start()
            except OSError as exc:
                raise invalid_argument(
                    f"--http {self.endpoint.address}: cannot listen there ({exc.strerror or exc});"
                    " choose another port (serve.http in almanet.toml)"
                ) from None

    def started(self) -> None:
        self.state = "serving"
        if self.report is not None:
            self._tick()

    def draining(self) -> None:
        self.state = "draining"
        self._send("draining")

    def ready(self) -> tuple[bool, str]:
        if self.state != "serving":
            return False, f"{self.state}\n"
        return readiness(self.services)

    def sample(self) -> bool:
        ready, _ = self.ready()
        if self.metrics is not None:
            self.metrics.sample((c for s in self.services if s.running for c in s.running.consumers), ready)
        return ready

    def _tick(self) -> None:
        """A worker's second-by-second sample: its supervisor reads files and lines, not its loop."""
        if self.state == "draining":
            return
        if os.getppid() != self._parent:  # the supervisor is gone (killed): drain and leave
            logger.warning("the supervisor (pid %d) is gone: stopping", self._parent)
            os.kill(os.getpid(), signal.SIGTERM)
        self._send("ready" if self.sample() else "unready")
        self._timer = asyncio.get_running_loop().call_later(1.0, self._tick)

    def _send(self, state: str) -> None:
        if self.report is not None and state != self._reported:
            self._reported = state
            self.report(state)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.endpoint is not None:
            await self.endpoint.close()

    def _routes(self) -> dict[str, Callable[[], Awaitable[tuple[int, str, bytes]]]]:
        async def healthz() -> tuple[int, str, bytes]:
            return 200, TEXT_TYPE, b"ok\n"

        async def readyz() -> tuple[int, str, bytes]:
            ready, why = self.ready()
            return (200 if ready else 503), TEXT_TYPE, why.encode()

        async def metrics() -> tuple[int, str, bytes]:
            from prometheus_client import REGISTRY

            from .metrics import render

            self.sample()
            assert self.metrics is not None  # an endpoint has metrics
            return 200, METRICS_TYPE, render((self.metrics.registry, REGISTRY))

        return {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}


def pipe_reporter(fd: int) -> Callable[[str], None]:
    """A worker's line to its supervisor (``workers.py``): ``<pid> <state>``, on an inherited pipe."""
    pid = os.getpid()

    def report(state: str) -> None:
        with contextlib.suppress(OSError):  # a supervisor gone: the worker goes on serving
            os.write(fd, f"{pid} {state}\n".encode())

    return report
