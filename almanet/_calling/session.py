"""``Almanet``: a session on NSQ that calls procedures, produces and consumes.

A thin facade: it checks arguments, keeps the state (unopened, open, closed), orders join and
leave, and delegates — connections to the ``Broker`` (``_broker.py``), calls to the ``Caller``
(``_caller.py``), ``consume()`` to ``Subscription`` (``_subscription.py``). A session owns one
publishing connection per nsqd and, once it has called something, one reply subscription (an
ephemeral topic of its own), so nothing it made outlives it inside nsqd.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar, overload

from .._broker.broker import Broker, translate_nsq_error
from .._nsq.address import Address
from .._nsq.discovery import DEFAULT_LOOKUPD_INTERVAL
from .._nsq.names import check_name
from .._nsq.options import ConnectionOptions
from .._nsq.producer import DEFAULT_MAX_MESSAGE_SIZE
from .._wire import protocol as _wire
from .._wire.checks import MAX_TIMEOUT, check_count, check_delay, check_timeout
from .._wire.errors import invalid_argument, rpc_error, session_state_error
from .caller import Caller, remote_error
from .contract import AbstractProcedure, In, Out, target_of, typed_result
from .models import CallResult
from .options import with_liveness
from .subscription import Subscription
from .trace import CallTrace

__all__ = ["Almanet", "Subscription", "remote_error", "translate_nsq_error"]

DEFAULT_ADDRESS = "localhost:4150"
DEFAULT_CALL_TIMEOUT = 60.0
DEFAULT_MULTICALL_TIMEOUT = 3.0

State = Literal["unopened", "open", "closed"]
T = TypeVar("T")


def _check_name(name: str, kind: str = "topic") -> str:
    try:
        return check_name(name, kind)
    except ValueError as exc:
        raise invalid_argument(str(exc)) from None


class Almanet:
    """A session: ``async with almanet.new_session("localhost:4150") as session: ...``.

    ``lookupd`` (nsqlookupd HTTP addresses, ``host:4161``) makes it find nsqd there too: with
    lookupd and no nsqd address, it uses only the nsqd that lookupd lists. ``addresses`` grows as
    new nsqd are found; an nsqd that lookupd stops listing is kept (its connections reconnect).

    ``heartbeat``, ``silent_after`` and ``ack_timeout`` (seconds) bound how long a frozen nsqd
    goes unnoticed: nsqd's heartbeat interval (30), the silence that drops a connection (two
    heartbeats + 1), the wait for a publish's OK before it goes to another nsqd (1).
    """

    def __init__(
        self,
        *addresses: str,
        default_timeout: float = DEFAULT_CALL_TIMEOUT,
        options: ConnectionOptions | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        lookupd: Sequence[str] | str = (),
        lookupd_interval: float = DEFAULT_LOOKUPD_INTERVAL,
        fail_fast: bool = True,
        nsqd_http: Sequence[str] | str = (),
        heartbeat: float | None = None,
        silent_after: float | None = None,
        ack_timeout: float | None = None,
    ) -> None:
        options = with_liveness(options or ConnectionOptions(), heartbeat, silent_after, ack_timeout)
        lookupd = (lookupd,) if isinstance(lookupd, str) else tuple(dict.fromkeys(lookupd))
        if not lookupd:
            addresses = addresses or (DEFAULT_ADDRESS,)
        nsqd_http = (nsqd_http,) if isinstance(nsqd_http, str) else tuple(nsqd_http)
        for address in (*addresses, *lookupd, *nsqd_http):
            try:
                Address.parse(address)
            except ValueError as exc:
                raise invalid_argument(str(exc)) from None
        default_timeout = check_timeout(default_timeout, "default_timeout")
        lookupd_interval = check_timeout(lookupd_interval, "lookupd_interval")
        max_message_size = check_count(max_message_size, "max_message_size")
        self.id = _wire.new_id()
        self.default_timeout = default_timeout
        self.max_message_size = max_message_size
        self.lookupd: tuple[str, ...] = lookupd
        self.lookupd_interval = float(lookupd_interval)
        # fail-fast, deadlines and timeout reasons read nsqd's /stats there (docs/protocol.md §3)
        self.fail_fast = bool(fail_fast)
        self.nsqd_http: tuple[str, ...] = nsqd_http
        self._broker = Broker(
            tuple(dict.fromkeys(addresses)),
            options,
            max_message_size=max_message_size,
            lookupd=lookupd,
            lookupd_interval=self.lookupd_interval,
        )
        self._caller: Caller = None  # type: ignore[assignment]  # made by join(), on the running loop
        self._state: State = "unopened"
        self._subscriptions: set[Subscription] = set()
        self._leaving: asyncio.Future[None] | None = None

    @property
    def addresses(self) -> tuple[str, ...]:
        """The nsqd in use: those given, then those found through lookupd."""
        return self._broker.addresses

    @property
    def broker(self) -> Broker:
        """The connections underneath, for the service layer (``subscribe``, ``publish_nowait``)."""
        return self._broker

    async def nsqd_max_message_size(self) -> int | None:
        """The smallest ``--max-msg-size`` of the nsqd whose HTTP API this joined session can read
        (None when it can read none): what a service holds its replies to."""
        return await self._caller.stats.max_message_size()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    async def join(self) -> None:
        """Connect to nsqd; a broker that is down fails here, with the address in the message."""
        if self._state == "closed":
            raise session_state_error("this session was closed; create a new one with almanet.new_session()")
        if self._state == "open":
            return
        await self._broker.start()
        self._caller = Caller(
            self._broker, self.id, self.default_timeout, fail_fast=self.fail_fast, nsqd_http=self.nsqd_http
        )
        self._state = "open"

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
            self._broker.closing()
            self._leaving = asyncio.ensure_future(self._teardown())
        await asyncio.shield(self._leaving)

    async def _teardown(self) -> None:
        async def close_subscriptions() -> None:
            for subscription in list(self._subscriptions):
                await subscription.close()

        # Subscriptions first (their unhandled messages go back to nsqd), then every other
        # consumer, the reply consumer included; pending calls fail before the producer goes.
        await self._broker.close(before_consumers=close_subscriptions, before_producer=self._caller.close)

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

    def _encode(self, payload: Any, what: str) -> bytes:
        try:
            body = _wire.encode_json(payload)
        except TypeError as exc:
            raise invalid_argument(f"{what} is not JSON-serializable: {exc}") from None
        self._broker.check_size(body, what)
        return body

    # -- RPC -------------------------------------------------------------------------------------

    @overload
    async def call(
        self,
        uri: AbstractProcedure[In, Out],
        payload: In,
        *,
        timeout: float | None = None,
        trace: CallTrace | None = None,
    ) -> CallResult[Out]: ...

    @overload
    async def call(
        self,
        uri: str,
        payload: Any = None,
        *,
        result: type[T],
        timeout: float | None = None,
        trace: CallTrace | None = None,
    ) -> CallResult[T]: ...

    @overload
    async def call(
        self, uri: str, payload: Any = None, *, timeout: float | None = None, trace: CallTrace | None = None
    ) -> CallResult[Any]: ...

    async def call(
        self,
        uri: str | AbstractProcedure[Any, Any],
        payload: Any = None,
        *,
        result: Any = None,
        timeout: float | None = None,
        trace: CallTrace | None = None,
    ) -> CallResult[Any]:
        """Call a procedure and wait for its reply.

        ``uri`` is a URI or an ``AbstractProcedure``, whose result type then validates the reply
        (a model instance when it is a model); ``result=T`` does the same for a URI. A mismatch is
        a ``ValidationError`` naming the procedure. The payload may be a pydantic model, a
        dataclass or a TypedDict: it is sent as its JSON.

        Raises the remote ``rpc_error`` (as the caller's own subclass when one has its name),
        ``timeout_error`` (a ``TimeoutError``) when no reply comes in time, with its ``reason``
        found within about a second more; at once, with nothing sent, when no nsqd has a
        subscriber for ``uri`` (unless the session was made with ``fail_fast=False``). Inside a
        procedure, ``timeout`` is capped by what is left of the invocation's own deadline.
        ``trace`` (diagnostics, ``almanet call -v``) is filled with the topics and timings.
        """
        if self._state != "open":
            self._require_open()
        if type(uri) is not str:
            uri, result = target_of(uri, result)
        if timeout is not None:
            # the common int or float inline (what check_timeout accepts, bools and NaN aside)
            kind = type(timeout)
            if (kind is int or kind is float) and 0 < timeout <= MAX_TIMEOUT:
                timeout = float(timeout)
            else:
                timeout = check_timeout(timeout)
        caller = self._caller
        if not caller.replies_ready:
            await caller.ensure_replies()
            self._require_open()  # it may have left meanwhile
        started = caller.start(uri, payload, timeout, False, trace)
        if started is None:  # a URI seen for the first time: its liveness is read first
            first = await caller.call(uri, payload, timeout, trace)
            return first if result is None else typed_result(first, result, uri)
        call_id, future = started
        try:
            reply = await future
        finally:
            if future.cancelled() or not future.done():  # the caller gave up: forget it now, tell the services
                caller.forget(call_id)
        if reply.is_error:
            raise remote_error(reply.payload)
        if result is None:
            return CallResult(reply.call_id, reply.payload)
        return typed_result(CallResult(reply.call_id, reply.payload), result, uri)

    @overload
    async def multicall(
        self,
        uri: AbstractProcedure[In, Out],
        payload: In,
        *,
        timeout: float | None = None,
        trace: CallTrace | None = None,
    ) -> list[CallResult[Out] | rpc_error]: ...

    @overload
    async def multicall(
        self,
        uri: str,
        payload: Any = None,
        *,
        result: type[T],
        timeout: float | None = None,
        trace: CallTrace | None = None,
    ) -> list[CallResult[T] | rpc_error]: ...

    @overload
    async def multicall(
        self, uri: str, payload: Any = None, *, timeout: float | None = None, trace: CallTrace | None = None
    ) -> list[CallResult[Any] | rpc_error]: ...

    async def multicall(
        self,
        uri: str | AbstractProcedure[Any, Any],
        payload: Any = None,
        *,
        result: Any = None,
        timeout: float | None = None,
        trace: CallTrace | None = None,
    ) -> list[CallResult[Any] | rpc_error]:
        """Call every channel serving ``uri`` and collect what comes back until ``timeout``.

        Errors are returned in the list, not raised: one failing responder must not hide the others.
        Typed as ``call`` is: each reply validated on its own, a mismatch a ``ValidationError`` in the list.
        """
        self._require_open()
        if type(uri) is not str:
            uri, result = target_of(uri, result)
        seconds = DEFAULT_MULTICALL_TIMEOUT if timeout is None else check_timeout(timeout)
        await self._caller.ensure_replies()
        self._require_open()
        replies = await self._caller.multicall(uri, payload, seconds, trace)
        if result is None:
            return replies
        typed: list[CallResult[Any] | rpc_error] = []
        for reply in replies:
            if isinstance(reply, rpc_error):
                typed.append(reply)
                continue
            try:
                typed.append(typed_result(reply, result, uri))
            except rpc_error as error:
                typed.append(error)
        return typed

    @overload
    async def delay_call(self, uri: AbstractProcedure[In, Any], payload: In, delay: float) -> str: ...

    @overload
    async def delay_call(self, uri: str, payload: Any, delay: float) -> str: ...

    async def delay_call(self, uri: str | AbstractProcedure[Any, Any], payload: Any, delay: float) -> str:
        """Invoke ``uri`` (or an ``AbstractProcedure``) after ``delay`` seconds (NSQ deferred publish).

        No reply is awaited. Returns the invocation id. The reply, if any, goes to this session and is dropped.
        """
        self._require_open()
        if type(uri) is not str:
            uri, _ = target_of(uri, None)
        caller = self._caller
        topic = caller.topic_of(uri)
        delay = check_delay(delay)
        # never refused (its point may be a service that starts later); the deadline when it can
        deadline = await caller.sends_deadline(uri)
        call_id, body = caller.invocation(payload, caller.delay_timeout_ms(delay), deadline)
        # The service publishes its reply to our ephemeral reply topic: were nobody subscribed,
        # nsqd would create that topic with no channel and never delete it.
        await caller.ensure_replies()
        self._require_open()
        await self._broker.publish_deferred(topic, delay, body, doing=f"cannot delay a call of {uri!r}")
        return call_id

    # -- produce / consume -----------------------------------------------------------------------

    def produce(self, topic: str, payload: Any, *, delay: float | None = None) -> asyncio.Future[None]:
        """Publish one JSON message; ``await`` the returned future for nsqd's OK.

        Not a coroutine: the message is checked now (bad input raises here, nothing is sent) and
        queued for this loop tick's PUB/MPUB, and the future is its own (cancelling it cancels no
        other). So ``asyncio.gather`` over many ``produce()`` calls makes no task per message.
        """
        self._require_open()
        _check_name(topic)
        body = self._encode(payload, "the message")
        if delay is not None:
            delay = check_delay(delay)
        if delay:
            published: asyncio.Future[None] = asyncio.ensure_future(self._broker.publish_deferred(topic, delay, body))
        else:
            published = self._broker.publish_each(topic, body)
        if self._caller.tracing is not None:
            self._caller.tracing.producer(topic, published)
        return published

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
        _check_name(topic)
        items = payloads if isinstance(payloads, list | tuple) else list(payloads)
        # Check everything first (encoding twice is cheaper than holding a million encoded bodies).
        for index, payload in enumerate(items):
            if raw:
                if not isinstance(payload, bytes | bytearray):
                    raise invalid_argument(f"message {index} is not bytes but {type(payload).__name__}")
                self._broker.check_size(payload, f"message {index}")
            else:
                self._encode(payload, f"message {index}")
        if not items:
            return 0
        bodies = (bytes(p) for p in items) if raw else map(_wire.encode_json, items)
        await self._broker.publish_many(topic, bodies, progress=progress)
        return len(items)

    def consume(
        self,
        topic: str,
        channel: str,
        *,
        max_in_flight: int = 100,
        max_attempts: int | None = None,
        dead_letter_topic: str | None = None,
    ) -> Subscription:
        """Messages of ``topic`` on ``channel``: ``async for message in session.consume(...)``.

        Use it as ``async with`` to stop it at a known point; otherwise it stops when the session
        leaves. Past ``max_attempts`` deliveries a message is finished and logged, never looped;
        with ``dead_letter_topic`` it is published there first (its attempts and last error with
        it), and so is a message whose last attempt is rolled back.
        """
        self._require_open()
        _check_name(topic)
        _check_name(channel, "channel")
        check_count(max_in_flight, "max_in_flight")
        if max_attempts is not None:
            check_count(max_attempts, "max_attempts")
        if dead_letter_topic is not None:
            _check_name(dead_letter_topic)
            if max_attempts is None:
                raise invalid_argument(
                    "dead_letter_topic needs max_attempts: after how many deliveries a message goes there"
                )
            if dead_letter_topic == topic:
                raise invalid_argument("dead_letter_topic must differ from the topic consumed")
        subscription = Subscription(
            self, self._broker, topic, channel, max_in_flight, max_attempts, self._subscriptions, dead_letter_topic
        )
        subscription.tracing = self._caller.tracing
        return subscription
