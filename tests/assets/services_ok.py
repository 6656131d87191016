"""Services the CLI tests serve: ``almanet serve tests.assets.services_ok:svc``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel

import almanet

svc = almanet.new_service(prepath="clitest")
svc_blue = almanet.new_service(prepath="clitest", channel="blue")
empty = almanet.new_service(prepath="clitest.empty")
both = [svc, svc_blue]
NOT_A_SERVICE = 42


class Order(BaseModel):
    id: int
    item: str


class refused(almanet.rpc_error):
    """The order is refused."""


@svc.procedure(tags=("orders",))
async def place(payload: Order) -> dict[str, int]:
    """Place an order; item "nothing" is refused."""
    if payload.item == "nothing":
        raise refused("nothing to place", payload.id)
    return {"placed": payload.id}


@svc.procedure
async def whoami(payload: None = None) -> str:
    """Say which channel answered."""
    return "RPC"


@svc_blue.procedure(name="whoami")
async def whoami_blue(payload: None = None) -> str:
    raise refused("blue refuses")


@svc.procedure
async def slow(payload: str) -> str:
    """Write the file named by the payload, then take a second: lets a test signal mid-invocation."""
    Path(payload).write_text("started")  # noqa: ASYNC240 - a few bytes; the test polls for this file
    await asyncio.sleep(1.0)
    return "done"
