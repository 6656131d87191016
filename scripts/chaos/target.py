"""The service the chaos run serves (several instances, ``almanet serve target:service``).

Each start of the procedure is written to this instance's start log before anything else:
one ``os.write`` to an O_APPEND file, so a ``kill -9`` right after loses nothing written. The
run compares these start times with its callers' deadlines (a late run) after the fact.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import almanet

service = almanet.new_service(prepath="chaos")
_log = os.open(
    Path(os.environ["CHAOS_DIR"]) / f"starts-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
)


@service.procedure
async def work(payload: dict[str, float]) -> int:
    """Sleeps ``payload["ms"]`` (callers queue behind it), then answers the call's number."""
    os.write(_log, f"{int(payload['n'])} {time.time():.6f}\n".encode())
    await asyncio.sleep(payload["ms"] / 1000)
    return int(payload["n"])
