"""``serve --workers N`` and ``serve --reload``: a supervisor of worker processes.

Each worker is ``almanet serve`` itself (its own session, its own subscriptions), started with
the same arguments less ``--workers``/``--reload``/``--http``; nsqd spreads invocations over
them as over any instances of a channel. The supervisor restarts a worker that dies (backoff
0.5 s doubling to 10 s, reset once a worker is ready), forwards SIGTERM/SIGINT so that every
worker drains, and exits 0 when all did. Workers are in their own session (process group), so that a
terminal's Ctrl-C reaches them once, through the supervisor; a worker whose supervisor is gone
drains and exits by itself (it notices a new parent within a second).

Health and metrics with ``--http``: the supervisor serves them for all. ``/healthz`` is the
supervisor's loop; ``/readyz`` is 200 when every worker said it is ready (a line on a pipe
the workers inherit: ``<pid> ready|unready|draining``), 503 while one starts or from the
first signal on; ``/metrics`` merges the workers' series through prometheus-client's
multiprocess mode (a temporary ``PROMETHEUS_MULTIPROC_DIR``), plus ``almanet_workers`` and
``almanet_worker_restarts_total``.

``--reload`` (watchfiles): when a watched ``.py`` file changes, a new worker is started
beside the old one; once it is ready the old one drains. A new worker that fails (an edit that
does not import) is reported and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

__all__ = ["WORKER_FD", "WORKER_METRICS", "Supervisor", "supervise", "watched_paths", "worker_fd"]

logger = logging.getLogger("almanet._service")

WORKER_FD = "ALMANET_WORKER_FD"  # a worker's pipe to its supervisor (the fd number)
WORKER_METRICS = "ALMANET_WORKER_METRICS"  # set when the supervisor serves /metrics
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 10.0


class _Worker:
    def __init__(self, slot: int, proc: asyncio.subprocess.Process) -> None:
        self.slot = slot
        self.proc = proc
        self.state = "starting"  # starting | ready | unready | draining
        self.ready = asyncio.Event()


class Supervisor:
    def __init__(self, command: Sequence[str], count: int, http: str | None, watch: Sequence[str]) -> None:
        self.command = list(command)
        self.slots: list[_Worker | None] = [None] * count
        self.by_pid: dict[int, _Worker] = {}
        self.http = http
        self.watch = list(watch)
        self.stopping = False
        self.restarts = 0
        self.codes: list[int] = []
        self.fatal: int | None = None
        self._watch_stop: asyncio.Event | None = None
        self.metrics_dir = tempfile.mkdtemp(prefix="almanet-metrics-") if http else None
        self._read_fd, self._write_fd = os.pipe()
        self._buffer = b""

    # -- workers ---------------------------------------------------------------------------------

    async def spawn(self, slot: int) -> _Worker:
        env = {**os.environ, WORKER_FD: str(self._write_fd), "ALMANET_WORKER": str(slot)}
        if self.metrics_dir is not None:
            env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
            env[WORKER_METRICS] = "1"
        proc = await asyncio.create_subprocess_exec(
            *self.command, env=env, stdin=asyncio.subprocess.DEVNULL, pass_fds=(self._write_fd,), start_new_session=True
        )
        worker = self.by_pid[proc.pid] = _Worker(slot, proc)
        logger.info("worker %d started (pid %d)", slot, proc.pid)
        if self.stopping:  # a signal came while it was being started: it drains at once too
            proc.send_signal(signal.SIGTERM)
        return worker

    async def wait_ready(self, worker: _Worker) -> bool:
        """True once the worker said it is ready; False when it exited first."""
        ready = asyncio.ensure_future(worker.ready.wait())
        exited = asyncio.ensure_future(worker.proc.wait())
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if not worker.ready.is_set():
            await exited
            return False
        exited.cancel()
        return True

    def _exited(self, worker: _Worker, code: int) -> None:
        self.by_pid.pop(worker.proc.pid, None)
        if self.metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.proc.pid, self.metrics_dir)

    async def keep(self, slot: int) -> None:
        """Keep one worker running in ``slot`` until the supervisor stops."""
        failures = 0
        while True:
            worker = self.slots[slot]
            assert worker is not None
            code = await worker.proc.wait()
            self._exited(worker, code)
            if self.slots[slot] is not worker:  # replaced by a reload: watch the new one
                continue
            if self.stopping:
                self.codes.append(code)
                return
            if worker.ready.is_set():
                failures = 0
            elif self.restarts == 0 and failures == 0 and not self._ever_ready:
                logger.error(
                    "worker %d (pid %d) exited with %d before it was ready: stopping", slot, worker.proc.pid, code
                )
                self.fatal = code or 1
                self._stop(signal.SIGTERM)
                self.codes.append(code)
                return
            delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2**failures)
            failures += 1
            logger.warning(
                "worker %d (pid %d) exited with %d; restarting it in %.1fs", slot, worker.proc.pid, code, delay
            )
            await asyncio.sleep(delay)
            if self.stopping:
                return
            self.restarts += 1
            self.slots[slot] = await self.spawn(slot)

    @property
    def _ever_ready(self) -> bool:
        return any(w is not None and w.ready.is_set() for w in self.slots) or self.restarts > 0

    async def reload(self, changed: str) -> None:
        """New workers beside the old; the old drain once the new are ready."""
        logger.info("reload: %s changed; starting new workers", changed)
        for slot, old in enumerate(self.slots):
            if self.stopping:
                return
            new = await self.spawn(slot)
            if not await self.wait_ready(new):
                self._exited(new, new.proc.returncode or 0)
                logger.error(
                    "reload: the edited code does not start (worker exited with %s); the old one keeps serving",
                    new.proc.returncode,
                )
                return
            self.slots[slot] = new
            if old is not None and old.proc.returncode is None:
                old.proc.send_signal(signal.SIGTERM)
        logger.info("reload: serving the edited code")

    async def watch_files(self) -> None:
        import watchfiles

        self._watch_stop = asyncio.Event()
        watching = watchfiles.awatch(*self.watch, watch_filter=watchfiles.PythonFilter(), stop_event=self._watch_stop)
        async for changes in watching:
            if self.stopping:
                return
            await self.reload(", ".join(sorted({PurePath(path).name for _, path in changes})[:3]))

    # -- signals, pipe ---------------------------------------------------------------------------

    def _stop(self, sig: int) -> None:
        if self.stopping:
            logger.info("signal again: workers stop at once")
        else:
            logger.info("stopping: every worker drains (signal again to stop at once)")
        self.stopping = True
        if self._watch_stop is not None:
            self._watch_stop.set()
        for worker in list(self.by_pid.values()):
            if worker.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(sig)

    def _on_pipe(self) -> None:
        try:
            data = os.read(self._read_fd, 4096)
        except BlockingIOError:
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            pid_text, _, state = line.decode(errors="replace").partition(" ")
            worker = self.by_pid.get(int(pid_text)) if pid_text.isdigit() else None
            if worker is None:
                continue
            worker.state = state
            if state == "ready" and not worker.ready.is_set():
                worker.ready.set()
                logger.info("worker %d (pid %d) ready", worker.slot, worker.proc.pid)

    def readiness(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "draining\n"
        states = [w.state if w is not None else "starting" for w in self.slots]
        if all(state == "ready" for state in states):
            return True, f"ready ({len(states)} workers)\n"
        return False, "workers: " + ", ".join(states) + "\n"

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        os.set_blocking(self._read_fd, False)
        loop.add_reader(self._read_fd, self._on_pipe)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop, sig)
        endpoint = self._endpoint() if self.http else None
        try:
            if endpoint is not None:
                await endpoint.start()
            for slot in range(len(self.slots)):
                self.slots[slot] = await self.spawn(slot)
            keepers = [asyncio.ensure_future(self.keep(slot)) for slot in range(len(self.slots))]
            watcher = asyncio.ensure_future(self.watch_files()) if self.watch else None
            await asyncio.gather(*keepers)
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        finally:
            if not self.stopping:
                self._stop(signal.SIGTERM)
            for worker in list(self.by_pid.values()):  # a reload's old workers still draining
                await worker.proc.wait()
            loop.remove_reader(self._read_fd)
            os.close(self._read_fd)
            os.close(self._write_fd)
            if endpoint is not None:
                await endpoint.close()
            if self.metrics_dir is not None:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)
        if self.fatal is not None:
            return self.fatal
        bad = [c for c in self.codes if c != 0]
        if not bad:
            logger.info("stopped: every worker drained")
            return 0
        logger.warning("stopped; worker exit codes %s", bad)
        return 130 if 130 in bad else 1

    def _endpoint(self) -> Any:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            disable_created_metrics,
            generate_latest,
            multiprocess,
        )

        from .ops import METRICS_TYPE, TEXT_TYPE, Endpoint

        disable_created_metrics()  # as the workers' (metrics.py)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.metrics_dir)
        own = CollectorRegistry()
        workers = Gauge("almanet_workers", "Worker processes running", registry=own)
        restarts = Counter("almanet_worker_restarts", "Workers restarted after they died", registry=own)
        counted = [0]

        async def healthz() -> tuple[int, str, bytes]:
            return 200, TEXT_TYPE, b"ok\n"

        async def readyz() -> tuple[int, str, bytes]:
            ready, why = self.readiness()
            return (200 if ready else 503), TEXT_TYPE, why.encode()

        async def metrics() -> tuple[int, str, bytes]:
            workers.set(sum(1 for w in self.by_pid.values() if w.proc.returncode is None))
            restarts.inc(self.restarts - counted[0])
            counted[0] = self.restarts
            return 200, METRICS_TYPE, generate_latest(merged) + generate_latest(own)

        assert self.http is not None
        return Endpoint(self.http, {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics})


def supervise(command: Sequence[str], count: int, http: str | None, watch: Sequence[str]) -> int:
    """Run the supervisor until its workers have stopped; its exit code."""
    from .._runner import run

    return run(Supervisor(command, count, http, watch).run())


def worker_fd() -> tuple[int | None, bool]:
    """This process's pipe to its supervisor when it is a worker, and whether it records metrics."""
    text = os.environ.get(WORKER_FD, "")
    return (int(text) if text.isdigit() else None), os.environ.get(WORKER_METRICS) == "1"


def watched_paths(targets: Sequence[str]) -> list[str]:
    """What ``--reload`` watches: each target's top-level package folder (or its module file), found unimported."""
    import importlib.util

    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    paths: list[str] = []
    for target in targets:
        top = target.partition(":")[0].split(".")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        if spec.submodule_search_locations:
            paths.extend(spec.submodule_search_locations)
        elif spec.origin:
            paths.append(spec.origin)
    return list(dict.fromkeys(os.path.abspath(p) for p in paths)) or [os.getcwd()]
