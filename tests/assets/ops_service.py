"""A service for the operating tests (``serve --http``, ``--workers``, ``--log-format json``)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import almanet

svc = almanet.new_service(prepath="opstest")
logger = logging.getLogger("opstest")


@svc.procedure
async def pid(payload: None = None) -> int:
    """Which process answered."""
    return os.getpid()


@svc.procedure
async def crash(payload: None = None) -> None:
    """Fails with an unexpected error: an InternalError for the caller, a logged traceback here."""
    raise ValueError("broken on purpose")


@svc.procedure
async def slow(payload: str) -> str:
    """Write the file named by the payload, then take a second: a test signals mid-invocation."""
    Path(payload).write_text("started")  # noqa: ASYNC240 - a few bytes; the test polls for this file
    await asyncio.sleep(1.0)
    return "done"
