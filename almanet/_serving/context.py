"""``current_call()``: which invocation the running procedure serves, read from a context variable.

The service sets one tuple per invocation in the invocation's own task (its context is a copy,
so nothing leaks between invocations); the ``CallContext`` is built only when a procedure asks,
which keeps the per-invocation cost to a tuple and a ``ContextVar.set``.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from .._nsq.consumer import Message
from .._wire import protocol as _wire
from .procedure import Procedure

__all__ = ["CallContext", "current_call", "enter"]

_State = tuple[Procedure, _wire.Invocation, Message, "float | None"]
_current: ContextVar[_State | None] = ContextVar("almanet_current_call", default=None)


@dataclass(frozen=True, slots=True)
class CallContext:
    """The invocation a procedure is serving (immutable)."""

    id: str
    """The call id: the invocation's ``id``, which the caller's ``CallResult.call_id`` repeats."""
    uri: str
    channel: str
    """The NSQ channel the invocation came on (``RPC#ephemeral`` by default)."""
    caller_id: str
    """The calling session's id."""
    deadline: float | None
    """The caller's deadline as a POSIX time; None when the caller sent none (a 0.7.0 caller)."""
    attempt: int
    """NSQ's delivery count: 1 the first time, more when nsqd delivered it again."""
    traceparent: str | None = None
    """The W3C trace context the caller sent, when it sent one."""


# Called by the service in the invocation's task, before the procedure runs, with
# (procedure, invocation, message, deadline): the ContextVar's own C method, no Python frame.
enter = _current.set


def current_call() -> CallContext | None:
    """The call the running procedure serves; None outside a procedure."""
    state = _current.get()
    if state is None:
        return None
    procedure, invocation, message, deadline = state
    return CallContext(
        id=invocation.id,
        uri=procedure.uri,
        channel=_wire.channel_name(procedure.channel),
        caller_id=invocation.caller_id,
        deadline=deadline,
        attempt=message.attempts,
        traceparent=getattr(invocation, "traceparent", None),
    )
