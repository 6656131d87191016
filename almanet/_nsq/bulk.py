"""Bulk publishing: a lazy stream of bodies cut into MPUB batches, a bounded number in flight.

Apart from ``producer.py`` because it needs nothing of the producer's connection table: only a
way to send one batch (with the producer's failover), which it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from . import codec

__all__ = ["publish_batches"]


async def publish_batches(
    send: Callable[[codec.MessageBatch], Awaitable[None]],
    bodies: Iterable[bytes],
    *,
    max_batch_bytes: int,
    max_in_flight: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Send ``bodies`` in batches under ``max_batch_bytes``; the first failure stops the stream.

    Batches already sent stay sent (nsqd has them); the failure is raised once every batch in
    flight has ended, so nothing is left running behind the caller.
    """
    semaphore = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    async def send_one(batch: codec.MessageBatch) -> None:
        try:
            await send(batch)
            if progress is not None:
                progress(batch.count)
        except BaseException as exc:
            failures.append(exc)
        finally:
            semaphore.release()

    def dispatch(batch: codec.MessageBatch) -> None:
        task = asyncio.ensure_future(send_one(batch))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        batch = codec.MessageBatch()
        for body in bodies:
            if batch.count and batch.size + 4 + len(body) > max_batch_bytes:
                await semaphore.acquire()
                if failures:
                    break
                dispatch(batch)
                batch = codec.MessageBatch()
            batch.add(body)
        else:
            if batch.count:
                await semaphore.acquire()
                dispatch(batch)
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    if failures:
        raise failures[0]
