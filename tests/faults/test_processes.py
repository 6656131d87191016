"""Faults against real processes: an instance drained, an instance killed, nsqd killed and restarted.

Service instances are ``almanet serve`` processes (tests/faults/_instances.py) that log every
execution they start, so each test counts executions, not only replies.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

import almanet
from tests.faults._instances import CHANNEL, TOPIC, instances
from tests.integration._aio import joined, run, wait_for_async
from tests.support.nsqproc import NsqdProcess, wait_until

pytestmark = pytest.mark.timeout(300)
URI = "faults.work"


async def _call_all(session: almanet.Almanet, numbers: range, sleep: float, timeout: float) -> list[int]:
    results = await asyncio.gather(*(session.call(URI, {"n": n, "sleep": sleep}, timeout=timeout) for n in numbers))
    return [r.payload["n"] for r in results]


def test_sigterm_drains_every_call_answered_exactly_once(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    """Two instances, 600 calls (400 in flight, the rest queued), SIGTERM one in the middle."""
    calls = range(600)
    with instances([fresh_nsqd], tmp_path) as group:
        first, _ = group.start(2)

        async def scenario() -> list[int]:
            async with joined(fresh_nsqd.tcp_address) as session:
                answered = asyncio.ensure_future(_call_all(session, calls, 0.3, 60))
                await wait_for_async(lambda: (tmp_path / "executions" / f"{first.pid}.log").exists(), 20)
                first.send_signal(signal.SIGTERM)
                return await answered

        results = run(scenario(), timeout=90)
        assert first.wait(30) == 0, group.stderr()
        executions = group.executions()
    assert results == list(calls)
    assert set(executions) == set(calls)
    assert [n for n, count in executions.items() if count != 1] == []  # exactly once


def test_kill_9_the_survivor_answers_within_the_callers_timeout(
    nsqd_factory: Callable[..., NsqdProcess], tmp_path: Path
) -> None:
    """kill -9 one of two instances with calls in flight: nsqd redelivers after its 2 s msg-timeout."""
    nsqd = nsqd_factory(extra_args=("--msg-timeout=2s",))
    calls = range(200)
    with instances([nsqd], tmp_path) as group:
        victim, _ = group.start(2)

        async def scenario() -> list[int]:
            async with joined(nsqd.tcp_address) as session:
                answered = asyncio.ensure_future(_call_all(session, calls, 0.5, 30))
                await wait_for_async(lambda: (tmp_path / "executions" / f"{victim.pid}.log").exists(), 20)
                victim.send_signal(signal.SIGKILL)
                return await answered

        results = run(scenario(), timeout=60)

        # The survivor finishes an invocation once nsqd has its reply, which can come after the
        # caller read it: the channel empties (nothing queued, nothing in flight), not at once.
        def drained() -> bool:
            channel = nsqd.channel_stats(TOPIC, CHANNEL)
            return channel is not None and (channel["depth"], channel["in_flight_count"]) == (0, 0)

        try:
            wait_until(drained, 10)
        except AssertionError:
            pass  # what is left shows in the assertion below
        channel = nsqd.channel_stats(TOPIC, CHANNEL)  # the survivor still serves
        executions = group.executions()
        victim_started = (tmp_path / "executions" / f"{victim.pid}.log").read_text().split()
    assert results == list(calls)  # every call answered, by the survivor where the victim died
    duplicates = {n: c for n, c in executions.items() if c > 1}
    # at-least-once: only what the victim had started may have run twice
    assert set(duplicates) <= {int(n) for n in victim_started}
    assert all(c == 2 for c in duplicates.values()), duplicates
    assert channel is not None and channel["depth"] == 0 and channel["in_flight_count"] == 0


def test_nsqd_kill_9_and_restart_loses_no_acknowledged_message(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    """Produce and consume; nsqd dies (kill -9) and comes back on its port and data dir.

    nsqd runs with --mem-queue-size=0 --sync-every=1, so that what it acknowledged is on disk
    with its queue positions (docs/reliability.md says why). Every message whose produce()
    returned is consumed at least once: by the live consumer, which reconnects by itself, and
    from a backlog channel that held messages on disk through the crash. The producer pauses
    just before the kill so that no message is in flight then: nsqd keeps in-flight state in
    memory only, and that loss would be nsqd's, not almanet's.
    """
    nsqd = nsqd_factory(extra_args=("--mem-queue-size=0", "--sync-every=1"))
    topic = unique_name("restart")
    acknowledged: set[int] = set()
    seen: set[int] = set()
    failures: list[str] = []
    running = asyncio.Event()
    done = asyncio.Event()

    async def produce(session: almanet.Almanet) -> None:
        n = 0
        while not done.is_set():
            await running.wait()
            try:
                await session.produce(topic, n)
            except almanet.broker_error as exc:
                failures.append(str(exc))
                await asyncio.sleep(0.02)  # nsqd is down: try the same number again shortly
                continue
            acknowledged.add(n)
            n += 1

    async def consume(session: almanet.Almanet) -> None:
        async for message in session.consume(topic, "live"):
            seen.add(message.body)
            await message.commit()

    async def drain(session: almanet.Almanet, channel: str, expected: set[int]) -> set[int]:
        got: set[int] = set()
        async with session.consume(topic, channel) as messages:
            async for message in messages:
                got.add(message.body)
                await message.commit()
                if expected <= got:
                    return got
        return got

    def quiet() -> bool:
        live = nsqd.channel_stats(topic, "live")
        return bool(live) and live["in_flight_count"] == 0 and acknowledged <= seen  # type: ignore[index]

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as producer_side, joined(nsqd.tcp_address) as consumer_side:
            async with consumer_side.consume(topic, "backlog"):
                pass  # the backlog channel now exists; nothing reads it until the end
            consumer = asyncio.ensure_future(consume(consumer_side))
            producer = asyncio.ensure_future(produce(producer_side))
            try:
                # a message published before the live channel exists would never reach it
                await wait_for_async(lambda: asyncio.to_thread(nsqd.channel_stats, topic, "live"), 10)
                running.set()
                await wait_for_async(lambda: len(seen) >= 50, 30, message="no traffic")
                running.clear()
                # every message costs nsqd an fsync (--sync-every=1): generous deadlines on a shared machine
                try:
                    await wait_for_async(lambda: asyncio.to_thread(quiet), 60, message="the consumer did not catch up")
                except AssertionError as exc:
                    live = nsqd.channel_stats(topic, "live")
                    missing = sorted(acknowledged - seen)
                    raise AssertionError(f"{exc}: missing {missing[:10]} of {len(acknowledged)}; {live}") from None
                killed_pid = nsqd.pid
                await asyncio.to_thread(nsqd.kill)
                running.set()  # publishing fails until nsqd is back, and goes on by itself then
                await asyncio.to_thread(nsqd.restart)
                assert nsqd.pid != killed_pid
                after = len(acknowledged)
                await wait_for_async(lambda: len(acknowledged) >= after + 100, 60, message="producer did not recover")
                done.set()
                await producer
                await wait_for_async(
                    lambda: acknowledged <= seen,
                    60,
                    message=f"consumer did not recover: {len(acknowledged - seen)} of {len(acknowledged)} missing",
                )
                backlog = await asyncio.wait_for(drain(consumer_side, "backlog", set(acknowledged)), 60)
                assert acknowledged <= backlog
            finally:
                done.set()
                running.set()
                consumer.cancel()
                producer.cancel()
                await asyncio.gather(consumer, producer, return_exceptions=True)

    run(scenario(), timeout=240)
    # every one of the 100 messages acknowledged after the restart came from the new nsqd process
    # (whether a produce failed while it was down depends on when the producer's task ran: not asserted)
    assert acknowledged - seen == set()
