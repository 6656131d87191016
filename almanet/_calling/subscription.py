"""``Subscription``: what ``session.consume()`` returns, an async iterator over one Broker consumer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, MutableSet
from typing import Any

from .._broker.broker import Broker
from .._nsq.consumer import Consumer, Message
from .deadletter import envelope
from .models import ConsumedMessage
from .tracing import Tracing

__all__ = ["Subscription"]

logger = logging.getLogger(__name__)


class Subscription:
    """An ``async`` iterator of ``ConsumedMessage``; starts on first use, stops on ``close``.

    ``live`` is the session's set of open subscriptions: one is in it from ``start`` to
    ``close``, so that leaving the session closes it (its messages requeued, not lost).
    """

    def __init__(
        self,
        session: Any,
        broker: Broker,
        topic: str,
        channel: str,
        max_in_flight: int,
        max_attempts: int | None,
        live: MutableSet[Subscription],
        dead_letter_topic: str | None = None,
    ) -> None:
        self.session = session
        self.topic = topic
        self.channel = channel
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self.dead_letter_topic = dead_letter_topic
        self.tracing: Tracing | None = None  # a CONSUMER span per message handed over, when tracing
        self._burying: set[asyncio.Task[None]] = set()
        self._broker = broker
        self._live = live
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._consumer: Consumer | None = None
        self._closed = False

    async def start(self) -> None:
        if self._consumer is None and not self._closed:
            self._consumer = await self._broker.subscribe(
                self.topic, self.channel, self._on_message, max_in_flight=self.max_in_flight, low_latency=False
            )
            self._live.add(self)

    def _on_message(self, message: Message) -> None:
        if self.max_attempts is not None and message.attempts > self.max_attempts:
            if self.dead_letter_topic is not None:  # delivered again without a commit (timed out, crashed)
                why = f"delivered {message.attempts} times (max_attempts={self.max_attempts}) without a commit"
                task = asyncio.ensure_future(self._bury_or_requeue(message, why))
                self._burying.add(task)
                task.add_done_callback(self._burying.discard)
                return
            logger.error(
                "message %s on %s/%s was delivered %d times (max_attempts=%d): finished without handling; body: %r",
                message.id.decode(),
                self.topic,
                self.channel,
                message.attempts,
                self.max_attempts,
                message.body[:200],
            )
            message.finish()
            return
        self._queue.put_nowait(message)

    def exhausted(self, message: Message) -> bool:
        """True when a rollback of ``message`` now would use up its last attempt, with a dead-letter topic."""
        return (
            self.dead_letter_topic is not None
            and self.max_attempts is not None
            and message.attempts >= self.max_attempts
        )

    async def bury(self, message: Message, error: str) -> None:
        """Publish ``message`` to the dead-letter topic, then finish it; on failure it stays unfinished."""
        assert self.dead_letter_topic is not None
        await self.session.produce(self.dead_letter_topic, envelope(self.topic, self.channel, message, error))
        message.finish()
        logger.warning(
            "message %s on %s/%s used up its %d attempts: moved to %s (%s)",
            message.id.decode("ascii", "replace"),
            self.topic,
            self.channel,
            message.attempts,
            self.dead_letter_topic,
            error,
        )

    async def _bury_or_requeue(self, message: Message, error: str) -> None:
        try:
            await self.bury(message, error)
        except Exception as exc:  # not lost: it comes back, and burying is tried again then
            logger.error(
                "could not move message %s to %s: %s; requeued", message.id.decode(), self.dead_letter_topic, exc
            )
            if not message.responded:
                message.requeue(1000)

    async def close(self) -> None:
        """Stop receiving; messages received but not handled go back to nsqd right away."""
        if self._closed:
            return
        if self._burying:  # dead letters on their way: finished once published, never dropped
            await asyncio.gather(*self._burying, return_exceptions=True)
        self._closed = True
        self._live.discard(self)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop_receiving()
            while not self._queue.empty():
                message = self._queue.get_nowait()
                if message is not None:
                    message.requeue()
            await self._broker.unsubscribe(consumer)
        self._queue.put_nowait(None)

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[ConsumedMessage]:
        return self

    async def __anext__(self) -> ConsumedMessage:
        if self._consumer is None and not self._closed:
            await self.start()
        message = await self._queue.get()
        if message is None:
            self._queue.put_nowait(None)
            raise StopAsyncIteration
        if self.tracing is not None:
            self.tracing.consumer(self.topic, self.channel, message.id.decode("ascii", "replace"), message.attempts)
        return ConsumedMessage(message, self if self.dead_letter_topic is not None else None)
