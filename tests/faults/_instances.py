"""Service instances as real processes (``almanet serve``), for the fault tests that kill them."""

from __future__ import annotations

import collections
import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.cli.conftest import clean_env
from tests.support.nsqproc import NsqdProcess, wait_until

TARGET = "tests.assets.faults_service:svc"
TOPIC = "_rpc_.faults.work"
CHANNEL = "RPC#ephemeral"


class Instances:
    """``almanet serve`` processes on the same nsqd; each logs its executions to ``log_dir``."""

    def __init__(self, nsqds: list[NsqdProcess], tmp: Path) -> None:
        self.nsqds = nsqds
        self.log_dir = tmp / "executions"
        self.log_dir.mkdir(exist_ok=True)
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1) -> list[subprocess.Popen[bytes]]:
        env = clean_env(
            self.tmp,
            ALMANET_NSQD=",".join(n.tcp_address for n in self.nsqds),
            FAULTS_LOG_DIR=str(self.log_dir),
        )
        new = []
        for _ in range(count):
            log = (self.tmp / f"serve-{len(self.procs)}.err").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "almanet.cli", "serve", TARGET, "--log-level", "warning"],
                env=env,
                cwd=self.tmp,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            log.close()
            self.procs.append(proc)
            new.append(proc)
        expected = sum(1 for p in self.procs if p.poll() is None)
        for nsqd in self.nsqds:
            wait_until(lambda n=nsqd: self._subscribed(n) == expected, 20, message="instances did not subscribe")
        return new

    def _subscribed(self, nsqd: NsqdProcess) -> int:
        for proc in self.procs:
            if proc.poll() is not None and proc.returncode not in (0, -9, 130):
                raise AssertionError(f"an instance exited with {proc.returncode}: {self.stderr()}")
        channel = nsqd.channel_stats(TOPIC, CHANNEL)
        return int(channel["client_count"]) if channel else 0

    def stderr(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.tmp.glob("serve-*.err")))

    def executions(self) -> collections.Counter[int]:
        """How many times each call number started, over every instance."""
        counts: collections.Counter[int] = collections.Counter()
        for path in self.log_dir.glob("*.log"):
            counts.update(int(line) for line in path.read_text().split())
        return counts

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def instances(nsqds: list[NsqdProcess], tmp: Path) -> Iterator[Instances]:
    group = Instances(nsqds, tmp)
    try:
        yield group
    finally:
        group.close()
