"""start_eagerly: the first step runs now; a task exists only for coroutines that wait."""

from __future__ import annotations

import asyncio

import pytest

from almanet._eager import start_eagerly


def test_a_coroutine_that_never_waits_finishes_in_the_call() -> None:
    done: list[str] = []

    async def quick() -> None:
        done.append("ran")

    async def scenario() -> None:
        assert start_eagerly(quick()) is None
        assert done == ["ran"]  # before any trip through the event loop

    asyncio.run(scenario())


def test_a_coroutine_that_waits_continues_as_a_task() -> None:
    steps: list[object] = []

    async def waits(future: asyncio.Future[int]) -> None:
        steps.append("before")
        steps.append(await future)
        await asyncio.sleep(0)  # a bare yield to the loop
        steps.append("after")

    async def scenario() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = start_eagerly(waits(future))
        assert task is not None
        assert steps == ["before"]
        future.set_result(7)
        await task
        assert steps == ["before", 7, "after"]

    asyncio.run(scenario())


def test_errors_after_the_first_wait_surface_in_the_task() -> None:
    async def fails(future: asyncio.Future[None]) -> None:
        await future
        raise ValueError("boom")

    async def scenario() -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = start_eagerly(fails(future))
        assert task is not None
        future.set_result(None)
        with pytest.raises(ValueError, match="boom"):
            await task

    asyncio.run(scenario())


def test_errors_of_the_first_step_propagate_to_the_caller() -> None:
    async def fails() -> None:
        raise KeyError("now")

    async def scenario() -> None:
        with pytest.raises(KeyError):
            start_eagerly(fails())

    asyncio.run(scenario())


def test_cancelling_the_task_cancels_inside_the_coroutine() -> None:
    seen: list[str] = []

    async def waits_forever(future: asyncio.Future[None]) -> None:
        try:
            await future
        except asyncio.CancelledError:
            seen.append("cancelled inside")
            raise
        finally:
            seen.append("cleaned up")

    async def scenario() -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = start_eagerly(waits_forever(future))
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == ["cancelled inside", "cleaned up"]
        assert future.cancelled()

    asyncio.run(scenario())
