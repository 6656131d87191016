"""Real nsqd / nsqlookupd processes for tests: almanet's own and its users'.

Daemons bind 127.0.0.1 on port 0 (or a port the caller picks), and we read the ports they got
from their log ("TCP: listening on ...", "HTTP: listening on ..."), so parallel runs never fight
over fixed ports. Readiness is an HTTP /ping polled against a deadline, never a fixed sleep.
Stopping is by PID: SIGTERM, wait, then SIGKILL. ``kill()`` followed by ``restart()`` brings a
daemon back on the same ports and data dir, which is what the fault-tolerance tests need.

Every process started here is tracked until it is stopped; an atexit hook (and the pytest
plugin's session finalizer, via ``kill_leftovers``) kills anything a crashed test left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._tools import NsqProcessError, find_tool
from ._util import HOST, http_get, http_json, http_post, wait_until

__all__ = [
    "NsqProcessError",
    "NsqdProcess",
    "NsqlookupdProcess",
    "kill_leftovers",
    "live_pids",
    "start_nsqd",
    "start_nsqlookupd",
]

_TCP_RE = re.compile(r"TCP: listening on (\S+)")
_HTTP_RE = re.compile(r"HTTP: listening on (\S+)")

# pid -> Popen for every daemon we started and have not yet reaped.
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


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


def all_threads_stopped(pid: int) -> bool:
    """True when every thread of ``pid`` is in the stopped state (Linux /proc); True where there is no /proc."""
    tasks = Path(f"/proc/{pid}/task")
    if not Path("/proc/self/task").is_dir():
        return True  # no procfs (macOS): nothing to wait on, SIGSTOP is all we can do
    for stat in tasks.glob("*/stat"):
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # a thread that ended meanwhile
        if state not in ("T", "t"):
            return False
    return tasks.is_dir()


def live_pids() -> list[int]:
    """PIDs of the daemons started here and not stopped yet."""
    return [pid for pid, popen in _LIVE.items() if popen.poll() is None]


def kill_leftovers() -> list[int]:
    """SIGKILL every daemon still running; returns their PIDs (a non-empty list is a leak)."""
    killed: list[int] = []
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
            return http_get(self.http_address, "/ping").strip() == b"OK"
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

    def freeze(self, timeout: float = 5) -> None:
        """SIGSTOP: the process stays, its sockets accept and then nothing answers (a hung host).

        Returns once every thread is stopped: the kernel wakes one thread to take the stop and
        the others go on running until it has, which on a busy machine is long enough for nsqd to
        answer a command sent "after" the freeze.
        """
        os.kill(self.pid, signal.SIGSTOP)
        wait_until(lambda: all_threads_stopped(self.pid), timeout, interval=0.001, message=f"pid {self.pid} stopped")

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
        return http_json(self.http_address, "/stats?format=json")

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
                return dict(t)
        return None

    def create_channel(self, topic: str, channel: str) -> None:
        """Create ``topic`` and its ``channel`` now: from here on the channel gets a copy of each message."""
        http_post(self.http_address, "/topic/create?" + urllib.parse.urlencode({"topic": topic}))
        query = urllib.parse.urlencode({"topic": topic, "channel": channel})
        http_post(self.http_address, f"/channel/create?{query}")

    def delete_channel(self, topic: str, channel: str) -> None:
        """Delete ``channel`` of ``topic`` with what it holds; a channel already gone is fine."""
        query = urllib.parse.urlencode({"topic": topic, "channel": channel})
        try:
            http_post(self.http_address, f"/channel/delete?{query}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise

    def channel_stats(self, topic: str, channel: str) -> dict[str, Any] | None:
        """nsqd's /stats entry for ``channel`` of ``topic`` (depth, in_flight_count, clients...)."""
        for c in (self.topic_stats(topic) or {}).get("channels") or []:
            if c["channel_name"] == channel:
                return dict(c)
        return None


@dataclass(eq=False)
class NsqlookupdProcess(_Daemon):
    """A running nsqlookupd."""

    name = "nsqlookupd"

    def nodes(self) -> list[dict[str, Any]]:
        """The nsqd producers registered with this lookupd (its /nodes)."""
        return http_json(self.http_address, "/nodes").get("producers") or []

    def lookup(self, topic: str) -> dict[str, Any]:
        """lookupd's /lookup for ``topic``: its producers and channels (404 raises HTTPError)."""
        return http_json(self.http_address, f"/lookup?topic={topic}")


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
        binary = find_tool(tool)
        popen = subprocess.Popen(
            [binary, *args],
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
            f"{tool} {why}\n  command: {' '.join([tool, *args])}\n  log ({log_path}):\n{_log_tail(log_path, offset)}"
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
                if http_get(http, "/ping", timeout=1).strip() == b"OK":
                    return popen, tcp, http, log_path, offset
            except (OSError, urllib.error.URLError):
                pass
        if time.monotonic() >= deadline:
            raise fail(f"was not ready within {ready_timeout:g}s (tcp={tcp}, http={http})")
        time.sleep(0.02)


def _started(tool: str, args: Sequence[str], workdir: Path, ready_timeout: float, own_workdir: bool) -> dict[str, Any]:
    """``_launch``, as the fields every daemon has; a temp dir made for a start that failed goes."""
    try:
        popen, tcp, http, log_path, offset = _launch(tool, args, workdir, ready_timeout)
    except BaseException:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    return {
        "pid": popen.pid,
        "tcp_address": tcp,
        "http_address": http,
        "log_path": log_path,
        "_popen": popen,
        "_workdir": workdir,
        "_log_offset": offset,
    }


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
    return NsqdProcess(
        **_started("nsqd", args, workdir, ready_timeout, own_workdir=_workdir is None),
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
    return NsqlookupdProcess(**_started("nsqlookupd", args, workdir, ready_timeout, own_workdir=True))
