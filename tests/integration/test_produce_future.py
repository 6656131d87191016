"""``produce()`` returns a future at once: no task per message, its own future, errors on it.

Against real nsqd processes: the messages are counted in nsqd's stats, a refusal comes from an
nsqd with a small --max-msg-size, and a frozen nsqd is one stopped with SIGSTOP (``freeze()``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import almanet
from tests.integration._aio import joined, run
from tests.support.nsqproc import NsqdProcess, wait_until


def _count(nsqd: NsqdProcess, topic: str) -> int:
    return int((nsqd.topic_stats(topic) or {}).get("message_count", 0))


def test_gathered_produce_calls_make_no_task_per_message(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic = unique_name("gather")

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            tasks_before = len(asyncio.all_tasks())
            futures = [session.produce(topic, {"seq": i}) for i in range(1000)]
            assert not any(isinstance(f, asyncio.Task) for f in futures)
            assert len({id(f) for f in futures}) == 1000  # each message its own future
            assert len(asyncio.all_tasks()) == tasks_before
            assert await asyncio.gather(*futures) == [None] * 1000

    run(scenario())
    assert _count(nsqd, topic) == 1000


def test_cancelling_one_produce_future_cancels_no_other(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic = unique_name("cancel")

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            futures = [session.produce(topic, i) for i in range(10)]
            futures[3].cancel()  # stops waiting for it; the message was queued already
            results = await asyncio.gather(*futures, return_exceptions=True)
            assert isinstance(results[3], asyncio.CancelledError)
            assert results[:3] + results[4:] == [None] * 9

    run(scenario())
    wait_until(lambda: _count(nsqd, topic) == 10, timeout=5, message="the ten messages in nsqd")


def test_produce_checks_its_input_when_called(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic = unique_name("bad")

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.invalid_argument, match="not JSON-serializable"):
                session.produce(topic, object())  # raised by the call itself, before any await
            with pytest.raises(almanet.invalid_argument):
                session.produce("bad topic!", 1)
            await session.produce(topic, "after")

    run(scenario())
    assert _count(nsqd, topic) == 1


def test_a_refused_message_fails_its_future_with_a_broker_error(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    small = nsqd_factory(extra_args=["--max-msg-size=100"])
    topic = unique_name("big")

    async def scenario() -> None:
        async with joined(small.tcp_address) as session:
            future = session.produce(topic, "x" * 200)  # within the session's limit, over nsqd's
            with pytest.raises(almanet.broker_error, match="max-msg-size"):
                await future
            await session.produce(topic, "small")  # the session goes on publishing

    run(scenario())
    assert _count(small, topic) == 1


def test_a_frozen_nsqd_fails_the_future_after_the_command_timeout(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    frozen = nsqd_factory()
    topic = unique_name("frozen")
    options = almanet.ConnectionOptions(command_timeout=0.5)

    async def scenario() -> None:
        async with joined(frozen.tcp_address, options=options) as session:
            await session.produce(topic, "before")
            frozen.freeze()  # returns once every nsqd thread is stopped
            try:
                futures = [session.produce(topic, i) for i in range(3)]
                loop = asyncio.get_running_loop()
                started = loop.time()
                results = await asyncio.gather(*futures, return_exceptions=True)
                waited = loop.time() - started
            finally:
                frozen.thaw()
            for result in results:
                assert isinstance(result, almanet.broker_error)
                assert "did not answer within 0.5s" in str(result)
            assert 0.4 < waited < 5

    run(scenario(), timeout=20)
