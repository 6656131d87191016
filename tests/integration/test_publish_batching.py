"""Publishes of one event-loop tick to one topic go out as one MPUB, against a real nsqd.

A command alone in a quiet tick is written at once, not at the next loop iteration; under load
(the last tick had more than one command) each tick's commands wait for its one ``write``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from almanet._nsq import codec
from almanet._nsq.connection import _BATCH_LIMIT, Connection
from tests.integration._aio import run
from tests.support.nsqproc import NsqdProcess


def _message_count(nsqd: NsqdProcess, topic: str) -> int:
    return int((nsqd.topic_stats(topic) or {}).get("message_count", 0))


class _Recording:
    """The connection's real transport, each ``write`` recorded on the way to nsqd."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _record(connection: Connection) -> _Recording:
    recording = _Recording(connection._transport)
    connection._transport = recording  # type: ignore[assignment]
    return recording


def test_one_tick_one_topic_is_one_command(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    first, second = unique_name("batch"), unique_name("batch")

    async def scenario() -> None:
        connection = await Connection.open(nsqd.tcp_address)
        try:
            await connection.publish_soon(first, b'{"n": -1}')  # a quiet tick: written at once
            a = [connection.publish_soon(first, b'{"n": %d}' % i) for i in range(50)]
            assert all(f is a[1] for f in a[1:]) and a[0] is not a[1]  # the first at once, then one MPUB
            await a[0]
            a = [connection.publish_soon(first, b'{"n": %d}' % i) for i in range(50, 100)]  # under load now
            b = connection.publish_soon(second, b"{}")
            assert all(f is a[0] for f in a)  # one command, one OK for the fifty
            assert b is not a[0]
            assert await asyncio.gather(a[0], b) == [b"OK", b"OK"]
            alone = connection.publish_soon(first, b'{"n": 100}')  # a later tick: its own command
            assert alone is not a[0]
            assert await alone == b"OK"
        finally:
            await connection.close()

    run(scenario())
    assert _message_count(nsqd, first) == 102
    assert _message_count(nsqd, second) == 1


def test_a_command_alone_in_a_quiet_tick_is_written_at_once(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic = unique_name("eager")

    async def scenario() -> None:
        connection = await Connection.open(nsqd.tcp_address)
        recording = _record(connection)
        try:
            lone = connection.publish_soon(topic, b"0")
            assert recording.writes == [codec.pub(topic, b"0")]  # during the call, no loop iteration
            burst = [connection.publish_soon(topic, b"%d" % i) for i in range(1, 10)]
            assert len(recording.writes) == 1  # the rest of the tick waits for its flush
            assert await asyncio.gather(lone, burst[0]) == [b"OK", b"OK"]
            assert recording.writes[1] == codec.mpub(topic, [b"%d" % i for i in range(1, 10)])
            # the last tick had ten commands: under load, the next tick's first one waits as well
            loaded = [connection.publish_soon(topic, b"%d" % i) for i in range(10, 12)]
            assert len(recording.writes) == 2
            await loaded[0]
            assert recording.writes[2] == codec.mpub(topic, [b"10", b"11"])
            one = connection.publish_soon(topic, b"12")  # two messages last tick: still waits...
            assert len(recording.writes) == 3
            await one
            again = connection.publish_soon(topic, b"13")  # ...one in its tick: the next goes at once
            assert recording.writes[4] == codec.pub(topic, b"13")
            await again
            connection.touch(b"0" * 16)  # FIN, RDY, TOUCH, NOP never go at once: they wait for the flush
            assert len(recording.writes) == 5
        finally:
            await connection.close()

    run(scenario())
    assert _message_count(nsqd, topic) == 14


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
