"""Replies and payloads over nsqd's ``--max-msg-size``: an error at once, nothing reset.

A real nsqd started with a small limit; the service learns it from nsqd's HTTP API
(``/config/max_msg_size``), since IDENTIFY does not say it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import almanet
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess, start_nsqd

LIMIT = 2000


@pytest.fixture
def small_nsqd(tmp_path: Path) -> Iterator[NsqdProcess]:
    nsqd = start_nsqd(data_dir=tmp_path / "data", extra_args=[f"--max-msg-size={LIMIT}"])
    try:
        yield nsqd
    finally:
        nsqd.stop()


def test_a_reply_over_the_limit_is_an_error_at_once_and_the_service_stays_connected(
    small_nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("big")
    service = almanet.new_service(small_nsqd.tcp_address, prepath=prepath)

    @service.procedure
    async def echo(payload: int) -> str:
        return "x" * payload

    async def scenario() -> None:
        async with (
            serving(service, nsqd_http=small_nsqd.http_address),
            joined(small_nsqd.tcp_address, nsqd_http=small_nsqd.http_address) as session,
        ):
            assert (await session.call(f"{prepath}.echo", 10, timeout=5)).payload == "x" * 10
            running = service._running
            assert running is not None and running.limit_task is not None
            await running.limit_task  # learnt in the background, from /config/max_msg_size
            assert running.max_reply_size == LIMIT
            started = time.monotonic()
            with pytest.raises(almanet.reply_too_large) as caught:
                await session.call(f"{prepath}.echo", 5000, timeout=30)
            assert time.monotonic() - started < 5  # at once, not after the 30 s timeout
            text = str(caught.value)
            assert "5" in text and f"nsqd accepts at most {LIMIT}" in text and "--max-msg-size" in text
            # the same connection goes on serving
            assert (await session.call(f"{prepath}.echo", 20, timeout=5)).payload == "x" * 20

    run(scenario(), timeout=30)


def test_a_payload_over_the_limit_is_refused_before_it_is_sent(
    small_nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("bigin")
    ran: list[int] = []
    service = almanet.new_service(small_nsqd.tcp_address, prepath=prepath)

    @service.procedure
    async def size(payload: str) -> int:
        ran.append(len(payload))
        return len(payload)

    async def scenario() -> None:
        async with (
            serving(service, nsqd_http=small_nsqd.http_address),
            joined(small_nsqd.tcp_address, max_message_size=LIMIT) as session,
        ):
            with pytest.raises(almanet.invalid_argument, match=f"nsqd accepts at most {LIMIT}"):
                await session.call(f"{prepath}.size", "y" * 3000, timeout=5)
            assert (await session.call(f"{prepath}.size", "y" * 30, timeout=5)).payload == 30

    run(scenario(), timeout=30)
    assert ran == [30]
