"""Why a call timed out, when nsqd's /stats shows its invocation in flight: the facts as data.

The reader here hands out a fixed ``Snapshot`` (what nsqd's /stats said); the integration tests
read a real nsqd. The question is only what ``explain`` concludes from those facts and from the
replies that reach the caller meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from almanet._broker.stats import Snapshot, TopicFacts
from almanet._calling.forensics import NOTICE_WAIT, CallRecord, explain
from almanet._wire.errors import timeout_error
from almanet._wire.protocol import EXPIRED_NOTICE, Reply, error_payload

TOPIC = "_rpc_.net.t.slow"


class _Stats:
    """A /stats answer: one subscriber, the invocation in flight."""

    async def snapshot(self, topic: str | None = None, **_: Any) -> Snapshot:
        facts = TopicFacts(TOPIC, subscribers=1, in_flight=1, nsqd=["127.0.0.1:1"])
        return Snapshot({TOPIC: facts}, ["127.0.0.1:1"], [], time.monotonic())


def _explain(record: CallRecord) -> timeout_error:
    return asyncio.run(_with_notice(record, None))


async def _with_notice(record: CallRecord, after: float | None) -> timeout_error:
    if after is not None:
        notice = Reply("id", True, error_payload(EXPIRED_NOTICE, ["net.t.slow: past its caller's deadline (3 ms ago)"]))
        asyncio.get_running_loop().call_later(after, record.replied, notice)
    return await explain("net.t.slow", TOPIC, 0.1, _Stats(), record, lambda since: [])  # type: ignore[arg-type]


def test_in_flight_with_the_notice_coming_soon_after_is_expired_not_running() -> None:
    record = CallRecord(time.monotonic() - 0.1, time.monotonic(), notice_expected=True)
    error = asyncio.run(_with_notice(record, 0.05))
    assert error.reason == timeout_error.EXPIRED
    assert "past its caller's deadline (3 ms ago)" in str(error)


def test_in_flight_without_a_notice_is_running_after_the_wait() -> None:
    record = CallRecord(time.monotonic() - 0.1, time.monotonic(), notice_expected=True)
    began = time.monotonic()
    error = _explain(record)
    assert error.reason == timeout_error.RUNNING
    assert time.monotonic() - began >= NOTICE_WAIT * 0.9


def test_a_subscriber_that_reads_no_deadline_is_not_waited_for() -> None:
    record = CallRecord(time.monotonic() - 0.1, time.monotonic(), notice_expected=False)
    began = time.monotonic()
    error = _explain(record)
    assert error.reason == timeout_error.RUNNING
    assert time.monotonic() - began < NOTICE_WAIT
