"""Reconnect delays: exponential with full jitter, capped. Pure: the random source is passed in.

This is the delay between attempts to reach an nsqd again; it is not message-processing backoff
(which is a per-message requeue delay, chosen by the consumer's user).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ReconnectPolicy"]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    base: float = 0.1
    cap: float = 10.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before reconnect attempt number ``attempt`` (1, 2, ...)."""
        ceiling = min(self.cap, self.base * (2 ** min(max(attempt - 1, 0), 30)))
        return float(ceiling * rand())
