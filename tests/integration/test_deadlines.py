"""No late runs: an invocation whose caller gave up is finished without running it.

Checked by the procedures' side effects (what they appended), never by timing alone: a procedure
that ran leaves its payload in a list.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

import almanet
from almanet._wire import deadline as _deadline
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.interop._nsqtools import tail, to_nsq
from tests.support.nsqproc import NsqdProcess


def _discovered_stale(replies: list[Any], session_id: str) -> dict[str, int]:
    for reply in replies:
        if getattr(reply, "payload", {}).get("client") == session_id:
            return reply.payload["stale"]
    raise AssertionError(f"service {session_id} did not answer discovery")


def _in_flight(nsqd: NsqdProcess, topic: str) -> int:
    stats = nsqd.topic_stats(topic) or {}
    return sum(c["in_flight_count"] for c in stats.get("channels") or [])


def test_a_call_queued_behind_a_slow_procedure_is_never_run_and_is_counted(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("dl")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath, max_concurrency=1)
    ran: list[str] = []
    release = asyncio.Event()

    @service.procedure
    async def charge(payload: str) -> str:
        ran.append(payload)
        if payload == "slow":
            await release.wait()
        return payload

    async def scenario() -> tuple[almanet.timeout_error, dict[str, int]]:
        async with serving(service), joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
            uri = f"{prepath}.charge"
            slow = asyncio.ensure_future(session.call(uri, "slow", timeout=30))
            await wait_for_async(lambda: ran == ["slow"], 5, message="the slow call did not start")
            with pytest.raises(almanet.timeout_error) as caught:
                await session.call(uri, "card-1", timeout=1)
            release.set()
            assert (await slow).payload == "slow"
            # the queued invocation is delivered now, past its deadline: dropped and counted
            stale: dict[str, int] = {}

            async def counted() -> bool:
                nonlocal stale
                stale = _discovered_stale(
                    await session.multicall("_api_schema_.client", timeout=0.5), service.session.id
                )
                return stale.get(uri) == 1

            await wait_for_async(counted, 5, message="the stale invocation was not counted")
            assert (await session.call(uri, "card-2", timeout=5)).payload == "card-2"
            return caught.value, stale

    error, _ = run(scenario(), timeout=20)
    assert ran == ["slow", "card-2"]  # card-1 never ran
    assert error.reason == "queued"
    assert error.facts["depth"] == 1 and error.facts["instances"] == 1


def test_a_service_started_after_a_timed_out_call_does_not_run_it(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("later")
    uri = f"{prepath}.charge"
    ran: list[str] = []
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)  # stale_after: the default 60 s

    @service.procedure
    async def charge(payload: str) -> str:
        ran.append(payload)
        return payload

    async def scenario() -> None:
        # fail-fast on (the default): refused, nothing published
        async with joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
            with pytest.raises(almanet.timeout_error) as caught:
                await session.call(uri, "card-1", timeout=1)
            assert caught.value.reason == "not_served"
        assert f"_rpc_.{uri}" not in nsqd.topics()
        # fail-fast off, and a session that cannot read /stats at all: the invocation waits in
        # nsqd with the plain four keys (nobody said it understands the key), but its id carries
        # the caller's 0.3 s, so the service started afterwards drops it unrun
        for options in ({"nsqd_http": nsqd.http_address, "fail_fast": False}, {}):
            async with joined(nsqd.tcp_address, **options) as session:
                with pytest.raises(almanet.timeout_error):
                    await session.call(uri, "card-2", timeout=0.3)
                assert _queued(nsqd, f"_rpc_.{uri}") >= 1
        async with serving(service), joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
            assert (await session.call(uri, "card-3", timeout=5)).payload == "card-3"
            assert service._running is not None
            await wait_for_async(
                lambda: service._running is not None and service._running.stale == {uri: 2},
                5,
                message="the two late invocations were not dropped as stale",
            )

    run(scenario(), timeout=20)
    assert ran == ["card-3"]


def _queued(nsqd: NsqdProcess, topic: str) -> int:
    stats = nsqd.topic_stats(topic) or {}
    return int(stats.get("depth", 0)) + sum(c["depth"] for c in stats.get("channels") or [])


def test_a_plain_invocation_older_than_stale_after_is_dropped_and_a_fresh_one_answered(
    nsqd: NsqdProcess, unique_name: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """What a 0.7.0 caller sends (four keys, published by go-nsq's to_nsq): only its age tells."""
    prepath = unique_name("plain")
    uri = f"{prepath}.echo"
    reply_topic = f"_rpc_._reply_.{unique_name('r')}"
    ran: list[str] = []
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath, stale_after=0.5)

    @service.procedure
    async def echo(payload: str) -> str:
        ran.append(payload)
        return payload

    def invocation(payload: str) -> dict[str, Any]:
        return {"id": "a" * 31 + str(len(ran)), "caller_id": "b" * 32, "payload": payload, "reply_topic": reply_topic}

    async def scenario() -> Any:
        await to_nsq(nsqd, f"_rpc_.{uri}", [invocation("old")])
        published = time.time()
        await wait_for_async(lambda: time.time() > published + 0.6, 5, message="clock")
        async with tail(nsqd, reply_topic) as replies, serving(service):
            await to_nsq(nsqd, f"_rpc_.{uri}", [{**invocation("fresh"), "id": "c" * 32}])
            return await replies.next_json()

    with caplog.at_level("WARNING", logger="almanet._service"):
        reply = run(scenario(), timeout=20)
    assert reply == {"call_id": "c" * 32, "is_error": False, "payload": "fresh"}
    assert ran == ["fresh"]
    stale_lines = [r.getMessage() for r in caplog.records if "stale invocation" in r.getMessage()]
    assert len(stale_lines) == 1
    assert uri in stale_lines[0] and "older than stale_after=0.5s" in stale_lines[0]


def test_stale_after_off_runs_an_old_invocation(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    prepath = unique_name("keep")
    uri = f"{prepath}.echo"
    ran: list[str] = []
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath, stale_after=0.2)

    @service.procedure(stale_after=None)
    async def echo(payload: str) -> str:
        ran.append(payload)
        return payload

    async def scenario() -> None:
        body = {"id": "d" * 32, "caller_id": "e" * 32, "payload": "old", "reply_topic": f"_rpc_._reply_.{prepath}"}
        await to_nsq(nsqd, f"_rpc_.{uri}", [json.dumps(body)])
        published = time.time()
        await wait_for_async(lambda: time.time() > published + 0.3, 5, message="clock")
        async with serving(service):
            await wait_for_async(lambda: ran == ["old"], 5, message="the old invocation did not run")

    run(scenario())


def test_stale_after_is_checked() -> None:
    for bad in (-1, float("nan"), "60", float("inf")):
        with pytest.raises(almanet.invalid_argument, match="stale_after must be"):
            almanet.new_service(prepath="x", stale_after=bad)  # type: ignore[arg-type]
    service = almanet.new_service(prepath="x")
    with pytest.raises(almanet.invalid_argument, match="stale_after must be"):
        service.procedure(stale_after=-2)(_noop)
    assert service.procedure(stale_after=0)(_noop) and service.procedures["x._noop"].stale_after is None


async def _noop(payload: None = None) -> None:
    return None


def test_nested_calls_get_what_is_left_of_the_callers_budget(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("nest")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)
    seen: dict[str, Any] = {}

    @service.procedure
    async def inner(payload: float) -> float | None:
        budget = _deadline.budget.get()
        left = None if budget is None else budget - time.time()
        seen.setdefault("inner_budget", left)
        await asyncio.sleep(payload)
        return left

    @service.procedure
    async def outer(session: almanet.Almanet, payload: str) -> str:
        started = time.monotonic()
        try:
            if payload == "late":
                await asyncio.sleep(1.2)  # past the caller's 1 s: nothing is left to pass on
            await session.call(f"{prepath}.inner", 10.0 if payload == "slow" else 0.0, timeout=30)
        except almanet.timeout_error as exc:
            seen[payload] = (exc.reason, time.monotonic() - started)
            return exc.reason
        return "answered"

    async def scenario() -> None:
        # the service's own session must read /stats too, to send its nested calls' deadline
        async with (
            serving(service, nsqd_http=nsqd.http_address),
            joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session,
        ):
            assert (await session.call(f"{prepath}.outer", "fast", timeout=5)).payload == "answered"
            # the explicit timeout=30 of the nested call was capped by the caller's 5 s
            assert 3.5 < seen["inner_budget"] <= 5.0
            # the nested call gets 1.5 s less a margin for the outer reply: its timeout comes
            # back to the outer caller as an answer within the outer call's own 1.5 s
            answered = await session.call(f"{prepath}.outer", "slow", timeout=1.5)
            assert answered.payload == "running"
            with pytest.raises(almanet.timeout_error):
                await session.call(f"{prepath}.outer", "late", timeout=1)
            await wait_for_async(lambda: "late" in seen, 5, message="the late call did not end")

    run(scenario(), timeout=30)
    reason, elapsed = seen["slow"]
    assert reason == "running" and elapsed < 1.5  # within the outer budget, margin left; not 30 s
    assert seen["late"][0] == "budget"
