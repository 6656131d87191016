"""Produce and consume against a real nsqd: round trips, bulk, redelivery, attempts, raw bodies."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

import almanet
from tests.integration._aio import joined, run, wait_for_async
from tests.support.nsqproc import NsqdProcess, wait_until


def _channel_stats(nsqd: NsqdProcess, topic: str, channel: str) -> dict[str, Any] | None:
    return nsqd.channel_stats(topic, channel)


def _http_pub(nsqd: NsqdProcess, topic: str, body: bytes) -> None:
    request = urllib.request.Request(f"http://{nsqd.http_address}/pub?topic={topic}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=2) as response:
        assert response.read().strip() == b"OK"


def test_produce_consume_round_trip(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic, channel = unique_name(), unique_name("ch")
    payload = {"id": 1, "name": "Aidar", "tags": ["a", "b"], "price": 1.5, "ok": True, "none": None}

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            async with session.consume(topic, channel) as messages:
                await session.produce(topic, payload)
                await session.produce(topic, "a plain string")
                received = []
                async for message in messages:
                    assert isinstance(message, almanet.ConsumedMessage)
                    assert message.attempts == 1
                    assert message.timestamp > 0
                    assert len(message.id) == 16
                    received.append(message.body)
                    await message.commit()
                    if len(received) == 2:
                        break
        assert received == [payload, "a plain string"]

    run(scenario())


def test_produce_many_ten_thousand_all_received(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic, channel = unique_name(), unique_name("ch")
    count = 10_000

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            async with session.consume(topic, channel, max_in_flight=1000) as messages:
                sent = await session.produce_many(topic, ({"n": i} for i in range(count)))
                assert sent == count
                seen: set[int] = set()
                async for message in messages:
                    seen.add(message.body["n"])
                    await message.commit()
                    if len(seen) == count:
                        break
        assert seen == set(range(count))

    run(scenario())
    wait_until_settled(nsqd, topic, channel)


def wait_until_settled(nsqd: NsqdProcess, topic: str, channel: str, timeout: float = 5) -> dict[str, Any]:
    """The channel holds nothing: no depth, nothing in flight, nothing deferred."""

    def settled() -> dict[str, Any] | None:
        stats = _channel_stats(nsqd, topic, channel)
        if stats and stats["depth"] == 0 and stats["in_flight_count"] == 0 and stats["deferred_count"] == 0:
            return stats
        return None

    return wait_until(settled, timeout, message=f"{topic}/{channel} empty")


def test_rollback_redelivers_with_more_attempts(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic, channel = unique_name(), unique_name("ch")

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            async with session.consume(topic, channel) as messages:
                await session.produce(topic, {"job": 7})
                deliveries = []
                async for message in messages:
                    deliveries.append((message.id, message.attempts, message.body))
                    if message.attempts < 3:
                        await message.rollback(delay=0)
                    else:
                        await message.commit()
                        break
        ids = {d[0] for d in deliveries}
        assert len(ids) == 1
        assert [d[1] for d in deliveries] == [1, 2, 3]
        assert all(d[2] == {"job": 7} for d in deliveries)

    run(scenario())
    stats = wait_until_settled(nsqd, topic, channel)
    assert stats["requeue_count"] == 2


def test_max_attempts_finishes_after_the_last_attempt(
    nsqd: NsqdProcess, unique_name: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    topic, channel = unique_name(), unique_name("ch")
    caplog.set_level(logging.ERROR, logger="almanet._calling.subscription")

    def gave_up() -> bool:
        return any("max_attempts=2" in r.getMessage() and topic in r.getMessage() for r in caplog.records)

    async def scenario() -> list[int]:
        attempts: list[int] = []
        async with joined(nsqd.tcp_address) as session:
            subscription = session.consume(topic, channel, max_attempts=2)
            async with subscription:
                await session.produce(topic, {"poison": True})

                async def always_roll_back() -> None:
                    async for message in subscription:
                        attempts.append(message.attempts)
                        await message.rollback(delay=0)

                reader = asyncio.create_task(always_roll_back())
                # the third delivery is finished by the library (and logged), never handed over
                await wait_for_async(gave_up, timeout=5, message="the library gave up on the message")
                await wait_for_async(
                    lambda: asyncio.to_thread(_settled, nsqd, topic, channel),
                    timeout=5,
                    message="channel empty and nothing in flight",
                )
                assert not reader.done()
            await asyncio.wait_for(reader, timeout=2)  # closing the subscription ends the iteration
        return attempts

    attempts = run(scenario())
    assert attempts == [1, 2]
    stats = _channel_stats(nsqd, topic, channel)
    assert stats is not None
    assert (stats["depth"], stats["in_flight_count"], stats["deferred_count"]) == (0, 0, 0)
    assert stats["requeue_count"] == 2


def _settled(nsqd: NsqdProcess, topic: str, channel: str) -> bool:
    stats = _channel_stats(nsqd, topic, channel)
    return bool(stats) and (stats["depth"], stats["in_flight_count"], stats["deferred_count"]) == (0, 0, 0)  # type: ignore[index]


def test_non_json_body_is_handed_over_as_bytes(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic, channel = unique_name(), unique_name("ch")
    raw = b"\x00\xffnot json {"

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            async with session.consume(topic, channel) as messages:
                await asyncio.to_thread(_http_pub, nsqd, topic, raw)
                message = await anext(aiter(messages))
                assert message.body == raw
                assert isinstance(message.body, bytes)
                assert message.raw == raw
                await message.commit()

    run(scenario())


@pytest.mark.parametrize("topic", ["", "bad topic", "x" * 65, "tópico", "a/b", "t#notephemeral"])
def test_invalid_topic_name_is_invalid_argument(nsqd: NsqdProcess, unique_name: Callable[..., str], topic: str) -> None:
    valid = unique_name()

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.invalid_argument):
                await session.produce(topic, {"a": 1})
            with pytest.raises(almanet.invalid_argument):
                await session.produce_many(topic, [{"a": 1}])
            with pytest.raises(almanet.invalid_argument):
                session.consume(topic, "ch")
            with pytest.raises(almanet.invalid_argument):
                session.consume("fine_topic", topic)
            # the connection survived: nothing invalid reached nsqd
            await session.produce(valid, {"a": 1})

    run(scenario())


def test_non_json_payload_and_oversized_message_are_refused(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic = unique_name()

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.invalid_argument):
                await session.produce(topic, object())
            with pytest.raises(almanet.invalid_argument):
                await session.produce(topic, "x" * (1024 * 1024 + 1))
            with pytest.raises(almanet.invalid_argument):
                await session.produce_many(topic, [{"ok": 1}, object()])

    run(scenario())
    assert topic not in nsqd.topics()


def test_commit_is_idempotent(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic, channel = unique_name(), unique_name("ch")

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            async with session.consume(topic, channel) as messages:
                await session.produce(topic, 1)
                first = await anext(aiter(messages))
                await first.commit()
                await first.commit()
                await first.rollback(delay=0)  # already handled: does nothing
                assert first.handled
                # the connection is still fine: the next message arrives on it
                await session.produce(topic, 2)
                second = await anext(aiter(messages))
                assert second.body == 2 and second.attempts == 1
                await second.commit()

    run(scenario())
    stats = wait_until_settled(nsqd, topic, channel)
    assert stats["requeue_count"] == 0
    assert stats["message_count"] == 2


def test_closing_a_subscription_requeues_buffered_messages(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic, channel = unique_name(), unique_name("ch")
    count = 5

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            await session.produce_many(topic, list(range(count)))
            first = session.consume(topic, channel, max_in_flight=count * 2)
            async with first:
                taken = await anext(aiter(first))
                await taken.commit()
                # every other message has been delivered to `first` and waits in its buffer
                await wait_for_async(
                    lambda: asyncio.to_thread(_in_flight_is, nsqd, topic, channel, count - 1),
                    timeout=5,
                    message="the rest delivered to the first subscriber",
                )
            rest = []
            async with session.consume(topic, channel) as second:
                async for message in second:
                    rest.append(message.body)
                    await message.commit()
                    if len(rest) == count - 1:
                        break
            assert sorted([taken.body, *rest]) == list(range(count))
            assert all(b != taken.body for b in rest)

    run(scenario())
    wait_until_settled(nsqd, topic, channel)


def _in_flight_is(nsqd: NsqdProcess, topic: str, channel: str, n: int) -> bool:
    stats = _channel_stats(nsqd, topic, channel)
    return bool(stats) and stats["in_flight_count"] == n  # type: ignore[index]
