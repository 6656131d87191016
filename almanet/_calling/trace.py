"""What one call did on the wire, for ``almanet call -v``: an optional, passive record.

The session fills a ``CallTrace`` only when one is passed as ``trace=`` to ``call``/``multicall``;
without it the call path pays one ``is None`` test. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["CallTrace"]


class CallTrace:
    __slots__ = ("call_id", "published", "replies", "reply_topic", "sent", "topic")

    def __init__(self) -> None:
        self.call_id: str | None = None
        self.topic: str | None = None
        self.reply_topic: str | None = None
        self.sent: float | None = None  # the invocation handed to the producer
        self.published: float | None = None  # nsqd's OK for it
        self.replies: list[tuple[float, str]] = []  # (arrival, nsqd address it came through)

    def started(self, call_id: str, topic: str, reply_topic: str) -> None:
        self.call_id, self.topic, self.reply_topic = call_id, topic, reply_topic
        self.sent = time.monotonic()

    def on_published(self, published: Any) -> None:
        """Done-callback of the publish future: the OK (not an error) is recorded."""
        if not published.cancelled() and published.exception() is None:
            self.published = time.monotonic()

    def replied(self, address: str) -> None:
        self.replies.append((time.monotonic(), address))
