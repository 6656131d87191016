"""A procedure that runs longer than nsqd's msg-timeout runs once, not once per redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import almanet
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess


def test_long_procedure_is_not_redelivered(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    # nsqd redelivers an unfinished message after --msg-timeout; the service TOUCHes it meanwhile.
    nsqd = nsqd_factory(extra_args=("--msg-timeout=1s",))
    prepath = unique_name("long")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)
    runs = 0

    @service.procedure
    async def slow(payload: float) -> int:
        nonlocal runs
        runs += 1
        # the work itself; nsqd scans a new channel for timeouts only after its next 5 s refresh,
        # so the work must outlast that refresh plus one msg-timeout to be redelivered without TOUCH
        await asyncio.sleep(payload)
        return runs

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            result = await session.call(f"{prepath}.slow", 6.5, timeout=12)
            assert result.payload == 1
        assert runs == 1

    run(scenario(), timeout=20)
