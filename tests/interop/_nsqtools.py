"""The real NSQ command-line tools as asyncio subprocesses: an independent client on the wire.

``Tail`` wraps ``nsq_tail`` (it subscribes, prints each body on its own line and FINs it);
``to_nsq`` publishes stdin lines. Both are go-nsq programs, so what they see and send is what any
other NSQ client would. A ``Tail`` is ready only once its channel shows in nsqd's /stats: a message
published before that could not reach it. Every process is killed by its owner, by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tests.support.nsqproc import NsqdProcess, tool_path, wait_until

__all__ = ["Tail", "tail", "to_nsq"]

TOOL_TIMEOUT = 10.0


class Tail:
    """A running ``nsq_tail -n N`` on one topic/channel; ``await next_json()`` reads one body."""

    def __init__(self, process: asyncio.subprocess.Process, topic: str, channel: str) -> None:
        self.process = process
        self.topic = topic
        self.channel = channel

    async def next_line(self, timeout: float = TOOL_TIMEOUT) -> bytes:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                line = await self.process.stdout.readline()
        except TimeoutError:
            raise AssertionError(f"nsq_tail saw nothing on {self.topic}/{self.channel} within {timeout}s") from None
        if not line:
            stderr = await self._stderr()
            raise AssertionError(f"nsq_tail on {self.topic} exited (rc={self.process.returncode}): {stderr}")
        return line.rstrip(b"\n")

    async def next_json(self, timeout: float = TOOL_TIMEOUT) -> Any:
        line = await self.next_line(timeout)
        return json.loads(line)

    async def _stderr(self) -> str:
        assert self.process.stderr is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self.process.wait()
        return (await self.process.stderr.read()).decode(errors="replace")[-2000:]

    async def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()


@contextlib.asynccontextmanager
async def tail(nsqd: NsqdProcess, topic: str, channel: str = "tail#ephemeral", count: int = 1) -> AsyncIterator[Tail]:
    """Start ``nsq_tail`` and yield it once nsqd lists its channel; always killed on exit."""
    process = await asyncio.create_subprocess_exec(
        tool_path("nsq_tail"),
        f"-nsqd-tcp-address={nsqd.tcp_address}",
        f"-topic={topic}",
        f"-channel={channel}",
        f"-n={count}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    handle = Tail(process, topic, channel)
    try:

        def subscribed() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"nsq_tail exited early with code {process.returncode}")
            return channel in nsqd.topics().get(topic, ())

        await asyncio.to_thread(
            wait_until, subscribed, TOOL_TIMEOUT, message=f"nsq_tail did not subscribe to {topic}/{channel}"
        )
        yield handle
    finally:
        await handle.kill()


async def to_nsq(nsqd: NsqdProcess, topic: str, bodies: Sequence[bytes | str | Any]) -> None:
    """Publish each body (bytes/str as they are, anything else as compact JSON) with ``to_nsq``."""
    lines = []
    for body in bodies:
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body, separators=(",", ":")).encode()
        assert b"\n" not in body, "to_nsq splits its input on newlines"
        lines.append(body + b"\n")
    process = await asyncio.create_subprocess_exec(
        tool_path("to_nsq"),
        f"-nsqd-tcp-address={nsqd.tcp_address}",
        f"-topic={topic}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TOOL_TIMEOUT):
            _, stderr = await process.communicate(b"".join(lines))
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    assert process.returncode == 0, f"to_nsq -topic {topic} failed ({process.returncode}): {stderr.decode()[-2000:]}"
