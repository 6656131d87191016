"""almanet and gnsq, an independent Python NSQ client, on one nsqd, in both directions.

gnsq runs in its own process (tests/interop/_gnsq_peer.py): it needs gevent, whose hub must not
run inside the test process. The codec cross-check against gnsq.protocol is in tests/unit.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration._aio import joined, run
from tests.support.nsqproc import NsqdProcess, wait_until

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gnsq") is None, reason="gnsq is a test dependency")

ROOT = Path(__file__).resolve().parents[2]
PEER_TIMEOUT = 30.0


def _peer(*args: str, stdin: bytes | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.interop._gnsq_peer", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(process: subprocess.Popen[bytes], stdin: bytes | None = None) -> bytes:
    try:
        out, err = process.communicate(stdin, timeout=PEER_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"gnsq peer did not finish within {PEER_TIMEOUT}s: {err.decode()[-2000:]}") from None
    assert process.returncode == 0, f"gnsq peer failed ({process.returncode}): {err.decode()[-2000:]}"
    return out


def _gnsq_consumer(nsqd: NsqdProcess, topic: str, count: int) -> subprocess.Popen[bytes]:
    """A gnsq Consumer, returned once nsqd lists its channel (nothing published before is lost)."""
    process = _peer("consume", nsqd.tcp_address, topic, "gnsq", str(count))

    def subscribed() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"gnsq consumer exited early: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        return "gnsq" in nsqd.topics().get(topic, ())

    try:
        wait_until(subscribed, PEER_TIMEOUT, message=f"gnsq did not subscribe to {topic}")
    except BaseException:
        process.kill()
        process.communicate()
        raise
    return process


def test_gnsq_consumer_reads_what_almanet_produces(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic = unique_name("gnsq")
    singles = [{"n": i, "text": "pub"} for i in range(3)]
    together = [{"n": i, "text": "same tick"} for i in range(3, 8)]  # one tick's PUBs go as an MPUB
    many = [{"n": i, "text": "mpub"} for i in range(8, 208)]
    consumer = _gnsq_consumer(nsqd, topic, len(singles) + len(together) + len(many))

    async def produce() -> None:
        async with joined(nsqd.tcp_address) as session:
            for payload in singles:
                await session.produce(topic, payload)
            await asyncio.gather(*(session.produce(topic, p) for p in together))
            assert await session.produce_many(topic, many) == len(many)

    try:
        run(produce())
    finally:
        out = _finish(consumer)
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted((json.loads(line["body"]) for line in lines), key=lambda p: p["n"]) == singles + together + many
    assert {line["attempts"] for line in lines} == {1}


@pytest.mark.parametrize("command", ["publish", "multipublish"])
def test_almanet_consumes_what_gnsq_produces(nsqd: NsqdProcess, unique_name: Callable[..., str], command: str) -> None:
    topic = unique_name("gnsq")
    payloads: list[Any] = [{"n": i, "by": "gnsq"} for i in range(50)]
    stdin = b"".join(json.dumps(p).encode() + b"\n" for p in payloads)
    received: list[Any] = []

    async def consume() -> None:
        async with joined(nsqd.tcp_address) as session, session.consume(topic, "almanet") as messages:
            # subscribed: gnsq publishes only now, so every message reaches this channel
            publisher = _peer(command, nsqd.tcp_address, topic, stdin=stdin)
            await asyncio.to_thread(_finish, publisher, stdin)
            async for message in messages:
                received.append(message.body)
                await message.commit()
                if len(received) == len(payloads):
                    break

    run(consume(), timeout=PEER_TIMEOUT + 10)
    assert received == payloads  # one nsqd, one connection: in order
    assert nsqd.channel_stats(topic, "almanet")["depth"] == 0  # type: ignore[index]
