"""Start a coroutine at once and make a task of it only if it really has to wait.

Most procedures return without awaiting anything that blocks (``return f"Hello, {name}!"``):
running their first step in the read callback answers them in the same event-loop tick, and
spares a Task and a trip through the loop per invocation. Python 3.12's eager task factory does
this for a whole loop; this does it for one call site, on 3.11 too.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["start_eagerly"]


def start_eagerly(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coroutine`` up to its first suspension; None when it finished without one.

    Exceptions of that first step propagate to the caller, as a plain call would.
    """
    try:
        yielded = coroutine.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_resume(coroutine, yielded))


async def _resume(coroutine: Coroutine[Any, Any, None], yielded: Any) -> None:
    await _continue(coroutine, yielded)


@types.coroutine
def _continue(coroutine: Coroutine[Any, Any, None], yielded: Any) -> Generator[Any, Any, None]:
    """Hand the task what the coroutine yielded (a future it waits on), and drive it on from there."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as exc:  # cancellation and the like go into the coroutine
            try:
                yielded = coroutine.throw(exc)
            except StopIteration:
                return
        else:
            try:
                yielded = coroutine.send(sent)
            except StopIteration:
                return
