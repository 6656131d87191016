"""The one rule for the numbers a user passes: timeouts, delays and counts, checked before use.

Pure, so every entry point (session, subscription, consumed message, service) calls the same
check and says the same thing. A NaN compares false with everything and would wait forever, a
string would fail deep inside asyncio, and a bool is an int to Python but never meant as one.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

from .errors import invalid_argument

__all__ = ["MAX_DELAY", "MAX_TIMEOUT", "check_count", "check_delay", "check_keywords", "check_timeout"]

# nsqd's default --max-req-timeout: the longest DPUB delay and REQ delay it accepts.
MAX_DELAY = 3600.0
# The longest timeout: a call, multicall or drain waiting over a day is a typo (1e20, ms for s);
# refused here, it would otherwise overflow asyncio's timer or the deadline sent in milliseconds.
MAX_TIMEOUT = 86_400.0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_timeout(value: object, name: str = "timeout", *, zero: bool = False) -> float:
    """A positive (or, with ``zero``, non-negative) number of seconds up to ``MAX_TIMEOUT``, as a float."""
    if _is_number(value) and (0 < value <= MAX_TIMEOUT or (zero and value == 0)):  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    raise invalid_argument(timeout_message(name, value, zero=zero))


def timeout_message(name: str, value: object, *, zero: bool = False) -> str:
    """What is wrong with a timeout, the bound included (the CLI says the same for ``--timeout``)."""
    kind = "non-negative" if zero else "positive"
    return f"{name} must be a {kind} number of seconds, at most {MAX_TIMEOUT:g} (one day), not {value!r}"


def check_delay(value: object, name: str = "delay") -> float:
    """0 to ``MAX_DELAY`` seconds, as a float: outside that range nsqd drops the connection."""
    if _is_number(value) and 0 <= value <= MAX_DELAY:  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    raise invalid_argument(
        f"{name} must be between 0 and {MAX_DELAY:g} seconds (nsqd's --max-req-timeout), not {value!r}"
    )


def check_count(value: object, name: str, minimum: int = 1) -> int:
    """A whole number, at least ``minimum``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    raise invalid_argument(f"{name} must be a whole number of at least {minimum}, not {value!r}")


def check_keywords(given: Iterable[str], allowed: Collection[str], where: str) -> None:
    """Refuse an unknown keyword with a ``TypeError`` that suggests the nearest known one.

    Options are keywords passed along (``new_session(**options)``): Python's own error for a typo
    comes from deep inside, names no alternative, and a type checker may not see the call.
    """
    for key in given:
        if key not in allowed:
            near = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise TypeError(f"{where} got an unknown option {key!r}{hint} (options: {', '.join(sorted(allowed))})")
