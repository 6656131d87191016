"""Why a call timed out, from facts: nsqd ``/stats`` of its topic and the caller's own records.

Runs once a call's deadline has passed, for at most ``GRACE`` seconds more, and turns the bare
timeout into a ``timeout_error`` whose ``reason`` is one of: nothing serves the URI; queued
(invocations wait, for how many instances); delivered and still running; handled but the reply
was lost or came late; unknown (and what could not be read). The numbers are the topic's, summed
over every nsqd read: with other callers on the same procedure they describe the procedure's state
rather than this one invocation, which is as close as the broker lets anyone look.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

from .._broker.stats import StatsReader
from .._wire.errors import timeout_error
from .._wire.protocol import Reply, is_expired_notice, parse_error_payload
from .liveness import not_served_error

__all__ = ["GRACE", "Autopsies", "CallRecord", "expired_error", "explain"]

logger = logging.getLogger(__name__)

GRACE = 1.0  # seconds a timed-out call may take to say why
# An invocation seen in flight may be one its service is dropping as stale right now (it reached
# the service past the deadline): a service that reads deadlines sends that notice as soon as
# the message arrives, so "running" is said only after this long without it (within GRACE).
NOTICE_WAIT = 0.5


class CallRecord:
    """What the caller saw of one call: filled in by the reply handler while forensics runs."""

    __slots__ = ("deadline", "expired", "late_reply_at", "notice_expected", "reply_came", "started")

    def __init__(self, started: float, deadline: float, notice_expected: bool = False) -> None:
        self.started = started  # time.monotonic() of the call
        self.deadline = deadline
        # every subscriber reads deadlines: one that gets the call too late says so
        self.notice_expected = notice_expected
        self.late_reply_at: float | None = None
        self.expired: Reply | None = None  # the service's notice: it dropped the call unrun
        self.reply_came = asyncio.Event()

    def replied(self, reply: Reply | None = None) -> None:
        if reply is not None and is_expired_notice(reply):
            self.expired = reply
        else:
            self.late_reply_at = time.monotonic()
        self.reply_came.set()


def expired_error(uri: str, timeout: float, notice: Reply) -> timeout_error:
    """The timeout of a call a service dropped unrun because it reached it past the deadline."""
    _, args = parse_error_payload(notice.payload)
    why = str(args[0]) if args else "dropped unrun by the service"
    return timeout_error(
        f"no reply from {uri} within {timeout:g}s: expired, {why.removeprefix(uri + ': ')}"
        " (raise the timeout, or start more instances if it waited behind others)",
        uri=uri,
        reason=timeout_error.EXPIRED,
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


async def explain(
    uri: str,
    topic: str,
    timeout: float,
    reader: StatsReader | None,
    record: CallRecord,
    unreadable_replies: Callable[[float], list[str]],
) -> timeout_error:
    """The ``timeout_error`` for a call of ``uri`` that got no reply within ``timeout``."""
    head = f"no reply from {uri} within {timeout:g}s"
    end = record.deadline + GRACE

    def late() -> timeout_error:
        lateness = max(0.0, (record.late_reply_at or time.monotonic()) - record.deadline)
        return timeout_error(
            f"{head}: the reply came {lateness:.2f}s after the deadline (the procedure, or the way back, is too"
            " slow for this timeout)",
            uri=uri,
            reason=timeout_error.REPLY_LOST,
            facts={"late_by": round(lateness, 3)},
        )

    async def answered(wait: float) -> timeout_error | None:
        """What a reply that came (now, or within ``wait`` seconds) says: expired, or late."""
        if wait > 0 and not record.reply_came.is_set():
            try:
                async with asyncio.timeout(wait):
                    await record.reply_came.wait()
            except TimeoutError:
                pass
        if record.expired is not None:
            return expired_error(uri, timeout, record.expired)
        if record.late_reply_at is not None:
            return late()
        return None

    if reader is None:
        return timeout_error(
            f"{head}; why is unknown: the session reads no nsqd HTTP API", uri=uri, reason=timeout_error.UNKNOWN
        )
    try:
        async with asyncio.timeout(max(0.05, end - time.monotonic())):
            snapshot = await reader.snapshot(topic)
    except TimeoutError:
        return timeout_error(
            f"{head}; why is unknown: nsqd /stats did not answer within {GRACE:g}s",
            uri=uri,
            reason=timeout_error.UNKNOWN,
            facts={"unread": ["nsqd /stats: no answer in time"]},
        )
    settled = await answered(0)
    if settled is not None:
        return settled
    facts = snapshot.facts(topic)
    unread = snapshot.unread
    known: dict[str, object] = {"instances": facts.subscribers, "depth": facts.depth, "in_flight": facts.in_flight}
    known["nsqd"] = snapshot.read
    if unread:
        known["unread"] = unread
    if not facts.served:
        if snapshot.complete:
            return not_served_error(uri, snapshot, waited=timeout)
        seen = f"no subscriber on nsqd {', '.join(snapshot.read)}, but " if snapshot.read else ""
        return timeout_error(
            f"{head}; why is unknown: {seen}" + "; ".join(unread),
            uri=uri,
            reason=timeout_error.UNKNOWN,
            facts=known,
        )
    instances = _plural(facts.subscribers, "instance")
    if facts.depth:
        waits = "waits" if facts.depth == 1 else "wait"
        return timeout_error(
            f"{head}: queued, {_plural(facts.depth, 'invocation')} {waits} in nsqd for {instances}"
            f" ({facts.in_flight} in flight); start more instances or raise max_concurrency",
            uri=uri,
            reason=timeout_error.QUEUED,
            facts=known,
        )
    if facts.in_flight:
        if record.notice_expected:
            settled = await answered(min(NOTICE_WAIT, end - time.monotonic()))
            if settled is not None:
                return settled
        known["redeliveries"] = facts.requeued
        return timeout_error(
            f"{head}: delivered and still running ({facts.in_flight} in flight on {instances},"
            f" {_plural(facts.requeued, 'redelivery').replace('redeliverys', 'redeliveries')} so far);"
            " the procedure takes longer than the timeout",
            uri=uri,
            reason=timeout_error.RUNNING,
            facts=known,
        )
    bad = unreadable_replies(record.started)
    if bad:
        known["unreadable_replies"] = bad
        return timeout_error(
            f"{head}: handled, but the reply could not be read ({bad[-1]})",
            uri=uri,
            reason=timeout_error.REPLY_LOST,
            facts=known,
        )
    # Nothing waits or runs: handled already. Its reply may still be on its way.
    settled = await answered(end - time.monotonic())
    if settled is not None:
        return settled
    return timeout_error(
        f"{head}: handled (nothing waits or runs on {instances}), but no reply reached this caller:"
        " the reply was lost (or the invocation was dropped unanswered)",
        uri=uri,
        reason=timeout_error.REPLY_LOST,
        facts=known,
    )


class Autopsies:
    """The timed-out calls of one caller whose reason is being found, and what it saw meanwhile.

    The caller hands over a call at its deadline (``start``), tells of replies that came for
    calls no longer pending (``replied``) and of replies it could not read (``unreadable``);
    each call's future gets its ``timeout_error`` once ``explain`` is done, or at ``close()``.
    """

    def __init__(self, reader: StatsReader | None) -> None:
        self.reader = reader
        self._records: dict[str, CallRecord] = {}
        self._tasks: dict[asyncio.Task[None], tuple[asyncio.Future[Any], str, float]] = {}
        self._unreadable: collections.deque[tuple[float, str]] = collections.deque(maxlen=20)

    def __bool__(self) -> bool:
        return bool(self._records)

    def unreadable(self, text: str) -> None:
        self._unreadable.append((time.monotonic(), text))

    def replied(self, call_id: str, reply: Reply | None = None) -> None:
        record = self._records.get(call_id)
        if record is not None:
            record.replied(reply)

    def start(
        self,
        call_id: str,
        uri: str,
        topic: str,
        timeout: float,
        deadline: float,
        future: asyncio.Future[Any],
        notice_expected: bool = False,
    ) -> None:
        """``deadline`` is the call's, in ``time.monotonic()`` (= ``loop.time()``) seconds;
        ``notice_expected``: every subscriber reads deadlines (it tells of a call it got too late)."""
        record = self._records[call_id] = CallRecord(deadline - timeout, deadline, notice_expected)
        task = asyncio.get_running_loop().create_task(self._run(call_id, uri, topic, timeout, record, future))
        self._tasks[task] = (future, uri, timeout)
        task.add_done_callback(lambda t: self._tasks.pop(t, None))

    async def _run(
        self, call_id: str, uri: str, topic: str, timeout: float, record: CallRecord, future: asyncio.Future[Any]
    ) -> None:
        try:
            error = await explain(uri, topic, timeout, self.reader, record, self._unreadable_since)
        except Exception as exc:  # finding the reason must never hide the timeout itself
            logger.exception("finding why the call of %s timed out failed", uri)
            error = timeout_error(
                f"no reply from {uri} within {timeout:g}s; why is unknown: {exc}", uri=uri, reason=timeout_error.UNKNOWN
            )
        finally:
            self._records.pop(call_id, None)
        if not future.done():
            future.set_exception(error)

    def _unreadable_since(self, since: float) -> list[str]:
        return [text for at, text in self._unreadable if at >= since]

    def close(self) -> None:
        """The session leaves: every call still being examined fails now, its reason unknown."""
        for task, (future, uri, timeout) in list(self._tasks.items()):
            task.cancel()
            if not future.done():
                future.set_exception(
                    timeout_error(
                        f"no reply from {uri} within {timeout:g}s (the session left before its reason was found)",
                        uri=uri,
                        reason=timeout_error.UNKNOWN,
                    )
                )
        self._tasks.clear()
        self._records.clear()
