"""A broken "service" as its own process: answers every invocation of a URI with a reply that has
a key too many, so the caller cannot read it (``python -m tests.assets.bad_replier NSQD URI``).
Prints ``ready`` once subscribed.
"""

from __future__ import annotations

import asyncio
import sys

import almanet


async def main(address: str, uri: str) -> None:
    async with almanet.new_session(address) as session:
        async with session.consume(f"_rpc_.{uri}", "RPC#ephemeral") as messages:
            print("ready", flush=True)
            async for message in messages:
                invocation = message.body
                reply = {"call_id": invocation["id"], "is_error": False, "payload": None, "extra": True}
                await session.produce(invocation["reply_topic"], reply)
                await message.commit()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
