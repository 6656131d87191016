"""Fail fast: is anything subscribed to a procedure's topic, and does all of it know deadlines?

The caller's hot path reads one dict, ``served`` (topic -> every subscriber understands the
deadline extension); only a topic missing from it costs a ``/stats`` read, and while the dict is
not empty one background task re-reads every ``interval`` seconds, so a service that went away
is noticed without any call paying for it. A topic is refused (``timeout_error`` with reason
``not_served``) only when every nsqd the session knows was read and none has a subscriber on any
channel of it: 0.7.0's plain ``RPC`` channel counts like our ``RPC#ephemeral``. When something
could not be read, the call goes ahead as before: fail-fast never refuses on a guess.
"""

from __future__ import annotations

import asyncio
import difflib
import logging

from .._broker.stats import Snapshot, StatsReader
from .._wire import protocol as _wire
from .._wire.errors import timeout_error

__all__ = ["DEFAULT_REFRESH_INTERVAL", "Liveness", "not_served_error"]

logger = logging.getLogger(__name__)

DEFAULT_REFRESH_INTERVAL = 5.0
CHECK_TIMEOUT = 1.0
REFRESH_TOPICS = 64  # topics re-read per round, one small /stats?topic= each


def not_served_error(uri: str, snapshot: Snapshot, waited: float | None = None) -> timeout_error:
    """The error for a URI nothing serves, with the closest live URI as a hint."""
    topic = _wire.RPC_PREFIX + uri
    topics = snapshot.topics.items()
    live = [t[len(_wire.RPC_PREFIX) :] for t, f in topics if f.served and not _wire.is_internal_topic(t)]
    # close as a whole and in its last word: "net.a.gone" is not a typo of "net.a.slow"
    last = uri.rsplit(".", 1)[-1]
    close = [
        c
        for c in difflib.get_close_matches(uri, live, n=3, cutoff=0.6)
        if difflib.SequenceMatcher(None, last, c.rsplit(".", 1)[-1]).ratio() >= 0.6
    ][:1]
    facts = snapshot.facts(topic)
    where = ", ".join(snapshot.read)
    text = f"nothing serves {uri} on nsqd {where}"
    if waited is not None:
        text = f"no reply from {uri} within {waited:g}s: " + text
    if facts.depth:
        waiting = "1 invocation waits" if facts.depth == 1 else f"{facts.depth} invocations wait"
        text += f" ({waiting} there; `almanet purge {uri}` drops them)"
    if close:
        text += f"; did you mean {close[0]}?"
    return timeout_error(
        text,
        uri=uri,
        reason=timeout_error.NOT_SERVED,
        facts={"nsqd": snapshot.read, "depth": facts.depth, "suggestion": close[0] if close else None},
    )


class Liveness:
    """The caller's view of which procedure topics are served, kept fresh in the background."""

    def __init__(self, reader: StatsReader, *, fail_fast: bool, interval: float = DEFAULT_REFRESH_INTERVAL) -> None:
        self.reader = reader
        self.fail_fast = fail_fast
        self.interval = interval
        self.served: dict[str, bool] = {}
        self.traceable: dict[str, bool] = {}  # topic -> every subscriber reads a trace context
        self._refresher: asyncio.Task[None] | None = None
        self._told_unread = False

    async def check(self, uri: str, topic: str, *, refuse: bool = True) -> bool:
        """For a topic not in ``served``: whether the deadline may be sent; refuses an unserved URI."""
        try:  # bounded: a first call must not wait long for an HTTP API that does not answer
            async with asyncio.timeout(CHECK_TIMEOUT):
                snapshot = await self.reader.snapshot(topic)
        except TimeoutError:
            snapshot = Snapshot({}, [], [f"nsqd /stats did not answer within {CHECK_TIMEOUT:g}s"], 0.0)
        facts = snapshot.topics.get(topic)
        if facts is not None and facts.served:
            self._remember(topic, facts.capable, facts.traceable)
            return facts.capable
        if snapshot.complete:
            if self.fail_fast and refuse:
                raise not_served_error(uri, await self.reader.snapshot(clients=False))
            self._remember(topic, False)  # queued for a service that starts later, plain
            return False
        if not self._told_unread:
            self._told_unread = True
            logger.info(
                "cannot tell whether %s is served, so calls go out without fail-fast or deadline: %s",
                uri,
                "; ".join(snapshot.unread) or "no nsqd known",
            )
        self._remember(topic, False)
        return False

    def _remember(self, topic: str, capable: bool, traceable: bool = False) -> None:
        if len(self.served) < 10_000:
            self.served[topic] = capable
            self.traceable[topic] = traceable
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        """Re-read the known topics (one filtered /stats each: a whole /stats with every client of a
        busy nsqd is large), oldest first when there are more than a round takes."""
        while self.served:
            await asyncio.sleep(self.interval)
            topics = list(self.served)[:REFRESH_TOPICS]
            results = await asyncio.gather(*(self.reader.snapshot(t) for t in topics), return_exceptions=True)
            for topic, snapshot in zip(topics, results, strict=True):
                if isinstance(snapshot, BaseException):  # never let the task die on a surprise
                    logger.error("reading nsqd /stats of %s for fail-fast failed: %r", topic, snapshot)
                    continue
                facts = snapshot.topics.get(topic)
                if facts is not None and facts.served:
                    self.served.pop(topic, None)  # to the end: the next round starts with others
                    self.served[topic] = facts.capable
                    self.traceable[topic] = facts.traceable
                elif snapshot.complete:
                    # gone (or never there): the next call asks again, and fails fast if still so
                    self.served.pop(topic, None)
                    self.traceable.pop(topic, None)

    def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
