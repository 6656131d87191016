"""A running service's invocations: each run as a task, answered, and finished (FIN) once replied.

The reply is published on the invocation's ``reply_topic``, back to the nsqd the invocation came
from, and only once nsqd has it is the invocation finished: a drain that waits for those OKs
never leaves an invocation in flight for nsqd to hand to another instance.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .._calling.session import Almanet
from .._calling.tracing import Tracing, for_this_process
from .._nsq.consumer import Consumer, Message
from .._wire import deadline as _deadline
from .._wire import protocol as _wire
from .._wire.deadline import budget as _budget
from .._wire.errors import InternalError, reply_too_large, rpc_error
from .context import enter as _enter_call
from .observer import InvocationObserver, outcome_of
from .procedure import Procedure

__all__ = ["Running"]

logger = logging.getLogger("almanet._service")  # the service's logger: what it logs is the service's

# An invocation dropped this soon (s) after its caller's deadline gets an "expired" notice: the
# caller spends about a second after its deadline finding out why (_calling/forensics.GRACE).
NOTICE_WITHIN = 1.0

if sys.version_info >= (3, 12):

    def _task_starter(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]:
        """Tasks whose first step runs now, in the read callback, as a task: each has its own context
        copy, is ``current_task()``, and ``asyncio.timeout()`` works in it. A procedure that does not
        wait replies without a single loop iteration in between. A partial over the C ``Task``:
        no Python frame per invocation."""
        return functools.partial(asyncio.Task, loop=loop, eager_start=True)

else:

    def _task_starter(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]:
        return loop.create_task


@dataclass
class Running:
    """What a started service holds: its session, subscriptions, invocations and replies in flight."""

    session: Almanet
    loop: asyncio.AbstractEventLoop
    consumers: list[Consumer] = field(default_factory=list)
    # invocations running, with their NSQ message (TOUCHed while they run)
    tasks: dict[asyncio.Task[None], Message] = field(default_factory=dict)
    # replies published and not yet acknowledged by nsqd, by publish (one future serves all the
    # replies of a tick): their invocations are finished (FIN) when the OK comes
    replies: dict[asyncio.Future[None], list[tuple[Message, str]]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    # reply topics already checked (bench/caches.py: ~300 ns an invocation saved)
    reply_topics: set[str] = field(default_factory=set)
    toucher: asyncio.TimerHandle | None = None
    limit_task: asyncio.Future[None] | None = None  # learn_reply_limit, started with the service
    stale: dict[str, int] = field(default_factory=dict)  # uri -> invocations dropped unrun
    # call id -> until when to remember it: calls their callers gave up on (the cancel topic)
    cancelled: dict[str, float] = field(default_factory=dict)
    # False once the service has stopped (or failed to start): no new invocation, no reply sent
    open: bool = True
    start_task: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]] = field(init=False, repr=False)
    # metrics (``observer.py``): None unless the service is served with --http; one check per invocation
    observer: InvocationObserver | None = None

    publish: Callable[..., asyncio.Future[None]] = field(init=False, repr=False)
    tracing: Tracing | None = field(init=False, repr=False)  # None without OpenTelemetry configured

    # a reply over this many bytes is answered with reply_too_large instead: nsqd would refuse it
    # and drop the service's connection, and the caller would wait its whole timeout
    max_reply_size: int = field(init=False)

    def __post_init__(self) -> None:
        self.max_reply_size = self.session.broker.max_message_size
        self.start_task = _task_starter(self.loop)
        self.publish = self.session.broker.publisher()  # the producer's own: no frame of the broker's
        self.tracing = for_this_process()

    async def learn_reply_limit(self) -> None:
        """Lower ``max_reply_size`` to the smallest ``--max-msg-size`` of the nsqd, when readable."""
        try:
            learnt = await self.session.nsqd_max_message_size()
        except Exception as exc:  # the HTTP API is optional: the configured limit stays
            logger.debug(
                "nsqd's --max-msg-size could not be read (%s); replies are held to %d bytes", exc, self.max_reply_size
            )
            return
        if learnt is not None and learnt < self.max_reply_size:
            self.max_reply_size = learnt

    def keep_alive(self) -> None:
        """TOUCH invocations still running, so that nsqd does not deliver them again meanwhile.

        nsqd redelivers a message not finished within its msg-timeout (60 s by default): without
        this, a long procedure would run twice. One timer serves every invocation in flight.
        """
        for message in self.tasks.values():
            message.touch()
        interval = min((c.msg_timeout for c in self.consumers), default=60.0) / 3
        self.toucher = self.loop.call_later(interval, self.keep_alive)

    def answer(self, message: Message, payload: Any) -> None:
        """A discovery invocation: its reply is ``payload``, whatever it asked."""
        try:
            invocation = _wire.decode_invocation(message.body)
        except _wire.WireError as exc:
            logger.warning("dropped a malformed discovery invocation: %s", exc)
            message.finish()
            return
        self._reply(message, invocation, False, payload)

    def on_cancel(self, message: Message) -> None:
        """Remember calls their callers gave up on, until their deadline (60 s without one)."""
        message.finish()
        try:
            call_ids = _wire.decode_cancel(message.body)
        except _wire.WireError as exc:
            logger.warning("ignored a malformed cancel: %s", exc)
            return
        now = time.time()
        cancelled = self.cancelled
        if len(cancelled) > 10_000:  # forget the expired ones; a flood beyond that, the oldest
            for call_id, until in list(cancelled.items()):
                if until < now or len(cancelled) > 50_000:
                    del cancelled[call_id]
        sent = message.timestamp / 1e9
        for call_id in call_ids:
            deadline = _wire.deadline_in_id(call_id, sent)
            until = (sent + _deadline.DEFAULT_STALE_AFTER if deadline is None else deadline) + 1
            if until > now:
                cancelled[call_id] = until

    def on_invocation(self, procedure: Procedure, message: Message) -> None:
        if not self.open:
            message.requeue()
            return
        try:
            invocation = _wire.decode_invocation(message.body, self.reply_topics)
        except _wire.WireError as exc:
            logger.warning("dropped a malformed invocation of %s: %s", procedure.uri, exc)
            message.finish()
            if self.observer is not None:
                self.observer.dropped(procedure, "malformed")
            return
        if self.cancelled and invocation.id in self.cancelled:  # its caller gave up before we took it
            message.finish()
            self.stale[procedure.uri] = self.stale.get(procedure.uri, 0) + 1
            logger.info(
                "dropped a cancelled invocation of %s unrun (call %s)",
                procedure.uri,
                invocation.id,
                extra={"invocation_id": invocation.id, "uri": procedure.uri},
            )
            if self.observer is not None:
                self.observer.dropped(procedure, "cancelled")
            return
        timeout_ms = invocation.timeout_ms
        deadline = _wire.deadline_in_id(invocation.id, message.timestamp / 1e9)
        if deadline is None and timeout_ms is None and procedure.stale_after is None:
            expires, stale = None, ""  # nothing can make it stale: no clock read
        else:
            expires, stale = _deadline.judge(
                message.timestamp, timeout_ms, procedure.stale_after, time.time(), deadline
            )
        if stale:  # its caller has given up: finished unrun, counted, logged once
            self._drop_stale(procedure, invocation, message, expires, stale)
            return
        # A task each, with its own copy of the context: procedures may use asyncio.timeout(),
        # current_task() and context variables as in any other task.
        observer = self.observer
        if observer is None:
            invoke: Coroutine[Any, Any, Any] = self._invoke(procedure, invocation, message, expires)
        else:
            invoke = self._observed(observer, procedure, invocation, message, expires)
        if self.tracing is not None:  # a SERVER span around it, the caller's span its parent
            invoke = self.tracing.serve(
                invoke, procedure.uri, procedure.channel, invocation.id, invocation.traceparent, message.attempts
            )
        task = self.start_task(invoke)
        if not task.done():  # a procedure that did not wait has replied already (eager start, 3.12+)
            tasks = self.tasks
            tasks[task] = message
            task.add_done_callback(tasks.pop)  # only this removes it: dict.pop, no Python frame

    def _drop_stale(
        self, procedure: Procedure, invocation: _wire.Invocation, message: Message, expires: float | None, stale: str
    ) -> None:
        """Finished unrun, counted, logged once: its caller has given up (or will have, by its start)."""
        self.stale[procedure.uri] = self.stale.get(procedure.uri, 0) + 1
        if expires is not None and time.time() - expires <= NOTICE_WITHIN:
            # past the caller's own deadline, just: it is still finding out why it got no
            # reply, so say it (the reply finishes the message); later, or for a stale_after
            # drop (a 0.7.0 caller), nobody listens and a reply would only litter nsqd
            notice = f"{procedure.uri}: dropped unrun by the service, {stale}"
            self._reply(message, invocation, True, _wire.error_payload(_wire.EXPIRED_NOTICE, [notice]))
        else:
            message.finish()
        logger.warning(
            "dropped a stale invocation of %s unrun: %s (call %s)",
            procedure.uri,
            stale,
            invocation.id,
            extra={"invocation_id": invocation.id, "uri": procedure.uri},
        )
        if self.observer is not None:
            self.observer.dropped(procedure, "expired" if "deadline" in stale else "stale")

    def _started_late(
        self, procedure: Procedure, invocation: _wire.Invocation, message: Message, deadline: float
    ) -> bool:
        """Judged in time, its task began past the deadline (a busy loop between the two): dropped
        unrun all the same, so that no procedure starts after its caller gave up."""
        now = time.time()
        if now <= deadline:
            return False
        stale = f"its task began {1000 * (now - deadline):.0f} ms past its caller's deadline"
        self._drop_stale(procedure, invocation, message, deadline, stale)
        return True

    async def _observed(
        self,
        observer: InvocationObserver,
        procedure: Procedure,
        invocation: _wire.Invocation,
        message: Message,
        deadline: float | None,
    ) -> None:
        """``_invoke`` told to the observer: only a service served with metrics runs this frame."""
        if deadline is not None and self._started_late(procedure, invocation, message, deadline):
            return
        started = observer.started(procedure)
        try:
            error = await self._invoke(procedure, invocation, message, deadline)
        except BaseException:
            observer.finished(procedure, started, "requeued", None)
            raise
        observer.finished(procedure, started, outcome_of(error), error)

    async def _invoke(
        self,
        procedure: Procedure,
        invocation: _wire.Invocation,
        message: Message,
        deadline: float | None = None,
    ) -> str | None:
        """Run it and reply; returns the name of the error it was answered with (None: a result)."""
        if deadline is not None:  # this task's own context: the procedure's calls inherit the rest
            if self._started_late(procedure, invocation, message, deadline):
                return None
            _budget.set(deadline)
        _enter_call((procedure, invocation, message, deadline))  # current_call()
        signature = procedure.signature
        try:
            args: tuple[Any, ...] = ()
            if signature.takes_payload:
                payload = signature.payload.validate(invocation.payload, "payload")
                args = (self.session, payload) if signature.takes_session else (payload,)
            result = await procedure.function(*args)
            result = signature.result.to_json(signature.result.validate(result, "result", quote=False))
            self._reply(message, invocation, False, result)
        except rpc_error as error:
            self._reply(message, invocation, True, _wire.error_payload(error.name, error.args, error.fields))
            return error.name
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the drain gave up on it: run it elsewhere
                message.requeue()
                raise
            # raised by the procedure itself (say, an awaited future was cancelled): a failure
            # of this invocation, answered like any other, never requeued to loop forever
            _log_failure(procedure, invocation)
            self._internal_error(message, invocation)
            return InternalError.__name__
        except Exception:
            _log_failure(procedure, invocation)
            self._internal_error(message, invocation)
            return InternalError.__name__
        return None

    def _internal_error(self, message: Message, invocation: _wire.Invocation) -> None:
        payload = _wire.error_payload(InternalError.__name__, [f"internal error in the service (call {invocation.id})"])
        self._reply(message, invocation, True, payload)

    def _reply(self, message: Message, invocation: _wire.Invocation, is_error: bool, payload: Any) -> None:
        if is_error and self.tracing is not None:
            self.tracing.error_reply(payload.get("name") if isinstance(payload, dict) else payload)
        try:
            body = _wire.encode_reply(invocation.id, is_error, payload)
        except _wire.WireError:
            logger.exception("the reply to %s is not JSON-serializable", invocation.id)
            self._internal_error(message, invocation)
            return
        if len(body) > self.max_reply_size:
            payload = _wire.error_payload(
                reply_too_large.__name__,
                [
                    f"the reply to call {invocation.id} is {len(body)} bytes; nsqd accepts at most"
                    f" {self.max_reply_size} (return less, or raise nsqd's --max-msg-size and max_message_size)"
                ],
            )
            logger.error("%s", payload["message"][0], extra={"invocation_id": invocation.id})
            body = _wire.encode_reply(invocation.id, True, payload)
        if not self.open or (self.cancelled and invocation.id in self.cancelled):
            message.finish()  # stopped, or its caller has gone: a reply would stay in nsqd unread
            return
        # Back to the nsqd the invocation came from: a caller that knows only that nsqd reads its
        # replies there, and a reply sent elsewhere would land in a topic nobody reads.
        published = self.publish(invocation.reply_topic, body, prefer=message.address)
        waiting = self.replies.get(published)
        if waiting is None:
            waiting = self.replies[published] = []
            published.add_done_callback(self._replies_sent)
        waiting.append((message, invocation.id))

    def _replies_sent(self, published: asyncio.Future[None]) -> None:
        """nsqd has the replies (or refused them): finish their invocations either way."""
        sent = self.replies.pop(published, [])
        for message, _ in sent:
            message.finish()
        error = None if published.cancelled() else published.exception()
        if error is not None:
            ids = ", ".join(call_id for _, call_id in sent[:3])
            logger.error("could not publish %d replies (calls %s...): %s", len(sent), ids, error)


def _log_failure(procedure: Procedure, invocation: _wire.Invocation) -> None:
    """One line that says where (file:line of the innermost frame) and what, then the traceback."""
    error = sys.exc_info()[1]
    frames = traceback.extract_tb(error.__traceback__) if error is not None else []
    where = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    what = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
    logger.exception(
        "procedure %s failed on invocation %s%s: %s",
        procedure.uri,
        invocation.id,
        where,
        what,
        extra={"invocation_id": invocation.id, "uri": procedure.uri},
    )
