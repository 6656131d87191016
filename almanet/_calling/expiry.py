"""One timer for every pending call's deadline, for ``Caller``: no timer per call."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

__all__ = ["Deadlines"]


class Deadlines:
    """One timer for all pending calls, and no per-call timer.

    Calls made with the same timeout expire in the order they were made, so each timeout value
    keeps a FIFO of (deadline, call id); the timer is armed for the earliest head. Answered calls
    are dropped from the head as they complete, so the queues stay as short as the calls in flight.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, pending: dict[str, Any], expire: Callable[[str, float], None]
    ) -> None:
        self._loop = loop
        self._pending = pending
        self._queues: dict[float, collections.deque[tuple[float, str]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")
        self._expire = expire

    def add(self, timeout: float, call_id: str) -> None:
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = collections.deque()
        deadline = self._loop.time() + timeout
        queue.append((deadline, call_id))
        if deadline < self._armed_at:
            self._arm(deadline)

    def trim(self, timeout: float) -> None:
        """Forget answered calls at the head of ``timeout``'s queue."""
        queue = self._queues.get(timeout)
        pending = self._pending
        while queue and queue[0][1] not in pending:
            queue.popleft()

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = deadline
        self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = float("inf")
        now = self._loop.time()
        earliest = float("inf")
        for timeout, queue in list(self._queues.items()):
            while queue and queue[0][0] <= now:
                deadline, call_id = queue.popleft()
                self._expire(call_id, deadline)
            self.trim(timeout)
            if queue:
                earliest = min(earliest, queue[0][0])
            else:
                del self._queues[timeout]
        if earliest != float("inf"):
            self._arm(earliest)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._queues.clear()
