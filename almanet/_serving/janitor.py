"""The reply janitor: reply topics whose caller has gone are deleted, not left in nsqd for good.

A reply published after its caller left (a call that was running when the caller was killed,
a late reply) re-creates ``_rpc_._reply_.<id>#ephemeral`` with no channel, and nsqd keeps such a
topic, with its messages, until it restarts. Each service instance reads ``/stats`` every
``interval`` seconds and deletes an ephemeral reply topic that holds messages and has had no
channel on two reads at least ``interval`` apart: a caller that is only reconnecting has its
channel back by then, so its replies are kept.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .._broker.stats import StatsReader
from .._calling.session import Almanet
from .._nsq.errors import NSQHTTPError
from .._nsq.names import EPHEMERAL_SUFFIX
from .._wire import protocol as _wire

__all__ = ["DEFAULT_JANITOR_INTERVAL", "ReplyJanitor"]

logger = logging.getLogger("almanet._service")

DEFAULT_JANITOR_INTERVAL = 2.0  # seconds: an orphaned reply topic goes within 2-3 intervals


def orphaned(snapshot_topics: dict[str, tuple[int, int, int]]) -> set[str]:
    """Names of ephemeral reply topics with messages and no channel: (subscribers, channels, depth)."""
    return {
        name
        for name, (subscribers, channels, depth) in snapshot_topics.items()
        if _wire.is_reply_topic(name) and name.endswith(EPHEMERAL_SUFFIX) and not subscribers and not channels and depth
    }


class ReplyJanitor:
    """One task per service instance: sweep, sleep ``interval``, again; ``close()`` ends it."""

    def __init__(self, session: Almanet, interval: float) -> None:
        broker = session.broker
        self._stats = StatsReader(lambda: broker.addresses, session.nsqd_http, broker.lookupd)
        self.interval = interval
        self._suspects: dict[str, float] = {}  # topic -> when first seen orphaned
        self.deleted = 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except NSQHTTPError as exc:
                logger.debug("reply janitor: %s", exc)
            except Exception:
                logger.exception("reply janitor: a sweep failed")
            await asyncio.sleep(self.interval)

    async def sweep(self) -> None:
        snapshot = await self._stats.snapshot(clients=False)
        now = time.monotonic()
        found = orphaned({n: (f.subscribers, len(f.channels), f.depth) for n, f in snapshot.topics.items()})
        self._suspects = {name: self._suspects.get(name, now) for name in found}
        for name, since in list(self._suspects.items()):
            if now - since < self.interval:
                continue
            for tcp in snapshot.topics[name].nsqd:
                try:
                    await self._stats.delete_topic(tcp, name)
                except NSQHTTPError as exc:
                    if exc.status != 404:  # another instance deleted it first
                        raise
            del self._suspects[name]
            self.deleted += 1
            logger.info("deleted the reply topic %s: its caller has gone, its replies unread", name)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
