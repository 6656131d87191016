"""almanet._nsq.discovery without sockets: /nodes parsing and the poller's rounds (``fetch`` is faked)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from almanet._nsq.discovery import LookupdPoller, NSQLookupdError, nsqd_tcp_addresses
from almanet._nsq.http import NSQHTTPError

# nsqlookupd 1.3.0's /nodes, trimmed: what it says for an IPv4, a host name and an IPv6 nsqd
NODES = {
    "producers": [
        {
            "remote_address": "127.0.0.1:50000",
            "hostname": "box-a",
            "broadcast_address": "10.0.0.5",
            "tcp_port": 4150,
            "http_port": 4151,
            "version": "1.3.0",
            "tombstones": [],
            "topics": ["orders"],
        },
        {"hostname": "box-b", "broadcast_address": "nsqd-b.internal", "tcp_port": 4250, "http_port": 4251},
        {"hostname": "box-c", "broadcast_address": "fd00::7", "tcp_port": 4150, "http_port": 4151},
    ]
}


def test_nsqd_tcp_addresses_from_a_nodes_document() -> None:
    assert nsqd_tcp_addresses(NODES) == ["10.0.0.5:4150", "nsqd-b.internal:4250", "[fd00::7]:4150"]
    # the producers list alone (what LookupdHTTPClient.nodes() returns) reads the same
    assert nsqd_tcp_addresses(NODES["producers"]) == nsqd_tcp_addresses(NODES)


def test_nsqd_tcp_addresses_skips_what_cannot_be_connected_to() -> None:
    document = {
        "producers": [
            {"hostname": "only-hostname", "tcp_port": 4150},  # no broadcast_address: the hostname
            {"broadcast_address": "no-port"},
            {"broadcast_address": "bad-port", "tcp_port": "4150"},
            {"broadcast_address": "zero-port", "tcp_port": 0},
            {"broadcast_address": "[::1]", "tcp_port": 4150},  # already bracketed: kept as it is
            {"broadcast_address": "10.0.0.5", "tcp_port": 4150},
            {"broadcast_address": "10.0.0.5", "tcp_port": 4150},  # listed twice: once
            "garbage",
        ]
    }
    assert nsqd_tcp_addresses(document) == ["only-hostname:4150", "[::1]:4150", "10.0.0.5:4150"]
    assert nsqd_tcp_addresses({}) == [] and nsqd_tcp_addresses({"producers": None}) == []


class FakeLookupd:
    """``fetch`` for the poller: each lookupd address answers its current document or error."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.calls = 0
        self.called = asyncio.Event()

    async def __call__(self, address: str) -> Any:
        self.calls += 1
        self.called.set()
        answer = self.answers[address]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _node(host: str, port: int) -> dict[str, Any]:
    return {"broadcast_address": host, "tcp_port": port}


def _down(address: str) -> NSQHTTPError:
    return NSQHTTPError(f"cannot reach http://{address}/nodes: Connection refused", address=address)


def test_poll_is_the_union_and_reports_only_new_nsqd(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeLookupd()
    poller = LookupdPoller(("l1:4161", "l2:4161"), fetch=fake)

    async def scenario() -> None:
        fake.answers = {"l1:4161": [_node("a", 4150)], "l2:4161": [_node("a", 4150), _node("b", 4150)]}
        assert await poller.poll() == ["a:4150", "b:4150"]
        assert await poller.poll() == []
        # l2 fails: not fatal while l1 answers; warned once for the streak, not every round
        fake.answers = {"l1:4161": [_node("a", 4150), _node("c", 4150)], "l2:4161": _down("l2:4161")}
        with caplog.at_level(logging.DEBUG, logger="almanet._nsq.discovery"):
            assert await poller.poll() == ["c:4150"]
            assert await poller.poll() == []
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "l2:4161" in warnings[0].getMessage()
        # an nsqd that lookupd stops listing is still known: nothing is dropped
        fake.answers = {"l1:4161": [], "l2:4161": []}
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="almanet._nsq.discovery"):
            assert await poller.poll() == []
        assert any("l2:4161 answers again" in r.getMessage() for r in caplog.records)
        assert poller.known == ("a:4150", "b:4150", "c:4150")

    asyncio.run(scenario())


def test_poll_raises_when_no_lookupd_answers() -> None:
    fake = FakeLookupd()
    fake.answers = {"l1:4161": _down("l1:4161"), "l2:4161": _down("l2:4161")}
    poller = LookupdPoller(("l1:4161", "l2:4161"), fetch=fake)
    with pytest.raises(NSQLookupdError) as info:
        asyncio.run(poller.poll())
    assert "l1:4161" in str(info.value) and "l2:4161" in str(info.value)
    assert info.value.addresses == ("l1:4161", "l2:4161")


def test_a_hung_lookupd_is_bounded() -> None:
    async def hang(address: str) -> Any:
        await asyncio.Event().wait()

    poller = LookupdPoller(("l1:4161",), fetch=hang, timeout=0.05)

    async def scenario() -> None:
        async with asyncio.timeout(5):
            with pytest.raises(NSQLookupdError, match=re.escape("did not answer within 0.05s")):
                await poller.poll()

    asyncio.run(scenario())


def test_background_rounds_call_back_with_new_nsqd_and_close_ends_the_task() -> None:
    fake = FakeLookupd()
    fake.answers = {"l1:4161": [_node("a", 4150)]}
    seen: list[list[str]] = []
    found = asyncio.Event()

    def on_new(addresses: list[str]) -> None:
        seen.append(addresses)
        found.set()

    async def scenario() -> None:
        poller = LookupdPoller(("l1:4161",), on_new, interval=0.01, fetch=fake)
        assert await poller.poll() == ["a:4150"]  # the first round is the owner's, not a callback
        baseline = asyncio.all_tasks()
        poller.start()
        assert poller.running and len(asyncio.all_tasks() - baseline) == 1
        fake.answers = {"l1:4161": _down("l1:4161")}  # failing rounds do not end the task
        calls = fake.calls
        async with asyncio.timeout(5):
            while fake.calls < calls + 3:
                fake.called.clear()
                await fake.called.wait()
            fake.answers = {"l1:4161": [_node("a", 4150), _node("b", 4150)]}
            await found.wait()
        assert seen == [["b:4150"]]
        await poller.close()
        await poller.close()
        assert not poller.running and asyncio.all_tasks() == baseline
        with pytest.raises(RuntimeError):
            poller.start()

    asyncio.run(scenario())


def test_poller_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        LookupdPoller(())
    with pytest.raises(ValueError):
        LookupdPoller(("l:4161",), interval=0)
