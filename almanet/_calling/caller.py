"""``Caller``: a session's calls in flight — ids, pending replies, deadlines, the reply subscription.

A call is registered as pending and published in one synchronous step (``start``), so a tick's
invocations leave in one MPUB, in the order they were made, and a reply can never come before
its call is known. One watcher serves each published batch; one timer serves every deadline.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

from .._broker.broker import Broker, translate_nsq_error
from .._broker.stats import StatsReader
from .._nsq.consumer import Consumer, Message
from .._nsq.errors import NSQError
from .._wire import deadline as _deadline
from .._wire import protocol as _wire
from .._wire.deadline import budget as _budget
from .._wire.errors import invalid_argument, rpc_error, session_state_error, timeout_error
from .expiry import Deadlines
from .forensics import Autopsies, expired_error
from .liveness import Liveness
from .models import CallResult
from .trace import CallTrace
from .tracing import Tracing, for_this_process

__all__ = ["REPLY_MAX_IN_FLIGHT", "Caller", "remote_error"]

logger = logging.getLogger(__name__)

REPLY_MAX_IN_FLIGHT = 2000


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
    args, fields = _wire.fields_of_error(args)
    return (_find_error_class(name) or rpc_error).from_wire(name, args, fields)


class _Pending:
    """A call waiting for replies: one (``call``) or all that come before the deadline (``multicall``)."""

    __slots__ = ("future", "multi", "nested", "replies", "timeout", "trace", "uri")

    def __init__(
        self,
        future: asyncio.Future[Any],
        uri: str,
        multi: bool,
        timeout: float,
        trace: CallTrace | None = None,
        nested: bool = False,
    ) -> None:
        self.future = future
        self.uri = uri
        self.multi = multi
        self.timeout = timeout
        self.replies: list[_wire.Reply] = []
        self.trace = trace
        # made by a procedure within its budget: its timeout must reach the procedure at once
        self.nested = nested


class Caller:
    """The RPC half of a session, made when it joins: ``call``, ``multicall``, ``delay_call``.

    Arguments are checked by the session; this class checks what only it can (the URI's topic,
    the invocation's size). ``close()`` fails the calls still pending; the broker stops the
    reply consumer with every other consumer. Fail-fast, deadlines and timeout reasons read nsqd's
    /stats through ``_liveness`` and ``_forensics`` (docs/protocol.md §3): a call pays one dict
    look-up for them, a URI seen for the first time one /stats read.
    """

    def __init__(
        self,
        broker: Broker,
        session_id: str,
        default_timeout: float,
        *,
        fail_fast: bool = True,
        nsqd_http: Sequence[str] = (),
    ) -> None:
        self.broker = broker
        self.session_id = session_id
        self.default_timeout = default_timeout
        self.reply_topic = _wire.reply_topic(session_id)
        self._loop = asyncio.get_running_loop()  # kept: get_running_loop costs a getpid() call
        self._call_ids = _wire.IdSequence()
        self._topics: dict[str, str] = {}  # uri -> topic, checked once
        self._pending: dict[str, _Pending] = {}
        self._deadlines = Deadlines(self._loop, self._pending, self._expire)
        self._publish = broker.publisher()  # the producer's own publish_nowait: no frame of the broker's
        self._publishing: dict[asyncio.Future[None], list[str]] = {}  # invocations awaiting nsqd's OK
        self._replies: Consumer | None = None
        self._replies_ready: asyncio.Future[None] | None = None
        # the reply topic is subscribed: a call can be published at once (a plain attribute, read per call)
        self.replies_ready = False
        stats = self.stats = StatsReader(lambda: broker.addresses, nsqd_http, broker.lookupd)
        self._liveness = Liveness(stats, fail_fast=fail_fast)
        self._served = self._liveness.served  # topic -> every subscriber understands deadlines
        self._autopsies = Autopsies(stats)  # timed-out calls whose reason is being found
        self.tracing = for_this_process()  # None without OpenTelemetry configured: no span work
        self._closed = False

    async def ensure_replies(self) -> None:
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
                    self._replies = await self.broker.subscribe(
                        self.reply_topic,
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
                self.replies_ready = True
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
        # FIN last: the caller's task is woken before the FIN is queued, so it resumes (and sends
        # its next call) before that write, not after it
        try:
            reply = _wire.decode_reply(message.body)
        except _wire.WireError as exc:
            message.finish()
            logger.warning("ignored a malformed reply on %s: %s", self.reply_topic, exc)
            self._autopsies.unreadable(str(exc))
            return
        pending = self._pending.get(reply.call_id)
        if pending is None:
            message.finish()
            if self._autopsies:
                self._autopsies.replied(reply.call_id, reply)
            logger.debug("reply to %s came after its call ended", reply.call_id)
            return
        if pending.trace is not None:
            pending.trace.replied(message.address)
        if pending.multi:
            pending.replies.append(reply)
        else:
            del self._pending[reply.call_id]
            if not pending.future.done():
                pending.future.set_result(reply)
            self._deadlines.trim(pending.timeout)
        message.finish()

    def _expire(self, call_id: str, deadline: float) -> None:
        pending = self._pending.pop(call_id, None)
        if pending is None or pending.future.done():
            return
        if pending.multi:
            pending.future.set_result(pending.replies)
        else:  # failed within about a second, with the reason found (_forensics)
            topic = self.topic_of(pending.uri)
            # every subscriber reads deadlines, and no procedure's budget waits on this call (a
            # nested call's margin for its procedure's own reply is at most 0.25 s)
            notice = bool(self._served.get(topic)) and not pending.nested
            self._autopsies.start(call_id, pending.uri, topic, pending.timeout, deadline, pending.future, notice)

    def topic_of(self, uri: str) -> str:
        """The URI's topic, checked once per URI: ~330 ns of the caller's ~10 µs a call (bench/caches.py)."""
        topic = self._topics.get(uri)
        if topic is None:
            try:
                topic = _wire.rpc_topic(uri)
            except ValueError as exc:
                raise invalid_argument(str(exc)) from None
            if len(self._topics) < 10_000:
                self._topics[uri] = topic
        return topic

    def invocation(
        self, payload: Any, timeout_ms: int, send_key: bool, traceparent: str | None = None
    ) -> tuple[str, bytes]:
        """A new call id and the invocation's bytes, checked: nothing is sent for a bad payload.

        The id always carries the deadline, ``timeout_ms`` from now (an almanet service reads it, a
        0.7.0 one copies the id unread); the ``timeout_ms`` key only when ``send_key`` (every
        subscriber understands it).
        """
        call_id = self._call_ids.next(int(time.time() * 1000) + timeout_ms)
        key = timeout_ms if send_key else None
        try:
            body = _wire.encode_invocation(call_id, self.session_id, payload, self.reply_topic, key, traceparent)
        except _wire.WireError as exc:
            raise invalid_argument(str(exc)) from None
        self.broker.check_size(body, "the payload")
        return call_id, body

    def start(
        self,
        uri: str,
        payload: Any,
        timeout: float | None,
        multi: bool = False,
        trace: CallTrace | None = None,
        deadline: bool | None = None,
    ) -> tuple[str, asyncio.Future[Any]] | None:
        """Register the call and publish it, with no await in between (wire order, one MPUB a tick).

        ``deadline``: every subscriber understands the deadline extension, so it is sent; None asks
        the liveness cache, and a URI it does not know yet is not sent (None is returned: ``await
        call``, which reads it). The session awaits the future itself: one coroutine per call.
        """
        topic = self.topic_of(uri)
        if deadline is None:
            deadline = self._served.get(topic)
            if deadline is None:
                return None
        timeout = self.default_timeout if timeout is None else timeout
        nested = _budget.get() is not None  # called from a procedure that has a deadline
        if nested:
            timeout = _within_budget(uri, timeout)
        tracing = self.tracing
        if tracing is None:
            call_id, body = self.invocation(payload, int(timeout * 1000), deadline)
            future: asyncio.Future[Any] = self._loop.create_future()
        else:
            call_id, body, future = self._traced(tracing, uri, topic, payload, timeout, multi, deadline)
        self._pending[call_id] = _Pending(future, uri, multi, timeout, trace, nested)
        self._deadlines.add(timeout, call_id)
        if trace is not None:
            trace.started(call_id, topic, self.reply_topic)
        published = self._publish(topic, body)
        if trace is not None:
            published.add_done_callback(trace.on_published)
        # One watcher per publish, not per call: a tick's invocations share one MPUB and its OK.
        calls = self._publishing.get(published)
        if calls is None:
            calls = self._publishing[published] = []
            published.add_done_callback(self._on_published)
        calls.append(call_id)
        return call_id, future

    def _traced(
        self, tracing: Tracing, uri: str, topic: str, payload: Any, timeout: float, multi: bool, deadline: bool
    ) -> tuple[str, bytes, asyncio.Future[Any]]:
        """``start``'s invocation with a CLIENT span, ended when the call's future is done."""
        span, traceparent = tracing.client(uri, topic, multi)
        if not self._liveness.traceable.get(topic):
            traceparent = None  # a subscriber (0.7.0, say) would refuse the key
        try:
            call_id, body = self.invocation(payload, int(timeout * 1000), deadline, traceparent)
        except BaseException as exc:
            span.record_exception(exc)
            span.end()
            raise
        span.set_attribute("messaging.message.id", call_id)
        future: asyncio.Future[Any] = self._loop.create_future()
        future.add_done_callback(functools.partial(tracing.finish_client, span))
        return call_id, body, future

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

    async def _wait(self, call_id: str, future: asyncio.Future[Any]) -> Any:
        try:
            return await future
        finally:
            if future.cancelled() or not future.done():  # the caller gave up: forget it now, tell the services
                self.forget(call_id)

    async def served(self, uri: str, *, refuse: bool = True) -> bool:
        """Not on the hot path: a topic the liveness cache does not know yet (one /stats read).

        Refuses (``timeout_error``, reason ``not_served``) a URI nothing serves; returns whether
        the deadline may be sent.
        """
        deadline = await self._liveness.check(uri, self.topic_of(uri), refuse=refuse)
        if self._closed:
            raise session_state_error("the session is not open: it left while the call was being checked")
        return deadline

    async def sends_deadline(self, uri: str) -> bool:
        """For ``delay_call``: whether its deadline may be sent; never refuses."""
        deadline = self._served.get(self.topic_of(uri))
        return deadline if deadline is not None else await self.served(uri, refuse=False)

    def delay_timeout_ms(self, delay: float) -> int:
        """The deadline of a delayed invocation: its delay, then the session's default timeout."""
        return int((delay + self.default_timeout) * 1000)

    def _sent(
        self, uri: str, payload: Any, timeout: float | None, multi: bool, trace: CallTrace | None, deadline: bool
    ) -> tuple[str, asyncio.Future[Any]]:
        started = self.start(uri, payload, timeout, multi, trace, deadline)
        assert started is not None  # with ``deadline`` given, a call is always sent
        return started

    def forget(self, call_id: str) -> None:
        """A call its caller stopped waiting for (cancelled): dropped now, not at its deadline,
        and the services told, so that an instance that has not started it never does."""
        if self._pending.pop(call_id, None) is not None:
            self._cancel([call_id])

    def _cancel(self, call_ids: list[str]) -> None:
        """Publish a cancel (docs/protocol.md, "Cancels"); a failure is logged, never raised."""
        try:
            published = self._publish(_wire.CANCEL_TOPIC, _wire.encode_cancel(self.session_id, call_ids))
        except Exception as exc:  # the producer is closing or has no nsqd: the deadline covers it
            logger.debug("could not send the cancel of %d calls: %s", len(call_ids), exc)
            return
        published.add_done_callback(_log_cancel_failure)

    async def call(
        self, uri: str, payload: Any, timeout: float | None, trace: CallTrace | None = None
    ) -> CallResult[Any]:
        """One reply, for a URI ``start`` could not send at once; the reply subscription must be
        ready (``ensure_replies``)."""
        deadline = await self.served(uri)
        reply: _wire.Reply = await self._wait(*self._sent(uri, payload, timeout, False, trace, deadline))
        if reply.is_error:
            if _wire.is_expired_notice(reply):  # before our own timer (clocks apart): a timeout
                raise expired_error(uri, timeout or self.default_timeout, reply)
            raise remote_error(reply.payload)
        return CallResult(reply.call_id, reply.payload)

    async def multicall(
        self, uri: str, payload: Any, timeout: float, trace: CallTrace | None = None
    ) -> list[CallResult[Any] | rpc_error]:
        deadline = self._served.get(self.topic_of(uri))
        if deadline is None:
            try:
                deadline = await self.served(uri)
            except timeout_error:
                return []  # nothing serves it: no reply can come
        replies: list[_wire.Reply] = await self._wait(*self._sent(uri, payload, timeout, True, trace, deadline))
        return [
            remote_error(r.payload) if r.is_error else CallResult(r.call_id, r.payload)
            for r in replies
            if not _wire.is_expired_notice(r)  # an instance that got it too late has no answer
        ]

    def close(self) -> None:
        """Fail every call still waiting; its reply, if it comes, has nobody to go to."""
        self._closed = True
        self._liveness.close()
        self._autopsies.close()
        abandoned = [call_id for call_id, pending in self._pending.items() if not pending.future.done()]
        if abandoned:  # the session leaves with calls in flight (Ctrl-C): nobody will read their replies
            self._cancel(abandoned)
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(session_state_error("the session left before the reply came"))
        self._pending.clear()
        self._deadlines.close()


def _log_cancel_failure(published: asyncio.Future[None]) -> None:
    error = None if published.cancelled() else published.exception()
    if error is not None:
        logger.debug("a cancel was not published: %s", error)


def _within_budget(uri: str, timeout: float) -> float:
    """A nested call gets at most what is left of the calling invocation's deadline."""
    timeout, capped = _deadline.cap_timeout(timeout, time.time())
    if capped and timeout <= 0:
        raise timeout_error(
            f"no time left to call {uri}: the calling procedure's deadline has passed",
            uri=uri,
            reason=timeout_error.BUDGET,
        )
    return timeout
