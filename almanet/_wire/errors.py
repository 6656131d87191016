"""The exceptions almanet raises, all in one tree.

Every error a user can see is one of these; errors of the
layers below (``OSError``, ``ssl``, orjson, pydantic, the NSQ client's own tree) are
translated where they cross into almanet, so ``except almanet.almanet_error`` is enough::

    almanet_error                     base of everything almanet raises on purpose
    ├── config_error                  almanet.toml / environment is wrong (names file and key)
    ├── invalid_argument              a bad URI, topic, channel or payload, caught before sending
    ├── session_state_error           using a session that is not open, or reopening a closed one
    ├── broker_error                  nsqd is unreachable, refused a command, or went away
    ├── rpc_error                     an error raised by a remote procedure, carried over the wire
    │   ├── ValidationError           the payload (or result) did not match the annotations
    │   ├── InternalError             the procedure failed unexpectedly (details stay in its log)
    │   └── <your subclasses>         matched by class name on the calling side
    └── timeout_error                 no reply in time, or nothing serves the URI (also a builtin
                                      TimeoutError); ``reason`` says which: not served, queued, ...
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "InternalError",
    "ValidationError",
    "almanet_error",
    "broker_error",
    "config_error",
    "invalid_argument",
    "reply_too_large",
    "rpc_error",
    "session_state_error",
    "timeout_error",
]


class almanet_error(Exception):
    """Base of every exception almanet raises on purpose."""


class config_error(almanet_error):
    """The configuration (file or environment) cannot be used as it is."""


class invalid_argument(almanet_error, ValueError):
    """Input rejected before anything was sent: nothing happened on the broker."""


class session_state_error(almanet_error, RuntimeError):
    """The session is not in a state that allows the operation."""


class broker_error(almanet_error, ConnectionError):
    """nsqd could not be reached, refused a command, or closed the connection."""


class rpc_error(almanet_error):
    """An error raised by a remote procedure and carried back to the caller.

    Subclass it to define your own errors: the class name travels over the wire, so a caller
    that defines a class of the same name catches it as that class.
    """

    name: str

    def __init__(self, *args: Any, name: str | None = None) -> None:
        super().__init__(*args)
        self.name = name or type(self).__name__

    def __str__(self) -> str:
        detail = ", ".join(str(a) for a in self.args)
        return f"{self.name}: {detail}" if detail else self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, args={self.args!r})"


class ValidationError(rpc_error):
    """The payload or the result did not match the procedure's annotations."""


class InternalError(rpc_error):
    """The procedure raised something unexpected; its service logged the traceback."""


class reply_too_large(rpc_error):
    """A procedure's reply was larger than nsqd accepts: the service answered this instead."""


class timeout_error(almanet_error, TimeoutError):
    """A call got no reply in time; ``reason`` says what the broker and the caller saw.

    Still a ``TimeoutError`` (what 0.7.0 raises, also for a procedure nobody serves). ``reason``
    is one of the constants below; ``facts`` holds the numbers behind it (depth, instances,
    in-flight count, what could not be read), ``uri`` the procedure called.
    """

    NOT_SERVED = "not_served"  # no subscriber on any nsqd: nothing serves the URI
    QUEUED = "queued"  # invocations wait in nsqd for a free instance
    RUNNING = "running"  # delivered and still being handled
    REPLY_LOST = "reply_lost"  # handled, but the reply was lost or came late
    BUDGET = "budget"  # the calling procedure's own deadline left no time for it
    EXPIRED = "expired"  # it reached the service past its deadline: dropped unrun, the service said so
    UNKNOWN = "unknown"  # the facts could not be read (``facts["unread"]`` says which)

    def __init__(self, message: str, *, uri: str, reason: str, facts: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.uri = uri
        self.reason = reason
        self.facts: dict[str, Any] = dict(facts or {})
