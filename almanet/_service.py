"""Services: a registry of procedures served by a session, with discovery and a clean drain.

Each procedure is one NSQ subscription (``_rpc_.<uri>`` on an ephemeral channel, ``RPC`` by
default), with ``max_concurrency`` invocations in flight; nsqd spreads invocations over the
instances subscribed to the same channel. Invocations run as tasks; the reply is published on the
invocation's ``reply_topic`` and only then is the invocation finished (FIN).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any, TypeVar

from . import _deadline, _wire
from ._checks import check_count, check_timeout
from ._errors import InternalError, invalid_argument, rpc_error, session_state_error
from ._nsq.consumer import Consumer, Message
from ._session import Almanet
from ._validation import Signature, inspect_procedure

__all__ = ["DISCOVERY_VERSION", "Procedure", "Service"]

logger = logging.getLogger(__name__)

DISCOVERY_VERSION = 1
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

if sys.version_info >= (3, 12):

    def _start_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task whose first step runs now, in the read callback, as a task: it has its own context
        copy, is ``current_task()``, and ``asyncio.timeout()`` works in it. A procedure that does not
        wait replies without a single loop iteration in between."""
        return asyncio.Task(coro, loop=loop, eager_start=True)

else:

    def _start_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return loop.create_task(coro)


@dataclass(frozen=True, slots=True)
class Procedure:
    uri: str
    channel: str
    function: Callable[..., Awaitable[Any]]
    signature: Signature
    description: str
    tags: tuple[str, ...] = ()
    # an invocation without a deadline older than this (seconds since nsqd took it) is dropped
    stale_after: float | None = _deadline.DEFAULT_STALE_AFTER

    def describe(self, session_id: str) -> dict[str, Any]:
        """0.7.0's per-procedure discovery reply."""
        return {
            "client": session_id,
            "version": DISCOVERY_VERSION,
            "uri": self.uri,
            "channel": self.channel,
            "tags": list(self.tags),
            "description": self.description,
            "payload_json_schema": self.signature.payload.schema(),
            "return_json_schema": self.signature.result.schema(),
            "stale_after": self.stale_after,
        }


@dataclass
class _Running:
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
    stale: dict[str, int] = field(default_factory=dict)  # uri -> invocations dropped unrun


class Service:
    """Procedures under one ``prepath``; ``serve()`` runs them until SIGINT/SIGTERM."""

    def __init__(
        self,
        *addresses: str,
        prepath: str = "",
        channel: str = _wire.DEFAULT_CHANNEL,
        max_concurrency: int = 200,
        drain_timeout: float = 30.0,
        tags: tuple[str, ...] = (),
        lookupd: Sequence[str] | str = (),
        lookupd_interval: float | None = None,
        stale_after: float | None = _deadline.DEFAULT_STALE_AFTER,
    ) -> None:
        self.stale_after = _deadline.check_stale_after(stale_after)
        if prepath:
            try:
                _wire.check_uri(prepath)
            except ValueError as exc:
                raise invalid_argument(f"prepath: {exc}") from None
        check_count(max_concurrency, "max_concurrency")
        check_timeout(drain_timeout, "drain_timeout", zero=True)
        self.addresses = addresses
        # nsqlookupd to find (more) nsqd at, for the session start() makes; start()'s own
        # ``lookupd``/``lookupd_interval`` options win over these
        self.lookupd: tuple[str, ...] = (lookupd,) if isinstance(lookupd, str) else tuple(lookupd)
        self.lookupd_interval = lookupd_interval
        self.prepath = prepath
        self.channel = channel
        self.max_concurrency = max_concurrency
        self.drain_timeout = drain_timeout
        self.tags = tags
        self.procedures: dict[str, Procedure] = {}
        self._running: _Running | None = None

    # -- registry --------------------------------------------------------------------------------

    def procedure(
        self,
        function: F | None = None,
        *,
        name: str | None = None,
        channel: str | None = None,
        description: str | None = None,
        tags: tuple[str, ...] = (),
        stale_after: float | EllipsisType | None = ...,
    ) -> Any:
        """Register ``async def f(session, payload) -> result`` as ``<prepath>.<name>``.

        ``stale_after`` (seconds; 0 or None: never) overrides the service's for this procedure:
        an invocation that carries no caller deadline and waited longer than that in nsqd is
        finished unrun, since its caller (0.7.0's default timeout is 60 s) has given up.
        """
        stale = self.stale_after if stale_after is ... else _deadline.check_stale_after(stale_after)

        def register(function: F) -> F:
            local = name or function.__name__
            uri = f"{self.prepath}.{local}" if self.prepath else local
            try:
                _wire.check_uri(uri)
                _wire.channel_name(channel or self.channel)
            except ValueError as exc:
                raise invalid_argument(f"cannot register {function.__qualname__}: {exc}") from None
            if uri in self.procedures:
                raise invalid_argument(f"procedure {uri!r} is registered twice")
            if self._running is not None:
                raise session_state_error("register procedures before the service starts")
            self.procedures[uri] = Procedure(
                uri=uri,
                channel=channel or self.channel,
                function=function,
                signature=inspect_procedure(function),
                description=description or (function.__doc__ or "").strip(),
                tags=tuple(tags) or self.tags,
                stale_after=stale,
            )
            return function

        return register(function) if function is not None else register

    # -- running ---------------------------------------------------------------------------------

    @property
    def session(self) -> Almanet:
        if self._running is None:
            raise session_state_error("the service is not running")
        return self._running.session

    async def start(self, addresses: tuple[str, ...] | None = None, **session_options: Any) -> None:
        """Join, then subscribe every procedure and the discovery procedures.

        ``addresses`` (when not None) replace the service's own nsqd addresses; ``session_options``
        go to the session (``almanet.new_session``'s keywords), ``lookupd`` included.
        """
        if self._running is not None:
            raise session_state_error("the service is already running")
        options: dict[str, Any] = {}
        if self.lookupd:
            options["lookupd"] = self.lookupd
        if self.lookupd_interval is not None:
            options["lookupd_interval"] = self.lookupd_interval
        options.update(session_options)
        session = Almanet(*(self.addresses if addresses is None else addresses), **options)
        await session.join()
        running = self._running = _Running(session, asyncio.get_running_loop())
        try:
            for procedure in self.procedures.values():
                running.consumers.append(
                    await session.broker.subscribe(
                        _wire.rpc_topic(procedure.uri),
                        _wire.channel_name(procedure.channel),
                        lambda m, p=procedure: self._on_invocation(p, m),
                        max_in_flight=self.max_concurrency,
                        low_latency=True,
                        advertise=_wire.DEADLINE_AGENT,
                    )
                )
            await self._start_discovery(running)
        except BaseException:
            self._running = None
            await session.leave()
            raise
        self._keep_alive(running)
        logger.info(
            "serving %s on %s (session %s)", ", ".join(self.procedures), ", ".join(session.addresses), session.id
        )

    def _keep_alive(self, running: _Running) -> None:
        """TOUCH invocations still running, so that nsqd does not deliver them again meanwhile.

        nsqd redelivers a message not finished within its msg-timeout (60 s by default): without
        this, a long procedure would run twice. One timer serves every invocation in flight.
        """
        for message in running.tasks.values():
            message.touch()
        interval = min((c.msg_timeout for c in running.consumers), default=60.0) / 3
        running.toucher = asyncio.get_running_loop().call_later(interval, self._keep_alive, running)

    async def _start_discovery(self, running: _Running) -> None:
        session = running.session
        client_reply = self._client_info(running)
        running.consumers.append(
            await session.broker.subscribe(
                _wire.rpc_topic(_wire.CLIENT_DISCOVERY_URI),
                _wire.channel_name(session.id),
                lambda m: self._answer(m, {**client_reply, "stale": dict(running.stale)}),
                max_in_flight=16,
                low_latency=True,
                advertise=_wire.DEADLINE_AGENT,
            )
        )
        for procedure in self.procedures.values():
            try:
                topic = _wire.rpc_topic(_wire.describe_uri(procedure.uri, procedure.channel))
            except ValueError:
                logger.debug("%s: its describe topic does not fit NSQ's 64 characters", procedure.uri)
                continue
            description = procedure.describe(session.id)
            running.consumers.append(
                await session.broker.subscribe(
                    topic,
                    _wire.channel_name(procedure.channel),
                    lambda m, d=description: self._answer(m, d),
                    max_in_flight=16,
                    low_latency=True,
                    advertise=_wire.DEADLINE_AGENT,
                )
            )

    def _client_info(self, running: _Running) -> dict[str, Any]:
        session = running.session
        return {
            "client": session.id,
            "version": DISCOVERY_VERSION,
            "routes": [f"{p.uri}/{p.channel}" for p in self.procedures.values()],
            # almanet extensions (0.7.0 callers ignore extra keys inside the payload)
            "prepath": self.prepath,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": running.started_at,
            "procedures": [p.describe(session.id) for p in self.procedures.values()],
        }

    def _answer(self, message: Message, payload: Any) -> None:
        try:
            invocation = _wire.decode_invocation(message.body)
        except _wire.WireError as exc:
            logger.warning("dropped a malformed discovery invocation: %s", exc)
            message.finish()
            return
        self._reply(message, invocation, False, payload)

    def _on_invocation(self, procedure: Procedure, message: Message) -> None:
        running = self._running
        if running is None:
            message.requeue()
            return
        try:
            invocation = _wire.decode_invocation(message.body, running.reply_topics)
        except _wire.WireError as exc:
            logger.warning("dropped a malformed invocation of %s: %s", procedure.uri, exc)
            message.finish()
            return
        expires, stale = _deadline.judge(message.timestamp, invocation.timeout_ms, procedure.stale_after, time.time())
        if stale:  # its caller has given up: finished unrun and unanswered, counted, logged once
            message.finish()
            running.stale[procedure.uri] = running.stale.get(procedure.uri, 0) + 1
            logger.warning("dropped a stale invocation of %s unrun: %s (call %s)", procedure.uri, stale, invocation.id)
            return
        # A task each, with its own copy of the context: procedures may use asyncio.timeout(),
        # current_task() and context variables as in any other task.
        task = _start_task(running.loop, self._invoke(running, procedure, invocation, message, expires))
        if not task.done():  # a procedure that did not wait has replied already (eager start, 3.12+)
            running.tasks[task] = message
            task.add_done_callback(lambda t: running.tasks.pop(t, None))

    async def _invoke(
        self,
        running: _Running,
        procedure: Procedure,
        invocation: _wire.Invocation,
        message: Message,
        deadline: float | None = None,
    ) -> None:
        if deadline is not None:  # this task's own context: the procedure's calls inherit the rest
            _deadline.budget.set(deadline)
        signature = procedure.signature
        try:
            args: tuple[Any, ...] = ()
            if signature.takes_payload:
                payload = signature.payload.validate(invocation.payload, "payload")
                args = (running.session, payload) if signature.takes_session else (payload,)
            result = await procedure.function(*args)
            result = signature.result.to_json(signature.result.validate(result, "result", quote=False))
            self._reply(message, invocation, False, result)
        except rpc_error as error:
            self._reply(message, invocation, True, _wire.error_payload(error.name, error.args))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the drain gave up on it: run it elsewhere
                message.requeue()
                raise
            # raised by the procedure itself (say, an awaited future was cancelled): a failure
            # of this invocation, answered like any other, never requeued to loop forever
            self._log_failure(procedure, invocation)
            self._internal_error(message, invocation)
        except Exception:
            self._log_failure(procedure, invocation)
            self._internal_error(message, invocation)

    @staticmethod
    def _log_failure(procedure: Procedure, invocation: _wire.Invocation) -> None:
        """One line that says where (file:line of the innermost frame) and what, then the traceback."""
        error = sys.exc_info()[1]
        frames = traceback.extract_tb(error.__traceback__) if error is not None else []
        where = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
        what = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
        logger.exception("procedure %s failed on invocation %s%s: %s", procedure.uri, invocation.id, where, what)

    def _internal_error(self, message: Message, invocation: _wire.Invocation) -> None:
        payload = _wire.error_payload(InternalError.__name__, [f"internal error in the service (call {invocation.id})"])
        self._reply(message, invocation, True, payload)

    def _reply(self, message: Message, invocation: _wire.Invocation, is_error: bool, payload: Any) -> None:
        running = self._running
        try:
            body = _wire.encode_reply(invocation.id, is_error, payload)
        except _wire.WireError:
            logger.exception("the reply to %s is not JSON-serializable", invocation.id)
            self._internal_error(message, invocation)
            return
        if running is None:
            message.finish()
            return
        # Back to the nsqd the invocation came from: a caller that knows only that nsqd reads its
        # replies there, and a reply sent elsewhere would land in a topic nobody reads.
        published = running.session.broker.publish_nowait(invocation.reply_topic, body, prefer=message.address)
        waiting = running.replies.get(published)
        if waiting is None:
            waiting = running.replies[published] = []
            published.add_done_callback(lambda future: self._replies_sent(running, future))
        waiting.append((message, invocation.id))

    @staticmethod
    def _replies_sent(running: _Running, published: asyncio.Future[None]) -> None:
        """nsqd has the replies (or refused them): finish their invocations either way."""
        sent = running.replies.pop(published, [])
        for message, _ in sent:
            message.finish()
        error = None if published.cancelled() else published.exception()
        if error is not None:
            ids = ", ".join(call_id for _, call_id in sent[:3])
            logger.error("could not publish %d replies (calls %s...): %s", len(sent), ids, error)

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Drain: take no new invocations, let those in flight finish (bounded), then leave."""
        if drain_timeout is not None:
            check_timeout(drain_timeout, "drain_timeout", zero=True)
        timeout = self.drain_timeout if drain_timeout is None else drain_timeout
        running = self._running
        if running is None:
            return
        if running.toucher is not None:
            running.toucher.cancel()
        try:
            await asyncio.gather(*(c.stop_receiving() for c in running.consumers), return_exceptions=True)
            if running.tasks:
                logger.info("draining %d invocations in flight", len(running.tasks))
                _, pending = await asyncio.wait(set(running.tasks), timeout=timeout)
                for task in pending:
                    task.cancel()
                if pending:
                    logger.warning("%d invocations did not finish within %ss; requeued", len(pending), timeout)
                    await asyncio.gather(*pending, return_exceptions=True)
            # An invocation is finished (FIN) only once nsqd has acknowledged its reply: leaving before
            # that would close the subscription with the invocation in flight, and nsqd would hand it
            # to another instance after msg_timeout, running it twice.
            if running.replies:
                await asyncio.wait(set(running.replies), timeout=running.session.broker.options.command_timeout)
        except asyncio.CancelledError:
            # stopped at once (a second signal): what still runs goes back to nsqd (REQ) before we leave
            tasks = list(running.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            self._running = None
            await running.session.leave()

    async def run(self, stop: asyncio.Event, addresses: tuple[str, ...] | None = None) -> None:
        """Serve until ``stop`` is set, then drain."""
        await self.start(addresses)
        try:
            await stop.wait()
        finally:
            await self.stop()

    def serve(
        self,
        addresses: tuple[str, ...] | None = None,
        *,
        config: str | os.PathLike[str] | None = None,
        **session_options: Any,
    ) -> None:
        """Run until SIGINT or SIGTERM, then drain and leave. A second signal stops at once (exit 130).

        This is a program's entry point (``if __name__ == "__main__": service.serve()``) and does
        what ``almanet serve`` does: the nsqd, TLS, AUTH and timeouts come from the environment
        and almanet.toml (``config`` names the file), which win over the addresses in the code;
        ``addresses`` and ``session_options`` given here win over both. A bad configuration or a
        broker that is down is one line on stderr and exit code 2 or 4, as with the CLI. When the
        program has not configured logging, it logs to stderr at INFO, so that one sees it serve.
        """
        from ._serving import serve_configured

        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        serve_configured([self], addresses, config, session_options)
