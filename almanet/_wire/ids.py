"""Call ids that carry their caller's deadline: made by the caller, read by the service.

Pure: the caller gives its deadline, the service the nsqd timestamp to read it near.
"""

from __future__ import annotations

import itertools
import os
import re

__all__ = ["IdSequence", "deadline_in_id"]

# A call id that carries the caller's deadline (docs/protocol.md, "Deadlines"): the shape of a
# UUIDv8 in hex, ``TTTTTTTT RRRR 8 a1d 8 RRRRRR CCCCCCCCC`` — T the caller's wall-clock deadline in
# ms since the epoch, modulo 2**32 (a cycle of 49.7 days, read as the deadline of the cycle nearest
# nsqd's timestamp), R random per session, C a counter; "8a1d8" (version 8, the mark, variant)
# tells it from 0.7.0's uuid4 ids, whose 13th digit is always 4. A 0.7.0 service copies the id
# into its reply unread, so every caller can send its deadline this way. Absolute, unlike
# ``timeout_ms``: an invocation nsqd stamps late (a frozen nsqd that takes a publish only when
# it thaws, a publish sent again elsewhere) keeps its caller's deadline.
_DEADLINE_ID = re.compile(r"[0-9a-f]{12}8a1d8[0-9a-f]{15}")
_ID_CYCLE_MS = 1 << 32


class IdSequence:
    """Call ids: per session random bits and a counter, as 32 lowercase hex digits.

    Unique within the session by the counter, across sessions by the random bits, and free of the
    ``getrandom`` system call that a random id per call costs (a tenth of a caller's CPU at load).
    """

    __slots__ = ("_counter", "_head", "_tail")

    def __init__(self) -> None:
        random = os.urandom(5).hex()
        self._head, self._tail = random[:4], random[4:]
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def next(self, deadline_ms: int | None = None) -> str:
        """The next id, carrying ``deadline_ms`` (POSIX ms; None: an id that carries no deadline)."""
        count = next(self._counter) & 0xFFFFFFFFF
        if deadline_ms is None:  # a uuid4's version digit: never read as a deadline
            return f"00000000{self._head}4a1d8{self._tail}{count:09x}"
        return f"{deadline_ms % _ID_CYCLE_MS:08x}{self._head}8a1d8{self._tail}{count:09x}"


def deadline_in_id(call_id: str, near: float) -> float | None:
    """The deadline (POSIX seconds) an almanet caller put in its call id, the one of its cycle
    nearest ``near`` (nsqd's timestamp of the message, seconds); None for any other id."""
    if _DEADLINE_ID.fullmatch(call_id) is None:
        return None
    near_ms = int(near * 1000)
    ms = near_ms - (near_ms - int(call_id[:8], 16)) % _ID_CYCLE_MS  # at most near, in its cycle
    if near_ms - ms > _ID_CYCLE_MS // 2:
        ms += _ID_CYCLE_MS
    return ms / 1000
