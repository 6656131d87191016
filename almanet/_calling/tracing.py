"""OpenTelemetry spans for calls, invocations, produce and consume, with the ``otel`` extra.

Nothing here imports OpenTelemetry: when a session joins it looks whether the process already
imported it (``opentelemetry-instrument`` does, and so does a program's own SDK set-up) and a
tracer provider is configured; otherwise ``for_this_process()`` is None and the hot paths pay one
``is not None``. Spans follow the messaging and RPC conventions (``messaging.system = "nsq"``,
``rpc.system = "almanet"``, ``rpc.method``); the trace context is W3C ``traceparent``, injected
and extracted through the configured propagator, so any propagator the program set works.

The invocation carries ``traceparent`` only when every subscriber of the topic announced that
it reads it (``almanet-trace/1`` in its nsqd user agent, read from ``/stats``): a 0.7.0 service
refuses any fifth key. A produced message carries nothing (its body is the user's, and NSQ has no
headers), so PRODUCER and CONSUMER spans are not linked across processes.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

__all__ = ["Tracing", "for_this_process"]

_SYSTEM = {"messaging.system": "nsq", "rpc.system": "almanet"}


class Tracing:
    """The tracer and propagator of a process with a configured OpenTelemetry SDK."""

    def __init__(self, trace: Any, propagate: Any, context: Any) -> None:
        self._trace = trace
        self._propagate = propagate
        self._context = context
        self._tracer = trace.get_tracer("almanet")
        self._kinds = trace.SpanKind
        self._error = trace.Status(trace.StatusCode.ERROR)

    # -- the caller's side ------------------------------------------------------------------------

    def client(self, uri: str, topic: str, multi: bool) -> tuple[Any, str | None]:
        """A CLIENT span for one call (a child of whatever span is current) and its traceparent."""
        span = self._tracer.start_span(
            uri,
            kind=self._kinds.CLIENT,
            attributes={
                **_SYSTEM,
                "rpc.method": uri,
                "messaging.destination.name": topic,
                "messaging.operation.type": "send",
                "almanet.multicall": multi,
            },
        )
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier, context=self._trace.set_span_in_context(span))
        return span, carrier.get("traceparent")

    def finish_client(self, span: Any, future: asyncio.Future[Any]) -> None:
        """The call's future is done: the reply (an error reply marks the span), a failure, or cancelled."""
        if future.cancelled():
            span.set_attribute("almanet.outcome", "cancelled")
        elif (error := future.exception()) is not None:
            span.record_exception(error)
            span.set_status(self._error)
            span.set_attribute("almanet.outcome", getattr(error, "reason", None) or type(error).__name__)
        else:
            reply = future.result()
            if getattr(reply, "is_error", False):
                span.set_status(self._error)
                span.set_attribute("almanet.outcome", "error")
            else:
                span.set_attribute("almanet.outcome", "ok")
        span.end()

    def producer(self, topic: str, future: asyncio.Future[Any]) -> None:
        """A PRODUCER span from now until nsqd has the message."""
        span = self._tracer.start_span(
            f"send {topic}",
            kind=self._kinds.PRODUCER,
            attributes={
                "messaging.system": "nsq",
                "messaging.destination.name": topic,
                "messaging.operation.type": "send",
            },
        )
        future.add_done_callback(lambda done: self._end_future_span(span, done))

    def consumer(self, topic: str, channel: str, message_id: str, attempts: int) -> None:
        """A CONSUMER span for one message handed to the program (a child of the current span)."""
        span = self._tracer.start_span(
            f"receive {topic}",
            kind=self._kinds.CONSUMER,
            attributes={
                "messaging.system": "nsq",
                "messaging.destination.name": topic,
                "messaging.consumer.group.name": channel,
                "messaging.operation.type": "receive",
                "messaging.message.id": message_id,
                "messaging.message.delivery_count": attempts,
            },
        )
        span.end()

    def _end_future_span(self, span: Any, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and (error := future.exception()) is not None:
            span.record_exception(error)
            span.set_status(self._error)
        span.end()

    # -- the service's side -----------------------------------------------------------------------

    async def serve(
        self,
        invocation: Coroutine[Any, Any, Any],
        uri: str,
        channel: str,
        call_id: str,
        traceparent: str | None,
        attempts: int,
    ) -> None:
        """Run one invocation inside a SERVER span, the child of the caller's CLIENT span when it sent one.

        The span is made current in the invocation's own task, so the procedure's own calls are
        its children, and error replies mark it (``error_reply``).
        """
        parent = self._propagate.extract({"traceparent": traceparent}) if traceparent else None
        span = self._tracer.start_span(
            uri,
            context=parent,
            kind=self._kinds.SERVER,
            attributes={
                **_SYSTEM,
                "rpc.method": uri,
                "messaging.destination.name": f"_rpc_.{uri}",
                "messaging.consumer.group.name": channel,
                "messaging.operation.type": "process",
                "messaging.message.id": call_id,
                "messaging.message.delivery_count": attempts,
            },
        )
        token = self._context.attach(self._trace.set_span_in_context(span))
        try:
            await invocation
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(self._error)
            raise
        finally:
            self._context.detach(token)
            span.end()

    def error_reply(self, name: object) -> None:
        """The running invocation answers with an error: its SERVER span says so."""
        span = self._trace.get_current_span()
        span.set_status(self._error)
        span.set_attribute("almanet.error", str(name))


def for_this_process() -> Tracing | None:
    """Tracing, when OpenTelemetry's API is installed and a tracer provider is configured; else None."""
    if "opentelemetry.trace" not in sys.modules:
        # nobody in this process set OpenTelemetry up (opentelemetry-instrument and an SDK set-up
        # both import it first): nothing is imported, nothing costs
        return None
    from opentelemetry import context, propagate, trace

    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None  # nothing would record: keep the hot paths free of span work
    return Tracing(trace, propagate, context)
