"""The daemon helpers' fault controls do what a fault test relies on, checked in /proc."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from almanet.testing._processes import all_threads_stopped
from tests.support.nsqproc import NsqdProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread states are read from /proc")


def _states(pid: int) -> set[str]:
    return {stat.read_text().rsplit(")", 1)[1].split()[0] for stat in Path(f"/proc/{pid}/task").glob("*/stat")}


def test_freeze_returns_with_every_thread_stopped_and_thaw_resumes(nsqd: NsqdProcess) -> None:
    # One SIGSTOP wakes one thread; the others run on until it takes the stop. Repeated, so that
    # a freeze() that returned on the signal alone would be caught on a busy machine.
    assert len(_states(nsqd.pid)) >= 1
    for _ in range(50):
        nsqd.freeze()
        assert _states(nsqd.pid) <= {"T", "t"}
        nsqd.thaw()
    assert nsqd.ping()


def test_a_running_process_is_not_reported_stopped(nsqd: NsqdProcess) -> None:
    assert not all_threads_stopped(nsqd.pid)
    os.kill(nsqd.pid, signal.SIGSTOP)
    try:
        nsqd.freeze()  # already stopping: returns as soon as it is
        assert all_threads_stopped(nsqd.pid)
    finally:
        nsqd.thaw()
