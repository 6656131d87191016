"""A registered procedure: its URI, channel, function, signature and discovery description.

Below both the registry (``service``) and the invocations that run it, so that neither imports
the other for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._wire import deadline as _deadline
from .._wire.validation import Signature

__all__ = ["DISCOVERY_VERSION", "Procedure"]

DISCOVERY_VERSION = 1


@dataclass(frozen=True, slots=True)
class Procedure:
    uri: str
    channel: str
    function: Callable[..., Awaitable[Any]]
    signature: Signature
    description: str
    tags: tuple[str, ...] = ()
    # an invocation without a deadline older than this (seconds since nsqd took it) is dropped
    stale_after: float | None = _deadline.DEFAULT_STALE_AFTER

    def describe(self, session_id: str) -> dict[str, Any]:
        """0.7.0's per-procedure discovery reply."""
        return {
            "client": session_id,
            "version": DISCOVERY_VERSION,
            "uri": self.uri,
            "channel": self.channel,
            "tags": list(self.tags),
            "description": self.description,
            "payload_json_schema": self.signature.payload.schema(),
            "return_json_schema": self.signature.result.schema(),
            "stale_after": self.stale_after,
        }
