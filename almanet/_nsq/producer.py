"""Publishing to a set of nsqd: one connection per nsqd, round robin, with failover and healing.

A lost nsqd is reconnected in the background (backoff with jitter) and rejoins the round robin
once it answers. A node that leaves a publish unacknowledged for ``ack_timeout`` while another
node is live is dropped at once (a frozen or overloaded host): what it held is published
elsewhere (at-least-once), and it comes back through the same reconnect loop.

Publishing uses nsqd's default output buffering: the OK replies are not latency-critical and
buffering saves nsqd writes. Subscriptions that want low latency have their own connections.

Over 400 lines on purpose: publishing, failover and healing share the live-connection table and
the round robin; a cut would make those package API for the one other module that used them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable, Sequence

from . import codec
from .backoff import ReconnectPolicy
from .bulk import publish_batches
from .connection import Connection
from .errors import NSQConnectionError, NSQError
from .options import ConnectionOptions

__all__ = ["DEFAULT_MAX_BODY_SIZE", "DEFAULT_MAX_MESSAGE_SIZE", "Producer"]

logger = logging.getLogger(__name__)

# nsqd's defaults (--max-msg-size, --max-body-size); IDENTIFY does not report them.
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
DEFAULT_MAX_BODY_SIZE = 5 * 1024 * 1024


class _Tick:
    """The messages ``publish_each`` put in one tick's PUB/MPUB: one future each, one timer for all."""

    __slots__ = ("address", "items", "timer", "topic", "translate")

    def __init__(self, address: str, topic: str, translate: Callable[[Exception, str], Exception] | None) -> None:
        self.address = address
        self.topic = topic
        self.translate = translate
        self.items: list[tuple[asyncio.Future[None], bytes]] = []
        self.timer: asyncio.TimerHandle | None = None


class Producer:
    def __init__(
        self,
        addresses: Sequence[str],
        options: ConnectionOptions | None = None,
        *,
        ack_timeout: float | None = None,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("at least one nsqd address is needed")
        self.options = options or ConnectionOptions()
        # the options' bound (a setting, liveness.ack_timeout) unless this producer is given its own
        ack_timeout = self.options.ack_timeout if ack_timeout is None else ack_timeout
        if not ack_timeout > 0:
            raise ValueError("ack_timeout must be positive")
        self.addresses = tuple(addresses)
        self.ack_timeout = ack_timeout
        self.reconnect = reconnect or ReconnectPolicy()
        self._reconnectors: dict[str, asyncio.Task[None]] = {}
        self._health: asyncio.TimerHandle | None = None
        self._connections: dict[str, Connection] = {}
        self._connecting: dict[str, asyncio.Task[Connection]] = {}
        self._next = 0
        self._closed = False
        self._resending: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Future[None]] = set()
        self._ticks: dict[asyncio.Future[bytes], _Tick] = {}  # publish_each's, by their PUB/MPUB's future

    # -- connections -----------------------------------------------------------------------------

    def _live(self) -> Connection | None:
        """A connected nsqd, round robin, or None; no I/O."""
        n = len(self.addresses)
        if n == 1:  # the usual single nsqd: no round robin to keep
            connection = self._connections.get(self.addresses[0])
            return connection if connection is not None and not connection.closed else None
        for i in range(n):
            address = self.addresses[(self._next + i) % n]
            connection = self._connections.get(address)
            if connection is not None and not connection.closed:
                self._next = (self._next + i + 1) % n
                return connection
        return None

    async def _open(self, address: str) -> Connection:
        """The live connection to ``address``, opening it if needed (one attempt at a time)."""
        if self._closed:
            raise NSQConnectionError("the producer is closed")
        live = self._connections.get(address)
        if live is not None and not live.closed:
            return live
        task = self._connecting.get(address) or self._start_opening(address)
        return await asyncio.shield(task)

    def _start_opening(self, address: str) -> asyncio.Task[Connection]:
        task = asyncio.ensure_future(Connection.open(address, self.options))
        self._connecting[address] = task
        task.add_done_callback(functools.partial(self._opened, address))
        return task

    def _opened(self, address: str, task: asyncio.Task[Connection]) -> None:
        """Adopt a new connection even when whoever asked for it was cancelled meanwhile."""
        self._connecting.pop(address, None)
        if task.cancelled() or task.exception() is not None:
            return
        connection = task.result()
        if self._closed:
            self._closing.add(asyncio.ensure_future(connection.close()))
            return
        connection.on_lost_commands = self._resend
        connection.delegate = self
        self._connections[address] = connection
        if self._health is None:
            self._arm_health()

    # -- healing ---------------------------------------------------------------------------------

    def on_message(self, connection: Connection, frame: codec.MessageFrame) -> None:
        logger.warning("nsqd at %s sent a message to a publishing connection; ignored", connection.address)

    def on_close(self, connection: Connection, error: Exception | None) -> None:
        """A connection ended: publish to the others meanwhile, and reconnect in the background."""
        if self._connections.get(connection.address) is connection:
            del self._connections[connection.address]
        if self._closed:
            return
        reason = error or "nsqd closed the connection (stopping or restarting?)"
        logger.warning("publishing to nsqd at %s stopped: %s; reconnecting in background", connection.address, reason)
        self._start_reconnector(connection.address)

    def _start_reconnector(self, address: str) -> None:
        if not self._closed and address not in self._reconnectors:
            task = asyncio.ensure_future(self._reconnect_loop(address))
            self._reconnectors[address] = task
            task.add_done_callback(lambda _t: self._reconnectors.pop(address, None))

    async def _reconnect_loop(self, address: str) -> None:
        attempt = 0
        while not self._closed:
            attempt += 1
            await asyncio.sleep(self.reconnect.delay(attempt))
            live = self._connections.get(address)
            if live is not None and not live.closed:
                return  # a publish opened it meanwhile
            try:
                await self._open(address)
            except (NSQError, TimeoutError) as exc:  # anything but cancellation: try again
                logger.debug("reconnect %d to nsqd at %s failed: %s", attempt, address, exc)
                continue
            logger.info("nsqd at %s answers again: publishing there again", address)
            return

    def _arm_health(self) -> None:
        self._health = asyncio.get_running_loop().call_later(self.ack_timeout / 2, self._check_health)

    def _check_health(self) -> None:
        """Drop a node that has left publishes unacknowledged for ``ack_timeout``, if another is live.

        Alone, a slow node is waited for (there is nowhere else to publish); with others, its
        unanswered publishes go to them now instead of waiting out their callers' timeouts.
        """
        self._health = None
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        live = [c for c in self._connections.values() if not c.closed]
        stalled = [c for c in live if c.unanswered_for(now) > self.ack_timeout]
        if stalled and len(stalled) < len(live):
            for connection in stalled:
                connection.abort(
                    NSQConnectionError(
                        f"nsqd at {connection.address} did not acknowledge within {self.ack_timeout:g}s;"
                        " its publishes go to the other nsqd"
                    )
                )
        self._arm_health()

    def _resend(self, lost: list[tuple[asyncio.Future[bytes], bytes]]) -> None:
        """Publish again, elsewhere, what a lost connection had sent without nsqd's answer.

        nsqd may have taken some of them before the connection died: at-least-once, as NSQ is.
        Nothing is done per publish on the hot path; this runs only when a connection is lost.
        """

        async def again(waiter: asyncio.Future[bytes], command: bytes) -> None:
            try:
                if self._closed:
                    raise NSQConnectionError("the producer is closed")
                await self._with_failover(lambda c: c.request(command))
            except Exception as exc:
                if not waiter.done():
                    waiter.set_exception(exc)
            else:
                if not waiter.done():
                    waiter.set_result(b"OK")

        for waiter, command in lost:
            task = asyncio.ensure_future(again(waiter, command))
            self._resending.add(task)
            task.add_done_callback(self._resending.discard)

    async def connect(self) -> None:
        """Open a connection to every nsqd; fails only when none can be reached."""
        results = await asyncio.gather(*(self._open(a) for a in self.addresses), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if len(errors) == len(results):
            raise errors[0]
        for address, result in zip(self.addresses, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("nsqd at %s is unreachable for now: %s; retrying in the background", address, result)
                self._start_reconnector(address)

    def add_address(self, address: str) -> None:
        """Publish to one more nsqd (found after start): it joins the round robin once connected.

        The connection is opened now, in the background; if that fails it is retried in the
        background like any lost nsqd. A known address is left as it is.
        """
        if self._closed or address in self.addresses:
            return
        self.addresses = (*self.addresses, address)
        if address not in self._connecting:
            self._start_opening(address).add_done_callback(lambda t: self._added(address, t))

    def _added(self, address: str, task: asyncio.Task[Connection]) -> None:
        if not task.cancelled() and task.exception() is not None and not self._closed:
            logger.warning("nsqd at %s is unreachable for now: %s", address, task.exception())
            self._start_reconnector(address)

    async def _with_failover(
        self,
        send: Callable[[Connection], asyncio.Future[bytes]],
        avoid: str | None = None,
        avoided: Exception | None = None,
    ) -> None:
        """Send on a live nsqd, then on the others in turn; ``avoid`` (which failed with ``avoided``) last of all."""
        if self._closed:
            raise NSQConnectionError("the producer is closed")
        tried: list[str] = [avoid] if avoid is not None else []
        last_error: Exception | None = avoided
        connection = self._live()
        if connection is not None and connection.address == avoid:
            connection = None
        while True:
            if connection is None:
                for address in self.addresses:
                    if address in tried:
                        continue
                    try:
                        connection = await self._open(address)
                        break
                    except NSQConnectionError as exc:
                        tried.append(address)
                        last_error = exc
                if connection is None:
                    if last_error is None:
                        last_error = NSQConnectionError("no nsqd is reachable")
                    raise last_error
            try:
                sent = send(connection)  # may be shared with other publishes: never cancel it
                async with asyncio.timeout(self.options.command_timeout):
                    await asyncio.shield(sent)
                return
            except TimeoutError:
                # nsqd took it, or not: at-least-once, like a connection lost before the OK
                tried.append(connection.address)
                last_error = NSQConnectionError(
                    f"nsqd at {connection.address} did not answer within {self.options.command_timeout}s"
                )
                connection = None
            except NSQConnectionError as exc:
                # Not sent, or sent with no confirmation: retried on another nsqd (at-least-once).
                tried.append(connection.address)
                last_error = exc
                connection = None

    # -- publishing ------------------------------------------------------------------------------

    async def publish(self, topic: str, body: bytes) -> None:
        await self._with_failover(lambda c: c.publish_soon(topic, body))

    def publish_each(
        self, topic: str, body: bytes, translate: Callable[[Exception, str], Exception] | None = None
    ) -> asyncio.Future[None]:
        """Publish like ``publish()``, without a coroutine or a task per message.

        The future is this message's own (cancelling it cancels no other); the messages of one
        tick share one PUB/MPUB, one done callback and one ``command_timeout`` timer. A lost
        connection's commands are resent elsewhere (``_resend``); no answer in time publishes the
        tick's messages again on another nsqd, as ``publish()`` does. ``translate(error, topic)``
        maps the client's errors to the caller's.
        """
        connection = self._live()
        if connection is None:  # nothing connected: open one (or fail over) in a task
            return asyncio.ensure_future(self._publish_translated(topic, body, translate))
        sent = connection.publish_soon(topic, body)
        tick = self._ticks.get(sent)
        if tick is None:
            tick = self._ticks[sent] = _Tick(connection.address, topic, translate)
            tick.timer = sent.get_loop().call_later(self.options.command_timeout, self._tick_late, sent)
            sent.add_done_callback(self._tick_done)
        future: asyncio.Future[None] = sent.get_loop().create_future()
        tick.items.append((future, body))
        return future

    async def _publish_translated(
        self, topic: str, body: bytes, translate: Callable[[Exception, str], Exception] | None
    ) -> None:
        try:
            await self.publish(topic, body)
        except NSQError as exc:
            if translate is None:
                raise
            raise translate(exc, topic) from None

    def _tick_done(self, sent: asyncio.Future[bytes]) -> None:
        tick = self._ticks.pop(sent, None)
        if tick is None:  # it was late: published again, its futures are that attempt's
            return
        if tick.timer is not None:
            tick.timer.cancel()
        error = None if sent.cancelled() else sent.exception()
        if error is None and sent.cancelled():
            error = NSQConnectionError(f"publishing to {tick.topic} was cancelled")
        if error is not None and tick.translate is not None and isinstance(error, NSQError):
            error = tick.translate(error, tick.topic)
        for future, _ in tick.items:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def _tick_late(self, sent: asyncio.Future[bytes]) -> None:
        """No OK within command_timeout: publish the tick's messages again, elsewhere first (at-least-once)."""
        tick = self._ticks.pop(sent, None)
        if tick is None:
            return
        items = [(future, body) for future, body in tick.items if not future.done()]
        if not items:
            return
        late = NSQConnectionError(f"nsqd at {tick.address} did not answer within {self.options.command_timeout}s")

        async def again() -> None:
            batch = codec.MessageBatch()
            for _, body in items:
                batch.add(body)
            error: Exception | None = None
            try:
                await self._with_failover(lambda c: c.publish_batch(tick.topic, batch), tick.address, late)
            except NSQError as exc:
                error = tick.translate(exc, tick.topic) if tick.translate is not None else exc
            for future, _ in items:
                if not future.done():
                    future.set_exception(error) if error is not None else future.set_result(None)

        task = asyncio.ensure_future(again())
        self._resending.add(task)
        task.add_done_callback(self._resending.discard)

    def publish_nowait(self, topic: str, body: bytes, *, prefer: str | None = None) -> asyncio.Future[None]:
        """Publish without awaiting here: the returned future carries the OK or the error.

        ``prefer`` names the nsqd to publish to (a reply goes back to the nsqd its call came from,
        where the caller is subscribed); the others are used only when it cannot be reached.
        """
        if prefer is not None and prefer in self.addresses:
            connection = self._connections.get(prefer)
            if connection is not None and not connection.closed:
                return connection.publish_soon(topic, body)  # type: ignore[return-value]
            return asyncio.ensure_future(self._publish_preferring(prefer, topic, body))
        connection = self._live()
        if connection is not None:
            return connection.publish_soon(topic, body)  # type: ignore[return-value]
        return asyncio.ensure_future(self.publish(topic, body))

    async def _publish_preferring(self, address: str, topic: str, body: bytes) -> None:
        try:
            connection = await self._open(address)
            await connection.publish(topic, body)
        except NSQConnectionError as exc:
            logger.warning("nsqd at %s unreachable (%s); publishing to %s elsewhere", address, exc, topic)
            await self.publish(topic, body)

    async def publish_deferred(self, topic: str, delay_ms: int, body: bytes) -> None:
        await self._with_failover(lambda c: c.publish_deferred(topic, delay_ms, body))

    async def publish_many(
        self,
        topic: str,
        bodies: Iterable[bytes],
        *,
        max_batch_bytes: int = DEFAULT_MAX_BODY_SIZE // 2,
        max_in_flight: int = 4,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """MPUB ``bodies`` (read lazily) in batches under ``max_batch_bytes``, a few in flight at once.

        A single message over nsqd's limit is refused by nsqd with E_BAD_MESSAGE; callers check
        sizes first so nothing is half-sent because of one bad message.
        """

        async def send(batch: codec.MessageBatch) -> None:
            await self._with_failover(lambda c: c.publish_batch(topic, batch))

        await publish_batches(
            send, bodies, max_batch_bytes=max_batch_bytes, max_in_flight=max_in_flight, progress=progress
        )

    async def close(self) -> None:
        self._closed = True
        if self._health is not None:
            self._health.cancel()
            self._health = None
        reconnectors = list(self._reconnectors.values())
        for reconnector in reconnectors:
            reconnector.cancel()
        await asyncio.gather(*reconnectors, return_exceptions=True)
        connecting = list(self._connecting.values())
        for task in connecting:
            task.cancel()
        await asyncio.gather(*connecting, return_exceptions=True)
        connections = list(self._connections.values())
        self._connections.clear()
        for connection in connections:
            connection.delegate = None
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
        await asyncio.gather(*self._resending, *self._closing, return_exceptions=True)  # fail fast once closed
