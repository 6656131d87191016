"""Load: many callers against two service instances; every answer matches, memory returns, nsqd is empty.

The size is small in the default run (CI); ``make soak`` (ALMANET_SOAK=1) runs the full 50 callers
x 1,000 calls. No timing is asserted: the machine is shared. RSS is read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

import almanet
from almanet._wire import protocol as _wire
from tests.faults._instances import CHANNEL, TOPIC, instances
from tests.integration._aio import joined, run
from tests.support.nsqproc import NsqdProcess

SOAK = os.environ.get("ALMANET_SOAK", "") not in ("", "0")
SESSIONS, CALLERS_PER_SESSION = 5, 10  # 50 callers
CALLS = 1000 if SOAK else 100
RSS_SLACK = 24 * 1024 * 1024  # growth allowed between the warm-up and the end

pytestmark = pytest.mark.timeout(900 if SOAK else 120)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def _caller(session: almanet.Almanet, caller: int, calls: int) -> int:
    mismatches = 0
    for i in range(calls):
        n = caller * 1_000_000 + i
        reply = await session.call("faults.work", {"n": n}, timeout=30)
        mismatches += reply.payload["n"] != n
    return mismatches


async def _round(address: str, calls: int) -> tuple[int, list[str]]:
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(joined(address)) for _ in range(SESSIONS)]
        results = await asyncio.gather(
            *(
                _caller(session, s * CALLERS_PER_SESSION + c, calls)
                for s, session in enumerate(sessions)
                for c in range(CALLERS_PER_SESSION)
            )
        )
        return sum(results), [s.id for s in sessions]


def test_fifty_callers_two_instances(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    nsqd = fresh_nsqd
    with instances([nsqd], tmp_path) as group:
        procs = group.start(2)
        warm_mismatches, _ = run(_round(nsqd.tcp_address, 20), timeout=120)
        baseline = [_rss(p.pid) for p in procs]
        own_baseline = _rss(os.getpid())
        mismatches, session_ids = run(_round(nsqd.tcp_address, CALLS), timeout=850 if SOAK else 100)
        after = [_rss(p.pid) for p in procs]
        own_after = _rss(os.getpid())
        channel = nsqd.channel_stats(TOPIC, CHANNEL)
    assert (warm_mismatches, mismatches) == (0, 0)
    for before, now in zip(baseline, after, strict=True):
        assert now <= before + RSS_SLACK, f"an instance grew from {before >> 20} MiB to {now >> 20} MiB"
    assert own_after <= own_baseline + RSS_SLACK, f"the callers grew from {own_baseline >> 20} to {own_after >> 20} MiB"
    # nothing left in nsqd: no invocation waiting or in flight, no reply topic of a caller that left
    assert channel is not None and (channel["depth"], channel["in_flight_count"]) == (0, 0)
    topics = nsqd.topics()
    assert not [t for t in topics if any(t == _wire.reply_topic(i) for i in session_ids)]
    assert int(channel["message_count"]) == SESSIONS * CALLERS_PER_SESSION * (20 + CALLS)
