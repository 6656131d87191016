"""The async half of almanet.testing: serve a Service in the test's event loop, and wait for what
crosses nsqd (a call of a procedure, a produced message) without polling in the test.

Only almanet's public API runs the service and the sessions (``Service.start``/``stop``,
``almanet.new_session``); ``_wire`` gives the topic names and the invocation's shape.

An expectation is armed when it is created: it makes a channel of its own on the topic right away
(over nsqd's HTTP API, so no await is needed), and nsqd gives that channel a copy of every message
from then on. Awaiting it reads the first one. A topic that had no channel yet hands its backlog
to the first channel made, so messages nsqd stamped before the arming are skipped. Being ephemeral,
the channel goes away with its reader; one never awaited is deleted by ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import almanet

from .._nsq.names import check_name
from .._wire.protocol import WireError, channel_name, decode_invocation, rpc_topic
from ._cluster import NsqCluster
from ._processes import NsqdProcess

__all__ = ["Call", "Expectation", "Message", "Target", "expect_call", "expect_message", "nsqds_of", "serving"]

T = TypeVar("T")
Target = NsqdProcess | NsqCluster | Sequence[NsqdProcess]

DEFAULT_TIMEOUT = 5.0
POLL_INTERVAL = 0.02


def nsqds_of(target: Target) -> list[NsqdProcess]:
    if isinstance(target, NsqdProcess):
        return [target]
    if isinstance(target, NsqCluster):
        return list(target.nsqds)
    return list(target)


def _subscribed(nsqd: NsqdProcess, topic: str, channel: str) -> bool:
    """True when a client of ``channel`` is ready for messages (RDY > 0), as nsqd reports it."""
    stats = nsqd.channel_stats(topic, channel) or {}
    return any(client.get("ready_count", 0) > 0 for client in stats.get("clients") or [])


async def wait_subscribed(service: almanet.Service, nsqds: Sequence[NsqdProcess], timeout: float) -> None:
    """Until every nsqd shows a ready subscriber on each procedure's channel (nsqd's /stats)."""
    wanted = [(p.uri, rpc_topic(p.uri), channel_name(p.channel)) for p in service.procedures.values()]
    deadline = time.monotonic() + timeout
    while True:
        missing = [
            f"{uri} on {nsqd.tcp_address}"
            for uri, topic, channel in wanted
            for nsqd in nsqds
            if not _subscribed(nsqd, topic, channel)
        ]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"the service did not subscribe within {timeout:g}s: {', '.join(missing)}")
        await asyncio.sleep(POLL_INTERVAL)  # a poll interval against a deadline, not a synchronisation


@contextlib.asynccontextmanager
async def serving(
    service: almanet.Service,
    nsqd: Target | None = None,
    *,
    timeout: float = 10.0,
    drain_timeout: float = 2.0,
    **session_options: Any,
) -> AsyncIterator[almanet.Service]:
    """Serve ``service`` for the block: on ``nsqd`` (its own addresses and lookupd ignored) or,
    with ``nsqd=None``, where the service's code points.

    Given ``nsqd``, it returns once nsqd shows each procedure subscribed. The service drains and
    leaves at the end, also when the block fails.
    """
    nsqds = [] if nsqd is None else nsqds_of(nsqd)
    if nsqd is not None and not nsqds:
        raise ValueError("serving() needs at least one nsqd")
    if nsqds:
        options: dict[str, Any] = {"lookupd": (), **session_options}
        await service.start(tuple(n.tcp_address for n in nsqds), **options)
    else:
        await service.start(**session_options)
    try:
        await wait_subscribed(service, nsqds, timeout)
        yield service
    finally:
        await service.stop(drain_timeout=drain_timeout)


@dataclass(frozen=True)
class Call:
    """An invocation seen on its way to a procedure."""

    uri: str
    payload: Any
    caller_id: str
    call_id: str
    reply_topic: str


@dataclass(frozen=True)
class Message:
    """A message seen on a topic: ``body`` is the JSON value (raw bytes when it is not JSON)."""

    topic: str
    body: Any
    raw: bytes
    id: str


class Expectation(Generic[T]):
    """``await`` it for the next call/message since it was made; ``async with`` it around the action.

    It fails the test (AssertionError) when nothing comes within ``timeout`` seconds.
    """

    def __init__(self, nsqd: NsqdProcess, topic: str, what: str, decode: Callable[[Any], T], timeout: float) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.nsqd = nsqd
        self.topic = topic
        self.what = what
        self.timeout = timeout
        self.channel = f"almanet-expect-{uuid.uuid4().hex[:12]}#ephemeral"
        self._decode = decode
        self._result: list[T] = []
        self.armed_at = time.time_ns()  # nsqd stamps messages with its wall clock, on this host
        nsqd.create_channel(topic, self.channel)

    @property
    def result(self) -> T:
        """What was seen; only after the expectation was awaited."""
        if not self._result:
            raise RuntimeError(f"{self.what} was not awaited yet")
        return self._result[0]

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait().__await__()

    async def __aenter__(self) -> Expectation[T]:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self

    async def _wait(self) -> T:
        if self._result:
            return self._result[0]
        async with almanet.new_session(self.nsqd.tcp_address) as session:
            async with session.consume(self.topic, self.channel, max_in_flight=1) as subscription:
                try:
                    async with asyncio.timeout(self.timeout):
                        message = await anext(subscription)
                        while message.timestamp < self.armed_at:  # the topic's backlog: not "next"
                            await message.commit()
                            message = await anext(subscription)
                except TimeoutError:
                    raise AssertionError(f"no {self.what} within {self.timeout:g}s") from None
                await message.commit()
        self._result.append(self._decode(message))
        return self._result[0]

    def close(self) -> None:
        """Delete the channel if nobody read it (it holds copies of every message since)."""
        with contextlib.suppress(OSError):  # nsqd already stopped: the channel went with it
            self.nsqd.delete_channel(self.topic, self.channel)


def expect_call(uri: str, nsqd: NsqdProcess, *, timeout: float = DEFAULT_TIMEOUT) -> Expectation[Call]:
    """Arm a waiter for the next invocation of procedure ``uri`` on ``nsqd``."""
    topic = rpc_topic(uri)

    def decode(message: almanet.ConsumedMessage) -> Call:
        try:
            invocation = decode_invocation(message.raw)
        except WireError as exc:
            raise AssertionError(f"{topic} carried a message that is not an almanet invocation: {exc}") from None
        return Call(uri, invocation.payload, invocation.caller_id, invocation.id, invocation.reply_topic)

    return Expectation(nsqd, topic, f"call of {uri!r}", decode, timeout)


def expect_message(topic: str, nsqd: NsqdProcess, *, timeout: float = DEFAULT_TIMEOUT) -> Expectation[Message]:
    """Arm a waiter for the next message produced to ``topic`` on ``nsqd``."""
    check_name(topic, "topic")

    def decode(message: almanet.ConsumedMessage) -> Message:
        return Message(topic, message.body, message.raw, message.id)

    return Expectation(nsqd, topic, f"message on {topic!r}", decode, timeout)
