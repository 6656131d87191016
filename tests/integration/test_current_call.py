"""``almanet.current_call()``: inside a procedure, which invocation it serves; None outside."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import almanet
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess


def test_current_call_inside_a_procedure(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    prepath = unique_name("ctxcall")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)

    @service.procedure
    async def who(payload: str) -> dict[str, Any]:
        call = almanet.current_call()
        assert call is not None
        return {
            "id": call.id,
            "uri": call.uri,
            "channel": call.channel,
            "caller_id": call.caller_id,
            "deadline": call.deadline,
            "attempt": call.attempt,
        }

    async def scenario() -> None:
        assert almanet.current_call() is None  # outside any procedure
        async with serving(service), joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
            sent = time.time()
            result = await session.call(f"{prepath}.who", "x", timeout=7)
            seen = result.payload
            assert seen["id"] == result.call_id
            assert seen["uri"] == f"{prepath}.who"
            assert seen["channel"] == "RPC#ephemeral"
            assert seen["caller_id"] == session.id
            assert seen["attempt"] == 1
            # the caller's deadline: about the time of the call plus its 7 s timeout
            assert seen["deadline"] is not None
            assert sent + 6 <= seen["deadline"] <= time.time() + 7.5
        assert almanet.current_call() is None

    run(scenario())


def test_current_call_without_a_caller_deadline_is_none(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    """A caller that sends no deadline (fail-fast off: no /stats, no deadline key) gets deadline None."""
    prepath = unique_name("ctxnodl")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)

    @service.procedure
    async def deadline(payload: None) -> float | None:
        call = almanet.current_call()
        assert call is not None
        return call.deadline

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address, fail_fast=False) as session:
            value = (await session.call(f"{prepath}.deadline", None, timeout=5)).payload
            # with fail-fast off today's callers send no deadline; if a later change makes it
            # always travel, it must be the caller's
            assert value is None or time.time() < value <= time.time() + 5.5

    run(scenario())
