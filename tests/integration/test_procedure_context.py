"""Procedures run as ordinary asyncio tasks: timeouts, current_task and context variables work."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable

import pytest

import almanet
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess

request_tag: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_tag", default=None)


def test_procedures_can_use_task_features(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    prepath = unique_name("ctx")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)

    @service.procedure
    async def bounded(payload: float) -> str:
        async with asyncio.timeout(payload):  # needs to run inside a task
            await asyncio.sleep(0)
        return "in time"

    @service.procedure
    async def tagged(payload: str) -> list[str | None]:
        seen = request_tag.get()  # must not see what an earlier invocation set
        request_tag.set(payload)
        return [seen, request_tag.get(), "task" if asyncio.current_task() is not None else None]

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            assert (await session.call(f"{prepath}.bounded", 1.0, timeout=5)).payload == "in time"
            first = (await session.call(f"{prepath}.tagged", "a", timeout=5)).payload
            second = (await session.call(f"{prepath}.tagged", "b", timeout=5)).payload
            assert first == [None, "a", "task"]
            assert second == [None, "b", "task"]

    run(scenario())


def test_a_cancelled_error_raised_by_a_procedure_is_an_internal_error_once(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("cancel")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)
    runs = 0

    @service.procedure
    async def gives_up(session: almanet.Almanet, payload: None) -> None:
        nonlocal runs
        runs += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.cancel()
        await future  # raises CancelledError inside the procedure, nobody cancelled its task

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.InternalError):
                await session.call(f"{prepath}.gives_up", timeout=5)
            # a second call is answered too: the first invocation was not requeued in a loop
            with pytest.raises(almanet.InternalError):
                await session.call(f"{prepath}.gives_up", timeout=5)
        assert runs == 2

    run(scenario())
