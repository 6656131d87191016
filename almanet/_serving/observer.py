"""What a started service tells an observer (metrics) about its invocations: a small, optional hook.

The service holds ``None`` by default and checks it with one ``is not None`` per invocation, so
a service without metrics does no work for them. ``metrics.Metrics`` is the one implementation;
it is imported only when ``--http`` (``serve.http``) is given.
"""

from __future__ import annotations

from typing import Protocol

from .procedure import Procedure

__all__ = ["OUTCOMES", "InvocationObserver", "outcome_of"]

# how an invocation ended: answered, answered with the procedure's error, answered with
# InternalError (the procedure crashed), or given back to nsqd by a drain that gave up on it
OUTCOMES = ("ok", "error", "internal_error", "requeued")


def outcome_of(error: str | None) -> str:
    """The outcome of an invocation that ended with ``error`` (None: it returned a result)."""
    if error is None:
        return "ok"
    return "internal_error" if error == "InternalError" else "error"


class InvocationObserver(Protocol):
    """Called by ``invocations.Running`` at three points of an invocation's life."""

    def started(self, procedure: Procedure) -> float:
        """An invocation begins to run; returns what ``finished`` is given back (a clock reading)."""
        ...

    def finished(self, procedure: Procedure, started: float, outcome: str, error: str | None) -> None:
        """It ended (``outcome`` one of ``OUTCOMES``; ``error`` the error's name, if any)."""
        ...

    def dropped(self, procedure: Procedure, reason: str) -> None:
        """It was finished unrun: ``expired`` (past its caller's deadline), ``cancelled``, ``stale``,
        or ``malformed``."""
        ...
