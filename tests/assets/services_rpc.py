"""A service for the timeout-reason CLI tests: one invocation at a time, held until released.

``nap`` writes the file ``mark`` (its side effect: a test checks which invocations ran), then
waits until the file ``release`` exists, so a test decides when it ends without any fixed delay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import almanet

svc = almanet.new_service(prepath="clirpc", max_concurrency=1)


@svc.procedure
async def whoami(payload: None = None) -> str:
    """Readiness probe."""
    return "clirpc"


@svc.procedure
async def nap(payload: dict[str, str]) -> str:
    """Mark that it ran, then wait for the release file (at most 60 s)."""
    Path(payload["mark"]).write_text("ran")  # noqa: ASYNC240 - a few bytes; the test polls for it
    release = Path(payload["release"])
    for _ in range(3000):
        if release.exists():  # noqa: ASYNC240
            return "released"
        await asyncio.sleep(0.02)  # a poll interval, not a synchronisation
    return "gave up"
