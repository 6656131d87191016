"""``almanet produce TOPIC -`` from a pipe: publish lines as they arrive, a live bridge.

``almanet consume a | almanet produce b -`` forwards each message while both run: a line is
published as soon as the loop sees it, and lines that arrive while a publish waits for nsqd's OK
go out together in the next MPUB, so the latency is at most one round trip to nsqd. A regular
file on stdin (``< file``) is read whole and checked before anything is sent, as ``--file`` is;
a pipe cannot be, so a bad line stops the stream: nothing of the lines read with it (in the same
read) is sent, and what was sent before stays sent.

SIGTERM or Ctrl-C: keep reading until the pipe ends, for at most ``STOP_GRACE`` seconds (a
shell's Ctrl-C, or a service manager, stops the writer too: it closes the pipe and every line it
wrote is read and published); past that, take what the pipe holds (read until it is empty),
publish every complete line, and exit 130. ``consume`` finishes a message only once its line was
written to the pipe, and a line it could not write goes back to nsqd (broken pipe): the one gap
left is a line written in the instant between this side's last read and its exit, when this side
alone was stopped and its writer went on past the grace.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from typing import Any

from ._common import Exit, fail, open_session

__all__ = ["STOP_GRACE", "is_pipe", "stream"]

STOP_GRACE = 2.0  # seconds a stopped `produce -` keeps reading, waiting for its writer to end


def is_pipe(stream: Any) -> bool:
    """``stream`` is a pipe, a socket or a terminal: something that delivers lines over time."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError):  # no file underneath (a test runner's stdin)
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


class _Lines(asyncio.Protocol):
    """Bytes from the pipe cut into complete lines; ``wake`` is set when there is news."""

    def __init__(self, delimiter: bytes) -> None:
        self.delimiter = delimiter
        self.partial = b""
        self.lines: list[bytes] = []
        self.eof = False
        self.wake = asyncio.Event()

    def feed(self, data: bytes) -> None:
        pieces = (self.partial + data).split(self.delimiter)
        self.partial = pieces.pop()
        self.lines.extend(pieces)
        self.wake.set()

    def data_received(self, data: bytes) -> None:
        self.feed(data)

    def eof_received(self) -> bool:
        self.eof = True
        self.wake.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.wake.set()

    def take(self, *, final: bool) -> list[bytes]:
        lines, self.lines = self.lines, []
        if final and self.partial and self.eof:  # the input ended without a last newline
            lines.append(self.partial)
            self.partial = b""
        return lines


def _bodies(lines: list[bytes], raw: bool, first_number: int) -> tuple[list[bytes], str | None]:
    """The messages of these lines (blank ones skipped), and the error of the first bad one."""
    import orjson

    bodies: list[bytes] = []
    for offset, line in enumerate(lines):
        if raw:
            body = line[:-1] if line.endswith(b"\r") else line
            if body:
                bodies.append(body)
            continue
        body = line.strip()
        if not body:
            continue
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return bodies, f"line {first_number + offset} of stdin is not valid JSON: {exc}"
        bodies.append(body)
    return bodies, None


def _drain(fd: int, protocol: _Lines) -> None:
    """What the pipe holds now, read without waiting (the fd is non-blocking under asyncio)."""
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            protocol.eof = True
            return
        if not data:
            protocol.eof = True
            return
        protocol.feed(data)


async def stream(settings: Any, topic: str, delimiter: bytes | None, raw: bool) -> tuple[int, bool]:
    """Publish stdin's lines as they come; returns (messages sent, stopped by a signal)."""
    loop = asyncio.get_running_loop()
    protocol = _Lines(delimiter or b"\n")
    stopped = asyncio.Event()
    give_up_at = 0.0  # loop time after which a stopped stream stops reading

    def stop() -> None:
        nonlocal give_up_at
        if not stopped.is_set():
            give_up_at = loop.time() + STOP_GRACE
        stopped.set()
        protocol.wake.set()

    session = await open_session(settings)
    sent = 0
    number = 1  # the line number of the next line taken
    async with session:
        pipe = os.fdopen(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
        transport, _ = await loop.connect_read_pipe(lambda: protocol, pipe)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        try:
            while True:
                if stopped.is_set():
                    try:
                        async with asyncio.timeout_at(give_up_at):
                            await protocol.wake.wait()
                    except TimeoutError:
                        pass
                else:
                    await protocol.wake.wait()
                protocol.wake.clear()
                final = protocol.eof or (stopped.is_set() and loop.time() >= give_up_at)
                if final and not protocol.eof:  # the writer goes on: what the pipe holds, then stop
                    transport.pause_reading()
                    _drain(sys.stdin.fileno(), protocol)
                lines = protocol.take(final=final)
                bodies, error = _bodies(lines, raw, number)
                number += len(lines)
                if error is not None:  # nothing of this batch: what came in together stays all-or-nothing
                    fail(f"{error}; {sent} message(s) read before this batch were sent, none after", Exit.BAD_INPUT)
                if bodies:
                    sent += await session.produce_many(topic, bodies, raw=True)
                if final:
                    if protocol.partial:
                        sys.stderr.write("almanet produce: an unfinished last line was not sent\n")
                    return sent, stopped.is_set()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            transport.close()
