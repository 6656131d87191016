"""Run real nsqd / nsqlookupd processes for integration, CLI and interop tests.

Daemons bind 127.0.0.1 on port 0 (or a port the caller picks), and we read the ports they got
from their log ("TCP: listening on ...", "HTTP: listening on ..."), so parallel runs never fight
over fixed ports. Readiness is an HTTP /ping polled against a deadline, never a fixed sleep.
Stopping is by PID: SIGTERM, wait, then SIGKILL. ``kill()`` followed by ``restart()`` brings a
daemon back on the same ports and data dir, which is what the fault-tolerance tests need.

Every process started here is tracked until it is stopped; an atexit hook (and the conftest's
session finalizer, via ``kill_leftovers``) kills anything a crashed test left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "REPO_ROOT",
    "NsqProcessError",
    "NsqdProcess",
    "NsqlookupdProcess",
    "free_port",
    "kill_leftovers",
    "new_name",
    "start_nsqd",
    "start_nsqlookupd",
    "tool_path",
    "wait_until",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
HOST = "127.0.0.1"
HTTP_TIMEOUT = 2.0

T = TypeVar("T")

_TCP_RE = re.compile(r"TCP: listening on (\S+)")
_HTTP_RE = re.compile(r"HTTP: listening on (\S+)")

# pid -> Popen for every daemon we started and have not yet reaped.
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


class NsqProcessError(RuntimeError):
    """A daemon could not be found, did not start, or did not answer in time."""


# ---------------------------------------------------------------- small helpers


def tool_path(name: str) -> str:
    """Path of an NSQ tool: the repo's own build first, so tests use the pinned v1.3.0."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise NsqProcessError(
        f"{name} not found in {TOOLS_BIN} nor on PATH: run `make setup` "
        f"(it builds nsqd, nsqlookupd, nsq_tail and to_nsq into .tools/bin)"
    )


def free_port() -> int:
    """A TCP port that was free a moment ago (racy by nature: prefer port 0 where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def new_name(prefix: str = "t") -> str:
    """A unique, NSQ-valid topic/channel name, so tests sharing one nsqd never collide."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.02,
    message: str = "condition not met",
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Exceptions from the predicate count as "not yet" (a daemon that is still starting refuses
    connections), but the last one is chained to the AssertionError raised at the deadline.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:
            last_exc = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (after {timeout:g}s)") from last_exc
        time.sleep(interval)


def _http_get(address: str, path: str, timeout: float = HTTP_TIMEOUT) -> bytes:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=timeout) as resp:
        return resp.read()


def _http_json(address: str, path: str, timeout: float = HTTP_TIMEOUT) -> dict[str, Any]:
    data = json.loads(_http_get(address, path, timeout))
    # NSQ < 1.0 wrapped replies as {"status_code": 200, "data": {...}}; accept both shapes.
    if isinstance(data, dict) and "status_code" in data and "data" in data:
        data = data["data"]
    return data


def _port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _log_tail(path: Path, offset: int = 0, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<log unreadable: {exc}>"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "<log empty>"


def kill_leftovers() -> list[int]:
    """SIGKILL every daemon still running; returns their PIDs (a non-empty list is a leak)."""
    killed = []
    for pid, popen in list(_LIVE.items()):
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)
            killed.append(pid)
        _LIVE.pop(pid, None)
    return killed


atexit.register(kill_leftovers)


# ---------------------------------------------------------------- processes


@dataclass(eq=False)
class _Daemon:
    """What nsqd and nsqlookupd share: a PID, two listeners, a log, and a way to stop."""

    pid: int
    tcp_address: str
    http_address: str
    log_path: Path
    _popen: subprocess.Popen[bytes] = field(repr=False)
    _workdir: Path = field(repr=False)
    _log_offset: int = field(default=0, repr=False)

    name = "daemon"

    @property
    def tcp_port(self) -> int:
        return _port_of(self.tcp_address)

    @property
    def http_port(self) -> int:
        return _port_of(self.http_address)

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    def ping(self) -> bool:
        """True when the HTTP listener answers /ping with OK; False when it is unreachable."""
        try:
            return _http_get(self.http_address, "/ping").strip() == b"OK"
        except (OSError, urllib.error.URLError):
            return False

    def log_tail(self, lines: int = 30) -> str:
        """The end of this run's log, for failure messages."""
        return _log_tail(self.log_path, self._log_offset, lines)

    def stop(self, timeout: float = 5) -> None:
        """Graceful stop: SIGTERM, wait up to ``timeout``, then SIGKILL. Safe to repeat."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Abrupt stop (SIGKILL) as a crash would do; data not yet synced is lost."""
        self._signal_and_wait(signal.SIGKILL, 5)

    def freeze(self) -> None:
        """SIGSTOP: the process stays, its sockets accept and then nothing answers (a hung host)."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after ``freeze``: it answers again, with everything it had."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop and delete the temporary directory this helper created (logs, default data)."""
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)  # a frozen daemon would not act on SIGTERM
                os.kill(self.pid, sig)
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._popen.wait(timeout=5)
        _LIVE.pop(self.pid, None)


@dataclass(eq=False)
class NsqdProcess(_Daemon):
    """A running nsqd. ``restart()`` reuses its ports and data dir, as a real restart would."""

    data_dir: Path = field(default_factory=Path)
    lookupd_tcp_addresses: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    ready_timeout: float = 10

    name = "nsqd"

    def restart(self, ready_timeout: float | None = None) -> NsqdProcess:
        """Start nsqd again on the same TCP/HTTP ports and data dir; updates self, returns it.

        A still-running nsqd is stopped gracefully first; call ``kill()`` before to simulate
        a crash instead.
        """
        self.stop()
        fresh = start_nsqd(
            lookupd_tcp_addresses=self.lookupd_tcp_addresses,
            data_dir=self.data_dir,
            tcp_port=self.tcp_port,
            http_port=self.http_port,
            extra_args=self.extra_args,
            ready_timeout=self.ready_timeout if ready_timeout is None else ready_timeout,
            _workdir=self._workdir,
        )
        self.pid = fresh.pid
        self._popen = fresh._popen
        self._log_offset = fresh._log_offset
        return self

    def stats(self) -> dict[str, Any]:
        """nsqd's /stats?format=json as a dict (topics, channels, depths, clients)."""
        return _http_json(self.http_address, "/stats?format=json")

    def topics(self) -> dict[str, list[str]]:
        """Topic name -> its channel names, as nsqd sees them right now."""
        return {
            t["topic_name"]: [c["channel_name"] for c in t.get("channels") or []]
            for t in self.stats().get("topics") or []
        }

    def topic_stats(self, topic: str) -> dict[str, Any] | None:
        """nsqd's /stats entry for ``topic`` (depth, message_count, channels...), or None."""
        for t in self.stats().get("topics") or []:
            if t["topic_name"] == topic:
                return t
        return None

    def channel_stats(self, topic: str, channel: str) -> dict[str, Any] | None:
        """nsqd's /stats entry for ``channel`` of ``topic`` (depth, in_flight_count, clients...)."""
        for c in (self.topic_stats(topic) or {}).get("channels") or []:
            if c["channel_name"] == channel:
                return c
        return None


@dataclass(eq=False)
class NsqlookupdProcess(_Daemon):
    """A running nsqlookupd."""

    name = "nsqlookupd"

    def nodes(self) -> list[dict[str, Any]]:
        """The nsqd producers registered with this lookupd (its /nodes)."""
        return _http_json(self.http_address, "/nodes").get("producers") or []

    def lookup(self, topic: str) -> dict[str, Any]:
        """lookupd's /lookup for ``topic``: its producers and channels (404 raises HTTPError)."""
        return _http_json(self.http_address, f"/lookup?topic={topic}")


def _launch(
    tool: str,
    args: Sequence[str],
    workdir: Path,
    ready_timeout: float,
) -> tuple[subprocess.Popen[bytes], str, str, Path, int]:
    """Start ``tool``, learn its bound addresses from the log, and wait until /ping says OK."""
    log_path = workdir / f"{tool}.log"
    # Append, so a restart keeps the earlier run's log; parse only what this run writes.
    log = log_path.open("ab")
    offset = log.tell()
    try:
        popen = subprocess.Popen(
            [tool_path(tool), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    finally:
        log.close()
    _LIVE[popen.pid] = popen

    def fail(why: str) -> NsqProcessError:
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            popen.kill()
            popen.wait(timeout=5)
        _LIVE.pop(popen.pid, None)
        return NsqProcessError(
            f"{tool} {why}\n  command: {' '.join([tool, *args])}\n"
            f"  log ({log_path}):\n{_log_tail(log_path, offset)}"
        )

    deadline = time.monotonic() + ready_timeout
    tcp = http = None
    while True:
        if popen.poll() is not None:
            raise fail(f"exited with code {popen.returncode} before it was ready")
        if tcp is None or http is None:
            text = log_path.read_bytes()[offset:].decode("utf-8", "replace")
            tcp_m, http_m = _TCP_RE.search(text), _HTTP_RE.search(text)
            tcp = tcp_m.group(1) if tcp_m else None
            http = http_m.group(1) if http_m else None
        if tcp is not None and http is not None:
            try:
                if _http_get(http, "/ping", timeout=1).strip() == b"OK":
                    return popen, tcp, http, log_path, offset
            except (OSError, urllib.error.URLError):
                pass
        if time.monotonic() >= deadline:
            raise fail(f"was not ready within {ready_timeout:g}s (tcp={tcp}, http={http})")
        time.sleep(0.02)


def start_nsqd(
    *,
    lookupd_tcp_addresses: Iterable[str] = (),
    data_dir: str | os.PathLike[str] | None = None,
    tcp_port: int = 0,
    http_port: int = 0,
    extra_args: Iterable[str] = (),
    ready_timeout: float = 10,
    _workdir: Path | None = None,
) -> NsqdProcess:
    """Start nsqd on 127.0.0.1 and return once it answers /ping.

    ``--broadcast-address=127.0.0.1`` makes lookupd hand out loopback addresses; ``extra_args``
    come last, so they can override any default set here.
    """
    workdir = _workdir or Path(tempfile.mkdtemp(prefix="almanet-nsqd-"))
    data = Path(data_dir) if data_dir is not None else workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    lookupds = tuple(lookupd_tcp_addresses)
    extra = tuple(extra_args)
    args = [
        f"--tcp-address={HOST}:{tcp_port}",
        f"--http-address={HOST}:{http_port}",
        f"--broadcast-address={HOST}",
        f"--data-path={data}",
        *(f"--lookupd-tcp-address={a}" for a in lookupds),
        *extra,
    ]
    popen, tcp, http, log_path, offset = _launch("nsqd", args, workdir, ready_timeout)
    return NsqdProcess(
        pid=popen.pid,
        tcp_address=tcp,
        http_address=http,
        log_path=log_path,
        _popen=popen,
        _workdir=workdir,
        _log_offset=offset,
        data_dir=data,
        lookupd_tcp_addresses=lookupds,
        extra_args=extra,
        ready_timeout=ready_timeout,
    )


def start_nsqlookupd(
    *,
    tcp_port: int = 0,
    http_port: int = 0,
    extra_args: Iterable[str] = (),
    ready_timeout: float = 10,
) -> NsqlookupdProcess:
    """Start nsqlookupd on 127.0.0.1 and return once it answers /ping."""
    workdir = Path(tempfile.mkdtemp(prefix="almanet-nsqlookupd-"))
    args = [
        f"--tcp-address={HOST}:{tcp_port}",
        f"--http-address={HOST}:{http_port}",
        f"--broadcast-address={HOST}",
        *extra_args,
    ]
    popen, tcp, http, log_path, offset = _launch("nsqlookupd", args, workdir, ready_timeout)
    return NsqlookupdProcess(
        pid=popen.pid,
        tcp_address=tcp,
        http_address=http,
        log_path=log_path,
        _popen=popen,
        _workdir=workdir,
        _log_offset=offset,
    )
