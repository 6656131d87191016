"""The service the fault tests run as separate processes: ``almanet serve tests.assets.faults_service:svc``.

Each execution is appended to ``$FAULTS_LOG_DIR/<pid>.log`` when it starts, so a test can count
how often each call ran, across instances, including in an instance it killed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import almanet

svc = almanet.new_service(prepath="faults")
_LOG_DIR = Path(os.environ.get("FAULTS_LOG_DIR", "."))


@svc.procedure
async def work(payload: dict[str, float]) -> dict[str, int]:
    """Record the execution, sleep ``payload["sleep"]`` seconds, answer with the number and pid."""
    n = int(payload["n"])
    with (_LOG_DIR / f"{os.getpid()}.log").open("a") as log:
        log.write(f"{n}\n")
    await asyncio.sleep(payload.get("sleep", 0.0))
    return {"n": n, "pid": os.getpid()}
