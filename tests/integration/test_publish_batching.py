"""Publishes of one event-loop tick to one topic go out as one MPUB, against a real nsqd."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from almanet._nsq.connection import _BATCH_LIMIT, Connection
from tests.integration._aio import run
from tests.support.nsqproc import NsqdProcess


def _message_count(nsqd: NsqdProcess, topic: str) -> int:
    return int((nsqd.topic_stats(topic) or {}).get("message_count", 0))


def test_one_tick_one_topic_is_one_command(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    first, second = unique_name("batch"), unique_name("batch")

    async def scenario() -> None:
        connection = await Connection.open(nsqd.tcp_address)
        try:
            a = [connection.publish_soon(first, b'{"n": %d}' % i) for i in range(50)]
            b = connection.publish_soon(second, b"{}")
            assert all(f is a[0] for f in a)  # one command, one OK for the fifty
            assert b is not a[0]
            assert await asyncio.gather(a[0], b) == [b"OK", b"OK"]
            alone = connection.publish_soon(first, b'{"n": 50}')  # a later tick: its own command
            assert alone is not a[0]
            assert await alone == b"OK"
        finally:
            await connection.close()

    run(scenario())
    assert _message_count(nsqd, first) == 51
    assert _message_count(nsqd, second) == 1


def test_a_tick_over_the_batch_limit_is_split(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic = unique_name("big")
    body = b'"' + b"x" * (200 * 1024) + b'"'
    count = _BATCH_LIMIT // len(body) * 3  # about three batches' worth

    async def scenario() -> None:
        connection = await Connection.open(nsqd.tcp_address)
        try:
            futures = [connection.publish_soon(topic, body) for _ in range(count)]
            distinct = {id(f) for f in futures}
            assert 3 <= len(distinct) <= 4
            await asyncio.gather(*futures)
        finally:
            await connection.close()

    run(scenario())
    assert _message_count(nsqd, topic) == count
