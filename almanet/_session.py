"""``Almanet``: a session on NSQ that calls procedures, produces and consumes.

A session owns one publishing connection per nsqd and, once it has called something, one reply
subscription (an ephemeral topic of its own), so nothing it made outlives it inside nsqd.
Given nsqlookupd addresses, it also follows the nsqd registered there: they are looked up when it
joins and every ``lookupd_interval`` seconds after, and each new nsqd is added to its publishing
pool and to every subscription it has (or makes later).
Pending calls share a single deadline timer instead of one timer each: timeouts stay cheap.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Literal

import orjson

from . import _wire
from ._errors import broker_error, invalid_argument, rpc_error, session_state_error
from ._models import CallResult, ConsumedMessage
from ._nsq.consumer import Consumer, Message
from ._nsq.discovery import DEFAULT_LOOKUPD_INTERVAL, LookupdPoller, NSQLookupdError
from ._nsq.errors import NSQConnectionError, NSQError, NSQErrorResponse, NSQHandshakeError
from ._nsq.names import check_name
from ._nsq.options import ConnectionOptions, parse_address
from ._nsq.producer import DEFAULT_MAX_MESSAGE_SIZE, Producer

__all__ = ["Almanet", "Subscription", "remote_error", "translate_nsq_error"]

logger = logging.getLogger(__name__)

DEFAULT_ADDRESS = "localhost:4150"
DEFAULT_CALL_TIMEOUT = 60.0
REPLY_MAX_IN_FLIGHT = 2000

State = Literal["unopened", "open", "closed"]


def translate_nsq_error(exc: NSQError, doing: str) -> broker_error:
    """The one place NSQ client errors become almanet errors, with a hint at the fix."""
    if isinstance(exc, NSQHandshakeError):  # nsqd is there: its message already names the fix
        return broker_error(f"{doing}: {exc}")
    if isinstance(exc, NSQConnectionError):
        return broker_error(f"{doing}: {exc}. Is nsqd running there? Set the address with ALMANET_NSQD or almanet.toml")
    if isinstance(exc, NSQErrorResponse) and exc.code in {"E_BAD_MESSAGE", "E_BAD_BODY"}:
        return broker_error(f"{doing}: nsqd refused the message ({exc}); is it larger than nsqd's --max-msg-size?")
    return broker_error(f"{doing}: nsqd answered {exc}")


def _find_error_class(name: str, base: type[rpc_error] = rpc_error) -> type[rpc_error] | None:
    """The caller's own ``rpc_error`` subclass of that name, the newest defined one winning."""
    found: type[rpc_error] | None = None
    stack = list(base.__subclasses__())
    while stack:
        cls = stack.pop(0)
        if cls.__name__ == name:
            found = cls
        stack.extend(cls.__subclasses__())
    return found


def remote_error(payload: Any) -> rpc_error:
    """Rebuild the exception a procedure raised from an error reply's payload."""
    name, args = _wire.parse_error_payload(payload)
    cls = _find_error_class(name) or rpc_error
    error = cls.__new__(cls)
    rpc_error.__init__(error, *args, name=name)  # bypass user __init__: args come from the wire
    return error


class _Deadlines:
    """One timer for all pending calls, and no per-call timer.

    Calls made with the same timeout expire in the order they were made, so each timeout value
    keeps a FIFO of (deadline, call id); the timer is armed for the earliest head. Answered calls
    are dropped from the head as they complete, so the queues stay as short as the calls in flight.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, pending: dict[str, Any], expire: Any) -> None:
        self._loop = loop
        self._pending = pending
        self._queues: dict[float, collections.deque[tuple[float, str]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")
        self._expire = expire

    def add(self, timeout: float, call_id: str) -> None:
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = collections.deque()
        deadline = self._loop.time() + timeout
        queue.append((deadline, call_id))
        if deadline < self._armed_at:
            self._arm(deadline)

    def trim(self, timeout: float) -> None:
        """Forget answered calls at the head of ``timeout``'s queue."""
        queue = self._queues.get(timeout)
        pending = self._pending
        while queue and queue[0][1] not in pending:
            queue.popleft()

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = deadline
        self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = float("inf")
        now = self._loop.time()
        earliest = float("inf")
        for timeout, queue in list(self._queues.items()):
            while queue and queue[0][0] <= now:
                self._expire(queue.popleft()[1])
            self.trim(timeout)
            if queue:
                earliest = min(earliest, queue[0][0])
            else:
                del self._queues[timeout]
        if earliest != float("inf"):
            self._arm(earliest)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._queues.clear()


class _Pending:
    """A call waiting for replies: one (``call``) or all that come before the deadline (``multicall``)."""

    __slots__ = ("future", "multi", "replies", "timeout", "uri")

    def __init__(self, future: asyncio.Future[Any], uri: str, multi: bool, timeout: float) -> None:
        self.future = future
        self.uri = uri
        self.multi = multi
        self.timeout = timeout
        self.replies: list[_wire.Reply] = []


class Almanet:
    """A session: ``async with almanet.new_session("localhost:4150") as session: ...``.

    ``lookupd`` (nsqlookupd HTTP addresses, ``host:4161``) makes it find nsqd there too: with
    lookupd and no nsqd address, it uses only the nsqd that lookupd lists. ``addresses`` grows as
    new nsqd are found; an nsqd that lookupd stops listing is kept (its connections reconnect).
    """

    def __init__(
        self,
        *addresses: str,
        default_timeout: float = DEFAULT_CALL_TIMEOUT,
        options: ConnectionOptions | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        lookupd: Sequence[str] | str = (),
        lookupd_interval: float = DEFAULT_LOOKUPD_INTERVAL,
    ) -> None:
        lookupd = (lookupd,) if isinstance(lookupd, str) else tuple(dict.fromkeys(lookupd))
        if not lookupd:
            addresses = addresses or (DEFAULT_ADDRESS,)
        for address in (*addresses, *lookupd):
            try:
                parse_address(address)
            except ValueError as exc:
                raise invalid_argument(str(exc)) from None
        if default_timeout <= 0:
            raise invalid_argument("default_timeout must be positive")
        if not (isinstance(lookupd_interval, int | float) and math.isfinite(lookupd_interval) and lookupd_interval > 0):
            raise invalid_argument(f"lookupd_interval must be a positive number of seconds, not {lookupd_interval!r}")
        self.addresses: tuple[str, ...] = tuple(dict.fromkeys(addresses))
        self.lookupd: tuple[str, ...] = lookupd
        self.lookupd_interval = float(lookupd_interval)
        self._poller: LookupdPoller | None = None
        self.id = _wire.new_id()
        self._call_ids = _wire.IdSequence()
        self.default_timeout = default_timeout
        self.max_message_size = max_message_size
        self._options = options or ConnectionOptions()
        self._state: State = "unopened"
        self._producer: Producer = None  # type: ignore[assignment]  # made by join(), once the nsqd are known
        self._reply_topic = _wire.reply_topic(self.id)
        self._replies: Consumer | None = None
        self._replies_ready: asyncio.Future[None] | None = None
        self._pending: dict[str, _Pending] = {}
        self._topics: dict[str, str] = {}  # uri -> topic, checked once
        self._publishing: dict[asyncio.Future[None], list[str]] = {}  # invocations awaiting nsqd's OK
        self._deadlines: _Deadlines | None = None
        self._subscriptions: set[Subscription] = set()
        self._leaving: asyncio.Future[None] | None = None
        self._consumers: set[Consumer] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def joined(self) -> bool:
        return self._state == "open"

    async def join(self) -> None:
        """Connect to nsqd; a broker that is down fails here, with the address in the message."""
        if self._state == "closed":
            raise session_state_error("this session was closed; create a new one with almanet.new_session()")
        if self._state == "open":
            return
        poller = None
        if self.lookupd:
            poller = LookupdPoller(
                self.lookupd,
                self._on_nsqd_found,
                interval=self.lookupd_interval,
                timeout=self._options.connect_timeout,
            )
            await self._lookup_nsqd(poller)
        producer = Producer(self.addresses, self._options)
        try:
            await producer.connect()
        except NSQError as exc:
            await producer.close()
            raise translate_nsq_error(exc, "cannot join") from None
        except BaseException:  # cancelled: close what was opened, the session stays unopened
            await asyncio.shield(producer.close())
            raise
        self._producer = producer
        self._loop = asyncio.get_running_loop()  # kept: get_running_loop costs a getpid() call
        self._deadlines = _Deadlines(self._loop, self._pending, self._expire)
        self._state = "open"
        if poller is not None:
            self._poller = poller
            poller.start()

    async def _lookup_nsqd(self, poller: LookupdPoller) -> None:
        """The first lookup: the nsqd lookupd lists, added to those given. Joining needs at least one."""
        where = ", ".join(self.lookupd)
        try:
            found = await poller.poll()
        except NSQLookupdError as exc:
            if not self.addresses:
                raise broker_error(
                    f"cannot join: {exc}. Is nsqlookupd running at {where}?"
                    " Set its HTTP address with ALMANET_LOOKUPD or nsq.lookupd_http in almanet.toml"
                ) from None
            return  # the failure is logged; the nsqd given are enough to start, lookupd is asked again later
        self.addresses = tuple(dict.fromkeys((*self.addresses, *found)))
        if not self.addresses:
            raise broker_error(
                f"cannot join: no nsqd is registered with nsqlookupd at {where}"
                " (start nsqd with --lookupd-tcp-address=<lookupd host>:4160, or give an nsqd address)"
            )

    def _on_nsqd_found(self, found: list[str]) -> None:
        """lookupd lists nsqd we do not use yet: publish there, and subscribe there everything we read."""
        if self._state != "open":
            return
        new = [a for a in found if a not in self.addresses]
        if not new:
            return
        self.addresses = (*self.addresses, *new)
        consumers = set(self._consumers)
        if self._replies is not None:
            consumers.add(self._replies)
        for address in new:
            logger.info("using nsqd %s, found through nsqlookupd", address)
            self._producer.add_address(address)
            for consumer in consumers:
                consumer.add_address(address)

    async def leave(self) -> None:
        """Stop consuming, fail pending calls, close every connection. Safe to call twice.

        The teardown runs to its end even if the caller is cancelled meanwhile (a second Ctrl-C,
        an outer timeout); a second ``leave()`` waits for it.
        """
        if self._leaving is None:
            was_open = self._state == "open"
            self._state = "closed"
            if not was_open:
                return
            self._leaving = asyncio.ensure_future(self._teardown())
        await asyncio.shield(self._leaving)

    async def _teardown(self) -> None:
        if self._poller is not None:
            await self._poller.close()
        for subscription in list(self._subscriptions):
            await subscription.close()
        # the reply consumer is in self._consumers too: stopping it twice at once would close its
        # connection while the first stop still waits for nsqd's answer to CLS
        consumers = set(self._consumers)
        if self._replies is not None:
            consumers.add(self._replies)
        await asyncio.gather(*(c.stop() for c in consumers), return_exceptions=True)
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(session_state_error("the session left before the reply came"))
        self._pending.clear()
        if self._deadlines is not None:
            self._deadlines.close()
        await self._producer.close()

    async def __aenter__(self) -> Almanet:
        await self.join()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.leave()

    def _require_open(self) -> None:
        if self._state != "open":
            hint = (
                "use `async with session:` or `await session.join()`"
                if self._state == "unopened"
                else ("it was closed; create a new session")
            )
            raise session_state_error(f"the session is not open: {hint}")

    # -- low-level plumbing (used by the service layer too) --------------------------------------

    def _encode(self, payload: Any, what: str) -> bytes:
        try:
            body = orjson.dumps(payload)
        except TypeError as exc:
            raise invalid_argument(f"{what} is not JSON-serializable: {exc}") from None
        self._check_size(body, what)
        return body

    def _check_size(self, body: bytes, what: str) -> None:
        if len(body) > self.max_message_size:
            raise invalid_argument(
                f"{what} is {len(body)} bytes; nsqd accepts at most {self.max_message_size}"
                " (raise nsqd's --max-msg-size and the session's max_message_size together)"
            )

    async def _subscribe(
        self,
        topic: str,
        channel: str,
        handler: Any,
        *,
        max_in_flight: int,
        low_latency: bool,
    ) -> Consumer:
        """Start a consumer owned by this session (stopped when it leaves)."""
        self._require_open()
        options = self._options
        if low_latency:
            options = _low_latency(options)
        consumer = Consumer(topic, channel, self.addresses, handler, max_in_flight=max_in_flight, options=options)
        try:
            await consumer.start()
        except NSQError as exc:
            raise translate_nsq_error(exc, f"cannot subscribe to {topic}/{channel}") from None
        if self._state != "open":  # the session left while we subscribed: nobody would stop it
            await consumer.stop()
            self._require_open()
        self._consumers.add(consumer)
        for address in self.addresses:  # nsqd found through lookupd while it subscribed
            consumer.add_address(address)
        return consumer

    async def _stop_consumer(self, consumer: Consumer, drain_timeout: float = 0.0) -> None:
        self._consumers.discard(consumer)
        await consumer.stop(drain_timeout)

    def _publish_nowait(self, topic: str, body: bytes, prefer: str | None = None) -> asyncio.Future[None]:
        return self._producer.publish_nowait(topic, body, prefer=prefer)

    # -- RPC -------------------------------------------------------------------------------------

    async def _ensure_replies(self) -> None:
        """Subscribe the reply topic once; concurrent first calls share that one attempt.

        ``_replies_ready`` is None (no attempt yet, or the last one failed), pending, or done
        with success. A failed attempt fails its waiters too; a cancelled one makes a waiter
        try again itself, never cancels it.
        """
        while True:
            ready = self._replies_ready
            if ready is None:
                ready = self._replies_ready = self._loop.create_future()
                try:
                    self._replies = await self._subscribe(
                        self._reply_topic,
                        _wire.REPLY_CHANNEL,
                        self._on_reply,
                        max_in_flight=REPLY_MAX_IN_FLIGHT,
                        low_latency=True,
                    )
                except asyncio.CancelledError:
                    self._replies_ready = None
                    ready.cancel()
                    raise
                except BaseException as exc:
                    self._replies_ready = None
                    ready.set_exception(exc)
                    ready.exception()  # retrieved: the raise below reports it
                    raise
                ready.set_result(None)
                return
            if ready.done():
                return
            try:
                await asyncio.shield(ready)
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if ready.cancelled() and task is not None and not task.cancelling():
                    continue  # the attempt we waited on was cancelled, not us: try ourselves
                raise

    def _on_reply(self, message: Message) -> None:
        try:
            reply = _wire.decode_reply(message.body)
        except _wire.WireError as exc:
            message.finish()
            logger.warning("ignored a malformed reply on %s: %s", self._reply_topic, exc)
            return
        pending = self._pending.get(reply.call_id)
        if pending is None:
            message.finish()
            logger.debug("reply to %s came after its call ended", reply.call_id)
            return
        if pending.multi:
            pending.replies.append(reply)
        else:
            del self._pending[reply.call_id]
            if not pending.future.done():
                pending.future.set_result(reply)  # the caller resumes before the FIN is written
            self._deadlines.trim(pending.timeout)  # type: ignore[union-attr]
        message.finish()

    def _expire(self, call_id: str) -> None:
        pending = self._pending.pop(call_id, None)
        if pending is None or pending.future.done():
            return
        if pending.multi:
            pending.future.set_result(pending.replies)
        else:
            pending.future.set_exception(
                TimeoutError(f"no reply from {pending.uri!r}: no service answered within the timeout")
            )

    def _topic_of(self, uri: str) -> str:
        topic = self._topics.get(uri)
        if topic is None:
            try:
                topic = _wire.rpc_topic(uri)
            except ValueError as exc:
                raise invalid_argument(str(exc)) from None
            if len(self._topics) < 10_000:
                self._topics[uri] = topic
        return topic

    def _invocation(self, payload: Any) -> tuple[str, bytes]:
        """A new call id and the invocation's bytes, checked: nothing is sent for a bad payload."""
        call_id = self._call_ids.next()
        try:
            body = _wire.encode_invocation(call_id, self.id, payload, self._reply_topic)
        except _wire.WireError as exc:
            raise invalid_argument(str(exc)) from None
        self._check_size(body, "the payload")
        return call_id, body

    def _start_call(
        self, uri: str, payload: Any, timeout: float | None, multi: bool
    ) -> tuple[str, asyncio.Future[Any]]:
        topic = self._topic_of(uri)
        timeout = self.default_timeout if timeout is None else timeout
        if timeout <= 0:
            raise invalid_argument("timeout must be positive")
        call_id, body = self._invocation(payload)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending[call_id] = _Pending(future, uri, multi, timeout)
        assert self._deadlines is not None
        self._deadlines.add(timeout, call_id)
        published = self._producer.publish_nowait(topic, body)
        # One watcher per publish, not per call: a tick's invocations share one MPUB and its OK.
        calls = self._publishing.get(published)
        if calls is None:
            calls = self._publishing[published] = []
            published.add_done_callback(self._on_published)
        calls.append(call_id)
        return call_id, future

    async def _wait(self, call_id: str, future: asyncio.Future[Any]) -> Any:
        try:
            return await future
        finally:
            if not future.done():  # cancelled by the caller: forget the call now, not at its deadline
                self._pending.pop(call_id, None)

    def _on_published(self, published: asyncio.Future[None]) -> None:
        calls = self._publishing.pop(published, [])
        error = None if published.cancelled() else published.exception()
        if error is None:
            return
        for call_id in calls:
            pending = self._pending.pop(call_id, None)
            if pending is not None and not pending.future.done():
                failure = error
                if isinstance(error, NSQError):
                    failure = translate_nsq_error(error, f"cannot call {pending.uri!r}")
                pending.future.set_exception(failure)

    async def call(self, uri: str, payload: Any = None, *, timeout: float | None = None) -> CallResult[Any]:
        """Call a procedure and wait for its reply.

        Raises the remote ``rpc_error`` (as the caller's own subclass when one has its name),
        ``TimeoutError`` when no reply comes in time (also when nothing serves ``uri``).
        """
        self._require_open()
        if self._replies_ready is None or not self._replies_ready.done():
            await self._ensure_replies()
            self._require_open()  # it may have left meanwhile
        call_id, future = self._start_call(uri, payload, timeout, multi=False)
        try:
            reply: _wire.Reply = await future
        finally:
            if not future.done():  # cancelled by the caller: forget the call now, not at its deadline
                self._pending.pop(call_id, None)
        if reply.is_error:
            raise remote_error(reply.payload)
        return CallResult(reply.call_id, reply.payload)

    async def multicall(
        self, uri: str, payload: Any = None, *, timeout: float | None = None
    ) -> list[CallResult[Any] | rpc_error]:
        """Call every channel serving ``uri`` and collect what comes back until ``timeout``.

        Errors are returned in the list, not raised: one failing responder must not hide the others.
        """
        self._require_open()
        await self._ensure_replies()
        self._require_open()
        call = self._start_call(uri, payload, timeout if timeout is not None else 3.0, multi=True)
        replies: list[_wire.Reply] = await self._wait(*call)
        return [remote_error(r.payload) if r.is_error else CallResult(r.call_id, r.payload) for r in replies]

    async def delay_call(self, uri: str, payload: Any, delay: float) -> str:
        """Invoke ``uri`` after ``delay`` seconds (NSQ deferred publish); no reply is awaited.

        Returns the invocation id. The reply, if any, goes to this session and is dropped.
        """
        self._require_open()
        topic = self._topic_of(uri)
        _check_delay(delay)
        call_id, body = self._invocation(payload)
        # The service publishes its reply to our ephemeral reply topic: were nobody subscribed,
        # nsqd would create that topic with no channel and never delete it.
        await self._ensure_replies()
        self._require_open()
        try:
            await self._producer.publish_deferred(topic, int(delay * 1000), body)
        except NSQError as exc:
            raise translate_nsq_error(exc, f"cannot delay a call of {uri!r}") from None
        return call_id

    # -- produce / consume -----------------------------------------------------------------------

    @staticmethod
    def _check_topic(topic: str, kind: str = "topic") -> str:
        try:
            return check_name(topic, kind)
        except ValueError as exc:
            raise invalid_argument(str(exc)) from None

    def produce(self, topic: str, payload: Any, *, delay: float | None = None) -> asyncio.Future[None]:
        """Publish one JSON message; ``await`` the returned future for nsqd's OK.

        Not a coroutine: the message is checked now (bad input raises here, nothing is sent) and
        queued for this loop tick's PUB/MPUB, and the future is its own (cancelling it cancels no
        other). So ``asyncio.gather`` over many ``produce()`` calls makes no task per message.
        """
        self._require_open()
        self._check_topic(topic)
        body = self._encode(payload, "the message")
        if delay:
            _check_delay(delay)
            return asyncio.ensure_future(self._produce_deferred(topic, delay, body))
        return self._producer.publish_each(topic, body, lambda exc: translate_nsq_error(exc, _producing(topic)))

    async def _produce_deferred(self, topic: str, delay: float, body: bytes) -> None:
        try:
            await self._producer.publish_deferred(topic, int(delay * 1000), body)
        except NSQError as exc:
            raise translate_nsq_error(exc, _producing(topic)) from None

    async def produce_many(
        self,
        topic: str,
        payloads: Iterable[Any],
        *,
        raw: bool = False,
        progress: Any = None,
    ) -> int:
        """Publish many messages with MPUB batches; every message is checked before any is sent.

        With ``raw=True`` the payloads are bytes sent as they are. Returns the number sent.
        ``progress`` is called with the number of messages of each batch nsqd confirmed.
        """
        self._require_open()
        self._check_topic(topic)
        items = payloads if isinstance(payloads, list | tuple) else list(payloads)
        # Check everything first (encoding twice is cheaper than holding a million encoded bodies).
        for index, payload in enumerate(items):
            if raw:
                if not isinstance(payload, bytes | bytearray):
                    raise invalid_argument(f"message {index} is not bytes but {type(payload).__name__}")
                self._check_size(payload, f"message {index}")
            else:
                self._encode(payload, f"message {index}")
        if not items:
            return 0
        bodies = (bytes(p) for p in items) if raw else map(orjson.dumps, items)
        try:
            await self._producer.publish_many(topic, bodies, progress=progress)
        except NSQError as exc:
            raise translate_nsq_error(exc, _producing(topic)) from None
        return len(items)

    def consume(
        self,
        topic: str,
        channel: str,
        *,
        max_in_flight: int = 100,
        max_attempts: int | None = None,
    ) -> Subscription:
        """Messages of ``topic`` on ``channel``: ``async for message in session.consume(...)``.

        Use it as ``async with`` to stop it at a known point; otherwise it stops when the session
        leaves. Past ``max_attempts`` deliveries a message is finished and logged, never looped.
        """
        self._require_open()
        self._check_topic(topic)
        self._check_topic(channel, "channel")
        if max_attempts is not None and max_attempts < 1:
            raise invalid_argument("max_attempts must be at least 1")
        return Subscription(self, topic, channel, max_in_flight, max_attempts)


MAX_DELAY = 3600.0  # nsqd's default --max-req-timeout, the limit of DPUB's delay


def _producing(topic: str) -> str:
    return f"cannot produce to {topic!r}"


def _check_delay(delay: float) -> None:
    """A DPUB delay nsqd accepts; an out-of-range one is a fatal error that drops the connection."""
    if not (isinstance(delay, int | float) and math.isfinite(delay) and 0 <= delay <= MAX_DELAY):
        raise invalid_argument(
            f"delay must be between 0 and {MAX_DELAY:g} seconds (nsqd's --max-req-timeout), not {delay!r}"
        )


def _low_latency(options: ConnectionOptions) -> ConnectionOptions:
    """nsqd writes each message at once instead of buffering up to 250 ms: RPC wants latency."""
    return dataclasses.replace(options, output_buffer_size=-1)


class Subscription:
    """An ``async`` iterator of ``ConsumedMessage``; starts on first use, stops on ``close``."""

    def __init__(
        self, session: Almanet, topic: str, channel: str, max_in_flight: int, max_attempts: int | None
    ) -> None:
        self.session = session
        self.topic = topic
        self.channel = channel
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._consumer: Consumer | None = None
        self._closed = False

    async def start(self) -> None:
        if self._consumer is None and not self._closed:
            self._consumer = await self.session._subscribe(
                self.topic, self.channel, self._on_message, max_in_flight=self.max_in_flight, low_latency=False
            )
            self.session._subscriptions.add(self)

    def _on_message(self, message: Message) -> None:
        if self.max_attempts is not None and message.attempts > self.max_attempts:
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

    async def close(self) -> None:
        """Stop receiving; messages received but not handled go back to nsqd right away."""
        if self._closed:
            return
        self._closed = True
        self.session._subscriptions.discard(self)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop_receiving()
            while not self._queue.empty():
                message = self._queue.get_nowait()
                if message is not None:
                    message.requeue()
            await self.session._stop_consumer(consumer)
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
        return ConsumedMessage(message)
