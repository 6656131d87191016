"""One topic/channel subscription over a connection to each nsqd, with RDY and reconnects.

RDY is this module's business: each connection gets ``max(1, max_in_flight // connections)``,
capped by the ``max_rdy_count`` nsqd announced. nsqd keeps a connection's RDY until it is changed,
so it is sent once per connection, not after every message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from . import codec
from .backoff import ReconnectPolicy
from .connection import Connection
from .errors import NSQConnectionError, NSQError, NSQErrorResponse
from .options import ConnectionOptions

__all__ = ["Consumer", "Message"]

logger = logging.getLogger(__name__)


class Message:
    """A delivered message; ``finish``/``requeue`` answer nsqd once, later calls do nothing."""

    __slots__ = ("_connection", "_consumer", "address", "attempts", "body", "id", "responded", "timestamp")

    def __init__(self, frame: codec.MessageFrame, connection: Connection, consumer: Consumer) -> None:
        self.id = frame.id
        self.body = frame.body
        self.timestamp = frame.timestamp
        self.attempts = frame.attempts
        self.responded = False
        self._connection = connection
        self._consumer = consumer
        # the nsqd that delivered it (``host:port``): where a reply to it is best published; an
        # attribute, not a property, since every reply a service sends reads it
        self.address = connection.address

    def finish(self) -> None:
        if self.responded:
            return
        self.responded = True
        self._consumer._settled()
        if self._connection.closed:
            self._lost("FIN")
        else:
            self._connection.finish(self.id)

    def requeue(self, delay_ms: int = 0) -> None:
        if self.responded:
            return
        self.responded = True
        self._consumer._settled()
        if self._connection.closed:
            self._lost("REQ")
        else:
            self._connection.requeue(self.id, delay_ms)

    def _lost(self, command: str) -> None:
        logger.warning(
            "message %s: its connection to nsqd at %s is gone, so %s cannot be sent; nsqd delivers it again",
            self.id.decode("ascii", "replace"),
            self._connection.address,
            command,
        )

    def touch(self) -> None:
        if not self.responded and not self._connection.closed:
            self._connection.touch(self.id)


class Consumer:
    """Subscribe ``topic``/``channel`` on every nsqd in ``addresses``; hand messages to ``handler``.

    The handler is called synchronously in the read loop with each ``Message`` and must not block:
    it queues the message or starts the work, and finishes/requeues the message later.
    """

    def __init__(
        self,
        topic: str,
        channel: str,
        addresses: Sequence[str],
        handler: Callable[[Message], None],
        *,
        max_in_flight: int = 1,
        options: ConnectionOptions | None = None,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("at least one nsqd address is needed")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.topic = topic
        self.channel = channel
        self.addresses = list(dict.fromkeys(addresses))
        self.handler = handler
        self.max_in_flight = max_in_flight
        self.options = options or ConnectionOptions()
        self.reconnect = reconnect or ReconnectPolicy()
        self._connections: dict[str, Connection] = {}
        self._reconnectors: dict[str, asyncio.Task[None]] = {}
        self._in_flight = 0
        self._idle: asyncio.Event | None = None
        self._stopping = False
        self._closing: asyncio.Future[list[None]] | None = None
        # nsqd address -> resubscriptions after a lost connection (read by a service's metrics)
        self.reconnects: dict[str, int] = {}

    @property
    def in_flight(self) -> int:
        """Messages delivered and not yet finished or requeued."""
        return self._in_flight

    @property
    def msg_timeout(self) -> float:
        """Seconds nsqd waits for FIN before it redelivers (the shortest over the connections)."""
        values = [c.server_settings.get("msg_timeout") for c in self._connections.values()]
        seconds = [v / 1000 for v in values if isinstance(v, int) and v > 0]
        return min(seconds, default=60.0)

    @property
    def connected(self) -> int:
        return sum(1 for c in self._connections.values() if not c.closed)

    def live(self) -> list[str]:
        """The nsqd addresses this subscription is live on now (a service's readiness reads it)."""
        return [a for a, c in self._connections.items() if not c.closed]

    def _settled(self) -> None:
        self._in_flight -= 1
        if self._in_flight <= 0 and self._idle is not None:
            self._idle.set()

    # -- delegate --------------------------------------------------------------------------------

    def on_message(self, connection: Connection, frame: codec.MessageFrame) -> None:
        self._in_flight += 1
        message = Message(frame, connection, self)
        if connection.close_waiting:
            # Sent after nsqd's CLOSE_WAIT (its pump had picked it as the CLS landed): nobody here
            # will handle it, and left unanswered it would wait out nsqd's msg-timeout.
            logger.debug("message %s of %s/%s came after CLOSE_WAIT; requeued", frame.id, self.topic, self.channel)
            message.requeue()
            return
        try:
            self.handler(message)
        except Exception:
            logger.exception("handler failed on a message of %s/%s; requeued", self.topic, self.channel)
            message.requeue()

    def on_close(self, connection: Connection, error: Exception | None) -> None:
        if self._connections.get(connection.address) is connection:
            del self._connections[connection.address]
        if not self._stopping:
            # no error: nsqd closed the socket itself (it is stopping, or restarting)
            reason = error or "nsqd closed the connection (stopping or restarting?)"
            logger.warning(
                "lost %s/%s on nsqd %s: %s; reconnecting", self.topic, self.channel, connection.address, reason
            )
            self._start_reconnector(connection.address)

    # -- lifecycle -------------------------------------------------------------------------------

    def _rdy_share(self, connection: Connection) -> int:
        count = max(1, self.max_in_flight // max(1, len(self.addresses)))
        return min(count, connection.max_rdy_count)

    async def _subscribe(self, address: str) -> None:
        # No delegate until subscribed: a connection that fails (or is cancelled) half-way must
        # not trigger on_close and a reconnect loop that nobody owns.
        connection = await Connection.open(address, self.options)
        try:
            await asyncio.wait_for(connection.subscribe(self.topic, self.channel), self.options.command_timeout)
        except BaseException:
            await asyncio.shield(connection.close())
            raise
        if self._stopping or connection.closed:
            await connection.close()
            if self._stopping:
                return
            raise NSQConnectionError(f"nsqd at {address} closed the connection right after SUB")
        connection.delegate = self  # messages flow only after RDY, below
        self._connections[address] = connection
        connection.ready(self._rdy_share(connection))

    async def start(self) -> None:
        """Subscribe on every nsqd; fails unless at least one accepts. Others are retried behind."""
        try:
            results = await asyncio.gather(*(self._subscribe(a) for a in self.addresses), return_exceptions=True)
        except BaseException:  # cancelled: leave nothing subscribed behind
            await asyncio.shield(self.stop())
            raise
        failures = [(a, r) for a, r in zip(self.addresses, results, strict=True) if isinstance(r, BaseException)]
        for _, result in failures:
            if not isinstance(result, Exception):
                await asyncio.shield(self.stop())
                raise result
        refused = [r for _, r in failures if isinstance(r, NSQErrorResponse)]
        if refused or len(failures) == len(self.addresses):
            await self.stop()
            raise refused[0] if refused else failures[0][1]
        for address, error in failures:
            logger.warning("nsqd at %s unreachable for %s/%s: %s; retrying", address, self.topic, self.channel, error)
            self._start_reconnector(address)

    def add_address(self, address: str) -> None:
        """Subscribe on one more nsqd (found after start), in the background, retried until it works.

        RDY shares depend on the number of nsqd: the connections already open get their new,
        smaller share at once. A known address, or a consumer that is stopping, is left as it is.
        """
        if self._stopping or address in self.addresses:
            return
        self.addresses.append(address)
        for connection in list(self._connections.values()):
            if not connection.closed:
                connection.ready(self._rdy_share(connection))
        self._start_reconnector(address, first_at_once=True)

    def _start_reconnector(self, address: str, *, first_at_once: bool = False) -> None:
        if address not in self._reconnectors:
            task = asyncio.ensure_future(self._reconnect_loop(address, first_at_once))
            self._reconnectors[address] = task
            task.add_done_callback(lambda _t: self._reconnectors.pop(address, None))

    async def _reconnect_loop(self, address: str, first_at_once: bool = False) -> None:
        attempt = 0
        while not self._stopping:
            attempt += 1
            if attempt > 1 or not first_at_once:
                await asyncio.sleep(self.reconnect.delay(attempt))
            try:
                await self._subscribe(address)
                if first_at_once and attempt == 1:
                    logger.info("subscribed %s/%s on nsqd %s", self.topic, self.channel, address)
                else:
                    self.reconnects[address] = self.reconnects.get(address, 0) + 1
                    logger.info("resubscribed %s/%s on nsqd %s", self.topic, self.channel, address)
                return
            except (NSQError, TimeoutError) as exc:  # anything but cancellation: try again
                logger.debug("reconnect %d to %s failed: %s", attempt, address, exc)

    async def stop_receiving(self) -> None:
        """CLS every connection: nsqd sends nothing new; messages in flight may still be finished."""
        self._stopping = True
        for task in list(self._reconnectors.values()):
            task.cancel()
        # CLS once: nsqd answers a second CLS with the fatal E_INVALID and drops the connection,
        # losing the FIN/REQ of messages still in flight. stop() calls this again; a concurrent
        # caller waits for the same CLOSE_WAITs instead of closing under the first one.
        if self._closing is None:
            self._closing = asyncio.gather(*(c.start_close() for c in list(self._connections.values())))
        await asyncio.shield(self._closing)

    async def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop receiving, wait up to ``drain_timeout`` for in-flight messages, then close."""
        await self.stop_receiving()
        if self._in_flight > 0 and drain_timeout > 0 and self.connected:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
            except TimeoutError:
                logger.warning(
                    "%d messages of %s/%s still in flight at close", self._in_flight, self.topic, self.channel
                )
        connections = list(self._connections.values())
        self._connections.clear()
        for connection in connections:
            connection.delegate = None
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
        await asyncio.gather(*self._reconnectors.values(), return_exceptions=True)
