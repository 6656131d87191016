"""Cancellation and leave() at awkward moments leave nothing behind and hurt no other call.

``asyncio.sleep(0)`` below is a scheduling step (let the other task reach its next await), not
a wait for time to pass.
"""

from __future__ import annotations

import asyncio
import gc
import math
from collections.abc import Callable

import pytest

import almanet
from almanet._nsq.connection import Connection
from tests.integration._aio import run, wait_for_async
from tests.support.nsqproc import NsqdProcess


def _open_connections() -> list[Connection]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, Connection) and not o.closed]


def _reply_clients(nsqd: NsqdProcess, session_id: str) -> int:
    stats = nsqd.stats()
    return sum(
        len(channel.get("clients") or [])
        for topic in stats.get("topics") or []
        if session_id in topic["topic_name"]
        for channel in topic.get("channels") or []
    )


def test_cancelling_one_first_call_does_not_cancel_another(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    uri = f"{unique_name('nobody')}.call"

    async def scenario() -> None:
        async with almanet.new_session(nsqd.tcp_address) as session:
            first = asyncio.ensure_future(session.call(uri, 1, timeout=0.5))
            await asyncio.sleep(0)  # first is now setting up the reply subscription
            second = asyncio.ensure_future(session.call(uri, 1, timeout=0.5))
            await asyncio.sleep(0)  # second waits on that same setup
            first.cancel()
            results = await asyncio.gather(first, second, return_exceptions=True)
            assert isinstance(results[0], asyncio.CancelledError)
            assert not second.cancelled()
            assert isinstance(results[1], TimeoutError)  # nobody serves uri: a timeout, not a cancel

    run(scenario())


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 8, 13])
def test_a_call_cancelled_while_subscribing_leaves_nothing_after_leave(
    nsqd: NsqdProcess, unique_name: Callable[..., str], steps: int
) -> None:
    uri = f"{unique_name('nobody')}.call"

    async def scenario() -> str:
        session = almanet.new_session(nsqd.tcp_address)
        await session.join()
        call = asyncio.ensure_future(session.call(uri, 1, timeout=1))
        for _ in range(steps):
            await asyncio.sleep(0)
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        await session.leave()
        assert _open_connections() == []
        return session.id

    session_id = run(scenario())
    run(wait_for_async(lambda: _reply_clients(nsqd, session_id) == 0, timeout=5))


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_a_cancelled_join_leaves_no_connection(nsqd: NsqdProcess, steps: int) -> None:
    async def scenario() -> None:
        session = almanet.new_session(nsqd.tcp_address)
        join = asyncio.ensure_future(session.join())
        for _ in range(steps):
            await asyncio.sleep(0)
        join.cancel()
        await asyncio.gather(join, return_exceptions=True)
        if session.state == "open":  # the join finished before the cancel landed
            await session.leave()
        assert _open_connections() == []
        if session.state == "unopened":  # and a cancelled join can be tried again
            async with session:
                assert session.state == "open"

    run(scenario())


def test_leave_during_a_first_call(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    uri = f"{unique_name('nobody')}.call"

    async def scenario() -> str:
        session = almanet.new_session(nsqd.tcp_address)
        await session.join()
        call = asyncio.ensure_future(session.call(uri, 1, timeout=1))
        await asyncio.sleep(0)
        await session.leave()
        (outcome,) = await asyncio.gather(call, return_exceptions=True)
        assert isinstance(outcome, almanet.session_state_error), outcome
        assert _open_connections() == []
        return session.id

    session_id = run(scenario())
    run(wait_for_async(lambda: _reply_clients(nsqd, session_id) == 0, timeout=5))


def test_a_cancelled_leave_still_tears_everything_down(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    prepath = unique_name("leave")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)

    @service.procedure
    async def echo(payload: int) -> int:
        return payload

    async def scenario() -> None:
        await service.start()
        session = almanet.new_session(nsqd.tcp_address)
        await session.join()
        assert (await session.call(f"{prepath}.echo", 3, timeout=5)).payload == 3
        leaving = asyncio.ensure_future(session.leave())
        await asyncio.sleep(0)
        leaving.cancel()
        await asyncio.gather(leaving, return_exceptions=True)
        await session.leave()  # waits for the teardown the first one started
        await service.stop()
        assert _open_connections() == []

    run(scenario())


@pytest.mark.parametrize("delay", [-1, 3601, 7200, math.nan, math.inf])
def test_out_of_range_delays_are_refused_before_sending(
    nsqd: NsqdProcess, unique_name: Callable[..., str], delay: float
) -> None:
    topic = unique_name("delay")

    async def scenario() -> None:
        async with almanet.new_session(nsqd.tcp_address) as session:
            with pytest.raises(almanet.invalid_argument, match="delay must be between 0 and 3600"):
                await session.produce(topic, {"n": 1}, delay=delay)
            with pytest.raises(almanet.invalid_argument, match="delay must be between 0 and 3600"):
                await session.delay_call(f"{topic}.call", 1, delay=delay)
            await session.produce(topic, {"n": 2}, delay=0.01)  # the connection is still fine

    run(scenario())
