"""Lifecycles against a real nsqd: nothing left behind, drain, reconnect after a crash, discovery."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

import almanet
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.support.nsqproc import NsqdProcess, wait_until

# nsqd's client states (nsqd/protocol_v2.go): subscribed, then closing once it has answered CLS.
STATE_SUBSCRIBED = 3
STATE_CLOSING = 4


def _channel(nsqd: NsqdProcess, topic: str, channel: str) -> dict[str, Any] | None:
    return nsqd.channel_stats(topic, channel)


async def _stats_channel(nsqd: NsqdProcess, topic: str, channel: str) -> dict[str, Any] | None:
    return await asyncio.to_thread(_channel, nsqd, topic, channel)


# -- nothing leaks ---------------------------------------------------------------------------------


def test_nothing_of_a_session_or_service_stays_in_nsqd(
    fresh_nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    nsqd = fresh_nsqd
    prepath = unique_name("svc")
    uri = f"{prepath}.echo"
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)

    @service.procedure
    async def echo(payload: Any) -> Any:
        return payload

    ids: dict[str, str] = {}

    async def scenario() -> None:
        await service.start()
        try:
            ids["service"] = service.session.id
            session = almanet.new_session(nsqd.tcp_address)
            async with session:
                ids["caller"] = session.id
                assert (await session.call(uri, "hi", timeout=5)).payload == "hi"
                assert len(await session.multicall("_api_schema_.client", timeout=0.5)) == 1
                # while both are alive, nsqd has their ephemeral topic and channels
                topics = await asyncio.to_thread(nsqd.topics)
                assert topics[f"_rpc_._reply_.{session.id}#ephemeral"] == ["rpc-recipient#ephemeral"]
                assert topics[f"_rpc_.{uri}"] == ["RPC#ephemeral"]
        finally:
            await service.stop()

    run(scenario())

    reply_topic = f"_rpc_._reply_.{ids['caller']}#ephemeral"
    # left behind by design: the non-ephemeral topics of the procedure, of discovery and of cancels
    # (one per bus), with no channel (nsqd never deletes a topic by itself; the channels were
    # ephemeral and are gone)
    expected = {
        f"_rpc_.{uri}": [],
        "_rpc_._api_schema_.client": [],
        f"_rpc_._api_schema_.{uri}.RPC": [],
        "_rpc_._cancel_": [],
    }

    def settled() -> bool:
        return nsqd.topics() == expected

    try:
        wait_until(settled, timeout=5, message="only the procedure, discovery and cancel topics remain")
    except AssertionError:
        raise AssertionError(f"nsqd still has {nsqd.topics()}; expected {expected}") from None
    topics = nsqd.topics()
    assert reply_topic not in topics
    assert all(ids["service"] not in c for channels in topics.values() for c in channels)
    # and no client connection is left open: no subscriber, no producer
    stats = nsqd.stats()
    assert not stats.get("producers"), stats.get("producers")
    # every connection closed cleanly: nsqd logged no protocol error (e.g. a second CLS)
    log = nsqd.log_tail(lines=500)
    assert "E_INVALID" not in log and "ERROR" not in log, log


def test_delay_call_leaves_no_reply_topic_behind(fresh_nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    """The reply to a delayed call must not create a reply topic that nobody ever deletes."""
    nsqd = fresh_nsqd
    service = almanet.new_service(nsqd.tcp_address, prepath=unique_name("svc"))

    async def scenario() -> str:
        ran = asyncio.Event()

        @service.procedure
        async def later(session: almanet.Almanet, payload: None) -> str:
            ran.set()
            return "done"

        async with serving(service), joined(nsqd.tcp_address) as session:
            await session.delay_call(f"{service.prepath}.later", None, delay=0)
            await asyncio.wait_for(ran.wait(), timeout=5)
            # the service's reply reaches nsqd before the session leaves
            reply_topic = f"_rpc_._reply_.{session.id}#ephemeral"
            await wait_for_async(
                lambda: asyncio.to_thread(_topic_message_count, nsqd, reply_topic),
                timeout=5,
                message="the reply published",
            )
            return reply_topic

    reply_topic = run(scenario())
    wait_until(lambda: reply_topic not in nsqd.topics(), timeout=5, message=f"{reply_topic} deleted")


def _topic_message_count(nsqd: NsqdProcess, topic: str) -> int:
    for t in nsqd.stats().get("topics") or []:
        if t["topic_name"] == topic:
            return t["message_count"]
    return 0


# -- drain -----------------------------------------------------------------------------------------


def test_stop_drains_an_invocation_in_flight(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = almanet.new_service(nsqd.tcp_address, prepath=unique_name("svc"))
    uri = f"{service.prepath}.slow"

    async def scenario() -> None:
        started, release = asyncio.Event(), asyncio.Event()

        @service.procedure
        async def slow(payload: str) -> str:
            started.set()
            await release.wait()
            return f"done {payload}"

        await service.start()
        service_id = service.session.id
        try:
            async with joined(nsqd.tcp_address) as session:
                call = asyncio.create_task(session.call(uri, "job", timeout=8))
                await asyncio.wait_for(started.wait(), timeout=5)
                stopping = asyncio.create_task(service.stop(drain_timeout=5))
                # nsqd has answered the service's CLS: it sends it nothing new from now on
                await wait_for_async(
                    lambda: _client_states(nsqd, f"_rpc_.{uri}", "RPC#ephemeral", {STATE_CLOSING}),
                    timeout=5,
                    message="the service's subscription closing",
                )
                assert not stopping.done() and not call.done()
                release.set()
                result = await asyncio.wait_for(call, timeout=5)
                assert result.payload == "done job"
                await asyncio.wait_for(stopping, timeout=5)
        finally:
            await service.stop()
        with pytest.raises(almanet.session_state_error):
            service.session  # noqa: B018 - the service has left
        await wait_for_async(
            lambda: asyncio.to_thread(
                lambda: (
                    all(service_id not in c for cs in nsqd.topics().values() for c in cs)
                    and _channel(nsqd, f"_rpc_.{uri}", "RPC#ephemeral") is None
                )
            ),
            timeout=5,
            message="the service's channels gone",
        )

    run(scenario())


async def _client_states(nsqd: NsqdProcess, topic: str, channel: str, states: set[int]) -> bool:
    stats = await _stats_channel(nsqd, topic, channel)
    return bool(stats and stats["clients"] and {c["state"] for c in stats["clients"]} <= states)


def test_drained_invocation_is_finished_not_redelivered(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    """Instance A drains a call while instance B stays: nsqd must see A's FIN, so B never reruns it."""
    prepath = unique_name("svc")
    uri = f"{prepath}.slow"
    topic, channel = f"_rpc_.{uri}", "RPC#ephemeral"

    async def scenario() -> None:
        started, release = asyncio.Event(), asyncio.Event()
        b_ran: list[str] = []
        a = almanet.new_service(nsqd.tcp_address, prepath=prepath)
        b = almanet.new_service(nsqd.tcp_address, prepath=prepath)

        @a.procedure(name="slow")
        async def slow_a(payload: str) -> str:
            started.set()
            await release.wait()
            return "a"

        @b.procedure(name="slow")
        async def slow_b(payload: str) -> str:
            b_ran.append(payload)
            return "b"

        await a.start()
        try:
            async with joined(nsqd.tcp_address) as session:
                call = asyncio.create_task(session.call(uri, "job", timeout=8))
                await asyncio.wait_for(started.wait(), timeout=5)
                async with serving(b):
                    stopping = asyncio.create_task(a.stop(drain_timeout=5))
                    await wait_for_async(
                        lambda: _client_count_in_state(nsqd, topic, channel, STATE_CLOSING, 1),
                        timeout=5,
                        message="A's subscription closing",
                    )
                    release.set()
                    assert (await asyncio.wait_for(call, timeout=5)).payload == "a"
                    await asyncio.wait_for(stopping, timeout=5)
                    # A is gone from the channel; its invocation must have been finished (FIN)
                    stats = await wait_for_async(
                        lambda: _only_clients(nsqd, topic, channel, 1),
                        timeout=5,
                        message="only B subscribed",
                    )
                    assert stats["in_flight_count"] == 0, "A left without finishing its invocation"
                    assert stats["requeue_count"] == 0
                    assert b_ran == []
        finally:
            await a.stop()

    run(scenario())


async def _client_count_in_state(nsqd: NsqdProcess, topic: str, channel: str, state: int, n: int) -> bool:
    stats = await _stats_channel(nsqd, topic, channel)
    return bool(stats) and sum(1 for c in stats["clients"] if c["state"] == state) == n  # type: ignore[index]


async def _only_clients(nsqd: NsqdProcess, topic: str, channel: str, n: int) -> dict[str, Any] | None:
    stats = await _stats_channel(nsqd, topic, channel)
    return stats if stats and stats["client_count"] == n else None


# -- reconnect -------------------------------------------------------------------------------------


def test_service_is_served_again_after_nsqd_crash_and_restart(
    fresh_nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    nsqd = fresh_nsqd
    service = almanet.new_service(nsqd.tcp_address, prepath=unique_name("svc"))
    uri = f"{service.prepath}.ping"

    @service.procedure
    async def ping(payload: int) -> int:
        return payload + 1

    async def call_until_answered(session: almanet.Almanet, deadline: float) -> int:
        attempt = 0
        while True:
            attempt += 1
            try:
                return (await session.call(uri, attempt, timeout=0.3)).payload
            except (TimeoutError, almanet.broker_error):
                if time.monotonic() > deadline:
                    raise

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            assert (await session.call(uri, 1, timeout=5)).payload == 2
            await asyncio.to_thread(nsqd.kill)
            await asyncio.to_thread(nsqd.restart)
            # the same caller session and the same service, both reconnected by themselves
            assert await call_until_answered(session, time.monotonic() + 7) > 1
            # and a new caller is answered at once
            async with joined(nsqd.tcp_address) as other:
                assert (await other.call(uri, 10, timeout=2)).payload == 11

    run(scenario())


# -- discovery -------------------------------------------------------------------------------------


def test_discovery_client_and_procedure_schemas(fresh_nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    nsqd = fresh_nsqd
    first = almanet.new_service(nsqd.tcp_address, prepath=unique_name("one"))
    second = almanet.new_service(nsqd.tcp_address, prepath=unique_name("two"))

    @first.procedure
    async def add(payload: list[int]) -> int:
        """Sum the numbers."""
        return sum(payload)

    @first.procedure
    async def hello(payload: str) -> str:
        return payload

    @second.procedure
    async def nothing(session: almanet.Almanet, payload: None) -> None:
        pass

    async def scenario() -> None:
        async with serving(first), serving(second), joined(nsqd.tcp_address) as session:
            replies = await session.multicall("_api_schema_.client", timeout=1)
            assert all(isinstance(r, almanet.CallResult) for r in replies), replies
            by_client = {r.payload["client"]: r.payload for r in replies}  # type: ignore[union-attr]
            assert len(replies) == 2
            assert set(by_client) == {first.session.id, second.session.id}

            info = by_client[first.session.id]
            assert info["version"] == 1
            assert sorted(info["routes"]) == sorted([f"{first.prepath}.add/RPC", f"{first.prepath}.hello/RPC"])
            assert info["prepath"] == first.prepath
            assert info["host"] == socket.gethostname()
            assert info["pid"] == os.getpid()
            assert {p["uri"] for p in info["procedures"]} == {f"{first.prepath}.add", f"{first.prepath}.hello"}
            assert by_client[second.session.id]["routes"] == [f"{second.prepath}.nothing/RPC"]

            described = await session.call(f"_api_schema_.{first.prepath}.add.RPC", timeout=5)
            schema = described.payload
            assert schema["uri"] == f"{first.prepath}.add"
            assert schema["channel"] == "RPC"
            assert schema["description"] == "Sum the numbers."
            assert schema["payload_json_schema"] == {"type": "array", "items": {"type": "integer"}}
            assert schema["return_json_schema"] == {"type": "integer"}
            assert schema["client"] == first.session.id

    run(scenario())
