"""Services: a registry of procedures served by a session, with discovery and a clean drain.

Each procedure is one NSQ subscription (``_rpc_.<uri>`` on an ephemeral channel, ``RPC`` by
default), with ``max_concurrency`` invocations in flight; nsqd spreads invocations over the
instances subscribed to the same channel. What a started service holds, and how its invocations
are run, answered and finished, is ``_invocations.Running``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .._calling.contract import AbstractProcedure, In, Out
from .._calling.options import SessionOptions, check_session_options
from .._calling.session import Almanet
from .._nsq.consumer import Message
from .._wire import deadline as _deadline
from .._wire import protocol as _wire
from .._wire.checks import check_count, check_timeout
from .._wire.errors import invalid_argument, rpc_error, session_state_error
from .._wire.validation import Signature, inspect_procedure
from .invocations import Running
from .janitor import DEFAULT_JANITOR_INTERVAL, ReplyJanitor
from .observer import InvocationObserver
from .procedure import DISCOVERY_VERSION, Procedure, ServiceOptions, check_same, error_classes
from .process import serve_configured
from .topics import TopicDeclarations

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DISCOVERY_VERSION", "Procedure", "Service", "ServiceOptions"]  # Procedure re-exported: almanet.Procedure

# what a service announces in its user agent: it reads the deadline and the trace context
_ADVERTISED = f"{_wire.DEADLINE_AGENT} {_wire.TRACE_AGENT}"

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class Service(TopicDeclarations):
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
        self.abstracts: dict[str, AbstractProcedure[Any, Any]] = {}
        self.topics = {}  # produces()/consumes(): for discovery and contracts only
        self._running: Running | None = None
        # told of every invocation when set before start() (metrics, ``observer.py``); None: no cost
        self.observer: InvocationObserver | None = None
        # seconds between two reads of /stats for reply topics whose caller has gone (janitor.py);
        # None: no janitor. Set before start().
        self.reply_janitor_interval: float | None = DEFAULT_JANITOR_INTERVAL
        self._janitor: ReplyJanitor | None = None

    # -- registry --------------------------------------------------------------------------------

    @overload
    def procedure(self, function: F, /) -> F: ...

    @overload
    def procedure(
        self,
        function: None = None,
        /,
        *,
        name: str | None = None,
        channel: str | None = None,
        description: str | None = None,
        tags: tuple[str, ...] = (),
        stale_after: float | EllipsisType | None = ...,
        raises: Iterable[type[rpc_error]] = (),
    ) -> Callable[[F], F]: ...

    def procedure(
        self,
        function: F | None = None,
        /,
        *,
        name: str | None = None,
        channel: str | None = None,
        description: str | None = None,
        tags: tuple[str, ...] = (),
        stale_after: float | EllipsisType | None = ...,
        raises: Iterable[type[rpc_error]] = (),
    ) -> F | Callable[[F], F]:
        """Register ``async def f(session, payload) -> result`` as ``<prepath>.<name>``.

        ``stale_after`` (seconds; 0 or None: never) overrides the service's for this procedure:
        an invocation that carries no caller deadline and waited longer than that in nsqd is
        finished unrun, since its caller (0.7.0's default timeout is 60 s) has given up.
        ``raises`` lists the ``rpc_error`` subclasses it may raise: discovery describes them.
        The decorated function is returned as it was, its type included.
        """
        stale = self.stale_after if stale_after is ... else _deadline.check_stale_after(stale_after)
        errors = error_classes(raises)

        def register(function: F) -> F:
            uri = self._uri_of(name or function.__name__, channel, function)
            self._add(uri, channel, function, inspect_procedure(function), description, tags, stale, errors)
            return function

        return register(function) if function is not None else register

    @overload
    def abstract_procedure(self, function: Callable[[In], Awaitable[Out]], /) -> AbstractProcedure[In, Out]: ...

    @overload
    def abstract_procedure(
        self,
        function: None = None,
        /,
        *,
        name: str | None = None,
        channel: str | None = None,
        description: str | None = None,
        tags: tuple[str, ...] = (),
        stale_after: float | EllipsisType | None = ...,
        raises: Iterable[type[rpc_error]] = (),
    ) -> Callable[[Callable[[In], Awaitable[Out]]], AbstractProcedure[In, Out]]: ...

    def abstract_procedure(
        self,
        function: Callable[..., Awaitable[Any]] | None = None,
        /,
        *,
        name: str | None = None,
        channel: str | None = None,
        description: str | None = None,
        tags: tuple[str, ...] = (),
        stale_after: float | EllipsisType | None = ...,
        raises: Iterable[type[rpc_error]] = (),
    ) -> Any:
        """Declare ``async def f(payload: In) -> Out`` as ``<prepath>.<name>`` without its code.

        Callers import the declaring module and call the returned ``AbstractProcedure``; the
        service's code registers with ``@f.implements`` (``(session, payload)`` or ``(payload)``),
        in a module of its own: ``almanet serve impl_module:service`` serves it. Until then the
        service refuses to start. Keywords as ``procedure``'s.
        """
        stale = self.stale_after if stale_after is ... else _deadline.check_stale_after(stale_after)
        errors = error_classes(raises)

        def declare(function: Callable[..., Awaitable[Any]]) -> AbstractProcedure[Any, Any]:
            uri = self._uri_of(name or function.__name__, channel, function)
            if uri in self.abstracts:
                raise invalid_argument(f"procedure {uri!r} is declared twice")
            signature = inspect_procedure(function)

            def implement(abstract: AbstractProcedure[Any, Any], code: Callable[..., Awaitable[Any]]) -> None:
                own = inspect_procedure(code)
                check_same(abstract, own, code)
                checks = Signature(own.takes_session, True, signature.payload, signature.result)
                self._add(uri, channel, code, checks, abstract.description, tags, stale, errors)

            text = description or (function.__doc__ or "").strip()
            abstract = AbstractProcedure[Any, Any](uri, channel or self.channel, signature, text, implement)
            self.abstracts[uri] = abstract
            return abstract

        return declare(function) if function is not None else declare

    def unimplemented(self) -> list[AbstractProcedure[Any, Any]]:
        """The abstract procedures declared here that nothing implements (yet)."""
        return [a for a in self.abstracts.values() if a.implementation is None]

    def _uri_of(self, local: str, channel: str | None, function: Callable[..., Any]) -> str:
        uri = f"{self.prepath}.{local}" if self.prepath else local
        try:
            _wire.check_uri(uri)
            _wire.channel_name(channel or self.channel)
        except ValueError as exc:
            raise invalid_argument(f"cannot register {function.__qualname__}: {exc}") from None
        return uri

    def _add(
        self,
        uri: str,
        channel: str | None,
        function: Callable[..., Awaitable[Any]],
        signature: Signature,
        description: str | None,
        tags: tuple[str, ...],
        stale: float | None,
        errors: tuple[type[rpc_error], ...],
    ) -> None:
        if uri in self.procedures:
            raise invalid_argument(f"procedure {uri!r} is registered twice")
        if self._running is not None:
            raise session_state_error("register procedures before the service starts")
        self.procedures[uri] = Procedure(
            uri=uri,
            channel=channel or self.channel,
            function=function,
            signature=signature,
            description=description or (function.__doc__ or "").strip(),
            tags=tuple(tags) or self.tags,
            stale_after=stale,
            errors=errors,
        )

    # -- running ---------------------------------------------------------------------------------

    @property
    def running(self) -> Running | None:
        """What the started service holds (its subscriptions), None when stopped: health and metrics read it."""
        return self._running

    @property
    def session(self) -> Almanet:
        if self._running is None:
            raise session_state_error("the service is not running")
        return self._running.session

    async def start(self, addresses: tuple[str, ...] | None = None, **session_options: Unpack[SessionOptions]) -> None:
        """Join, then subscribe every procedure and the discovery procedures.

        ``addresses`` (when not None) replace the service's own nsqd addresses; ``session_options``
        go to the session (``almanet.new_session``'s keywords), ``lookupd`` included. An abstract
        procedure without its implementation is refused here, before anything is subscribed.
        """
        if self._running is not None:
            raise session_state_error("the service is already running")
        check_session_options(session_options, "Service.start()")
        missing = self.unimplemented()
        if missing:
            raise session_state_error(
                f"abstract procedures without an implementation: {', '.join(a.uri for a in missing)};"
                " import the module that implements them (`almanet serve impl_module:service`,"
                " with impl_module the module of the `@...implements` functions)"
            )
        options: SessionOptions = {}
        if self.lookupd:
            options["lookupd"] = self.lookupd
        if self.lookupd_interval is not None:
            options["lookupd_interval"] = self.lookupd_interval
        options.update(session_options)
        session = Almanet(*(self.addresses if addresses is None else addresses), **options)
        await session.join()
        running = self._running = Running(session, asyncio.get_running_loop(), observer=self.observer)
        try:
            # cancels first, so that a backlog of them is read before the invocations they name
            running.consumers.append(
                await session.broker.subscribe(
                    _wire.CANCEL_TOPIC,
                    _wire.channel_name(session.id),
                    running.on_cancel,
                    max_in_flight=200,
                    low_latency=True,
                    advertise=_ADVERTISED,
                )
            )
            for procedure in self.procedures.values():
                running.consumers.append(
                    await session.broker.subscribe(
                        _wire.rpc_topic(procedure.uri),
                        _wire.channel_name(procedure.channel),
                        functools.partial(running.on_invocation, procedure),  # no frame of its own
                        max_in_flight=self.max_concurrency,
                        low_latency=True,
                        advertise=_ADVERTISED,
                    )
                )
            await self._start_discovery(running)
        except BaseException:
            running.open = False
            self._running = None
            await session.leave()
            raise
        running.keep_alive()
        # in the background: an nsqd whose HTTP port does not answer must not hold the start up
        running.limit_task = asyncio.ensure_future(running.learn_reply_limit())
        if self.reply_janitor_interval is not None:
            self._janitor = ReplyJanitor(session, self.reply_janitor_interval)
        logger.info(
            "serving %s on %s (session %s)", ", ".join(self.procedures), ", ".join(session.addresses), session.id
        )

    async def _start_discovery(self, running: Running) -> None:
        session = running.session
        client_reply = self._client_info(running)
        running.consumers.append(
            await session.broker.subscribe(
                _wire.rpc_topic(_wire.CLIENT_DISCOVERY_URI),
                _wire.channel_name(session.id),
                lambda m: running.answer(m, {**client_reply, "stale": dict(running.stale)}),
                max_in_flight=16,
                low_latency=True,
                advertise=_ADVERTISED,
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
                    _answerer(running, description),
                    max_in_flight=16,
                    low_latency=True,
                    advertise=_ADVERTISED,
                )
            )

    def _client_info(self, running: Running) -> dict[str, Any]:
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
            **({"topics": [t.describe() for t in self.topics.values()]} if self.topics else {}),
        }

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
        if running.limit_task is not None:
            running.limit_task.cancel()
        janitor, self._janitor = self._janitor, None
        if janitor is not None:
            await janitor.close()
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
            running.open = False
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
        **session_options: Unpack[SessionOptions],
    ) -> None:
        """Run until SIGINT or SIGTERM, then drain and leave. A second signal stops at once (exit 130).

        This is a program's entry point (``if __name__ == "__main__": service.serve()``) and does
        what ``almanet serve`` does: the nsqd, TLS, AUTH and timeouts come from the environment
        and almanet.toml (``config`` names the file), which win over the addresses in the code;
        ``addresses`` and ``session_options`` given here win over both. A bad configuration or a
        broker that is down is one line on stderr and exit code 2 or 4, as with the CLI. When the
        program has not configured logging, it logs to stderr at INFO, so that one sees it serve.
        """
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        check_session_options(session_options, "Service.serve()")
        serve_configured([self], addresses, config, dict(session_options))


def _answerer(running: Running, payload: Any) -> Callable[[Message], None]:
    """The message handler that answers a discovery invocation with ``payload``."""

    def answer(message: Message) -> None:
        running.answer(message, payload)

    return answer
