"""Deadlines: when an invocation is too old to start, and what is left of a caller's budget.

Pure (no I/O, no event loop): the service and the session apply these rules, the tests pin them.
Times are wall-clock seconds (``time.time()``) because an invocation's age is counted from the
NSQ message timestamp, which nsqd stamps with its own wall clock when it accepts the message.
"""

from __future__ import annotations

import contextvars
import math
from typing import Literal

from .errors import invalid_argument

__all__ = [
    "DEFAULT_STALE_AFTER",
    "REPLY_MARGIN",
    "budget",
    "cap_timeout",
    "check_stale_after",
    "expiry",
    "judge",
]

DEFAULT_STALE_AFTER = 60.0  # 0.7.0's default call timeout: its callers have given up by then

# The wall-clock deadline of the invocation the current task runs (None outside one, or when the
# invocation carried no deadline). Set by the service in each invocation's task; read by the
# session, so that a procedure's own calls get at most what is left of its caller's budget.
budget: contextvars.ContextVar[float | None] = contextvars.ContextVar("almanet_budget", default=None)

Why = Literal["deadline", "stale_after", ""]


def check_stale_after(value: float | None) -> float | None:
    """``stale_after`` as a service stores it: None (off) or a positive number of seconds."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise invalid_argument(f"stale_after must be a positive number of seconds, 0 or None (off), not {value!r}")
    return float(value)


def expiry(
    timestamp_ns: int, timeout_ms: int | None, stale_after: float | None, deadline: float | None = None
) -> tuple[float | None, Why]:
    """The wall-clock time after which an invocation must not start, and which rule set it.

    The caller's own deadline wins: the earlier of ``timeout_ms`` after nsqd accepted the message
    and the ``deadline`` its call id carries (its caller's clock), so that neither a message nsqd
    stamped late nor a caller's clock ahead of nsqd's makes a call start late. Without one (a
    0.7.0 caller), the procedure's ``stale_after`` does; with neither, it never expires.
    """
    sent = timestamp_ns / 1e9
    if timeout_ms is not None:
        relative = sent + timeout_ms / 1000
        return (relative if deadline is None or relative < deadline else deadline), "deadline"
    if deadline is not None:
        return deadline, "deadline"
    if stale_after is not None:
        return sent + stale_after, "stale_after"
    return None, ""


def judge(
    timestamp_ns: int, timeout_ms: int | None, stale_after: float | None, now: float, deadline: float | None = None
) -> tuple[float | None, str]:
    """(the budget to run it with, why it is stale): a service's verdict on one invocation.

    The budget is the caller's deadline (None without one); the reason is "" for a fresh
    invocation, else a phrase for the log line: its age and the rule it broke.
    """
    expires, rule = expiry(timestamp_ns, timeout_ms, stale_after, deadline)
    cap = expires if rule == "deadline" else None
    if expires is None or now <= expires:
        return cap, ""
    age = now - timestamp_ns / 1e9
    broke = (
        f"past its caller's deadline ({1000 * (now - expires):.0f} ms ago)"
        if rule == "deadline"
        else f"older than stale_after={stale_after:g}s"
    )
    return cap, f"it waited {age:.1f}s in nsqd, {broke}"


# What a nested call leaves its caller for the outer reply: a tenth of what is left, at most this.
REPLY_MARGIN = 0.25


def cap_timeout(timeout: float, now: float) -> tuple[float, bool]:
    """``timeout`` capped by the current task's budget: (timeout, whether the budget capped it).

    The budget is what is left of the invocation's deadline less a margin (a tenth of it, at most
    ``REPLY_MARGIN`` s) for the procedure's own reply: a nested call that used the whole of it
    would leave the outer reply always late.
    """
    deadline = budget.get()
    if deadline is None:
        return timeout, False
    left = deadline - now
    left -= min(REPLY_MARGIN, max(left, 0.0) / 10)
    if left < timeout:
        return left, True
    return timeout, False
