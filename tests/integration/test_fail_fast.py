"""Fail fast: a call to a URI nothing serves fails at once, sends nothing, and says what is close.

Every case runs against real nsqd (one, two, or behind nsqlookupd); the verdict comes from their
/stats, so these tests also pin when almanet refuses to conclude (an nsqd it cannot read).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

import almanet
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.support.nsqproc import NsqdProcess, NsqlookupdProcess, free_port, wait_until


def _greeter(*addresses: str, prepath: str, **options: object) -> almanet.Service:
    service = almanet.new_service(*addresses, prepath=prepath, **options)  # type: ignore[arg-type]

    @service.procedure
    async def greeting(payload: str) -> str:
        return f"Hello, {payload}!"

    return service


def test_a_typo_fails_at_once_names_the_uri_suggests_the_live_one_and_leaves_no_topic(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("ff")
    service = _greeter(nsqd.tcp_address, prepath=prepath)

    async def scenario() -> tuple[float, almanet.timeout_error]:
        async with serving(service), joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
            assert (await session.call(f"{prepath}.greeting", "Aidar")).payload == "Hello, Aidar!"
            started = time.monotonic()
            with pytest.raises(TimeoutError) as caught:
                await session.call(f"{prepath}.greetin", "x", timeout=60)
            return time.monotonic() - started, caught.value  # type: ignore[return-value]

    elapsed, error = run(scenario())
    assert elapsed < 1.0
    assert isinstance(error, almanet.timeout_error) and error.reason == "not_served"
    assert f"nothing serves {prepath}.greetin" in str(error)
    assert f"did you mean {prepath}.greeting?" in str(error)
    assert f"_rpc_.{prepath}.greetin" not in nsqd.topics()


def test_with_two_nsqd_a_uri_served_on_either_is_not_refused_and_one_served_nowhere_is(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a, b = nsqd_factory(), nsqd_factory()
    prepath = unique_name("ff2")
    only_b = _greeter(b.tcp_address, prepath=prepath)

    async def scenario() -> None:
        async with (
            serving(only_b),
            joined(a.tcp_address, b.tcp_address, nsqd_http=(a.http_address, b.http_address)) as s,
        ):
            # the subscriber is on b only: not "nobody serves" (the call itself may queue on a)
            assert await s._caller.served(f"{prepath}.greeting") is True
            with pytest.raises(almanet.timeout_error) as caught:
                await s.call(f"{prepath}.nobody", timeout=30)
            assert caught.value.reason == "not_served"
            assert a.tcp_address in str(caught.value) and b.tcp_address in str(caught.value)

    run(scenario())


def test_an_nsqd_that_cannot_be_read_means_no_verdict_so_the_call_goes_out(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a, b = nsqd_factory(), nsqd_factory()
    uri = f"{unique_name('ff3')}.nobody"

    async def scenario() -> almanet.timeout_error:
        # b's HTTP API is not given and is not at its TCP port + 1: it could hold a subscriber
        async with joined(a.tcp_address, b.tcp_address, nsqd_http=a.http_address) as session:
            started = time.monotonic()
            with pytest.raises(almanet.timeout_error) as caught:
                await session.call(uri, timeout=0.5)
            assert time.monotonic() - started >= 0.5
            return caught.value

    error = run(scenario())
    assert error.reason == "unknown"
    assert f"nsqd {b.tcp_address}: its HTTP address is unknown" in str(error)


def test_through_nsqlookupd_alone(
    nsqlookupd: NsqlookupdProcess, nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    b = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    wait_until(lambda: len(nsqlookupd.nodes()) == 2, 10, message="nsqd did not register")
    prepath = unique_name("ffl")
    service = _greeter(prepath=prepath, lookupd=nsqlookupd.http_address)

    async def scenario() -> None:
        async with serving(service), joined(lookupd=nsqlookupd.http_address) as session:
            for _ in range(4):  # round robin over both nsqd
                assert (await session.call(f"{prepath}.greeting", "x", timeout=5)).payload == "Hello, x!"
            started = time.monotonic()
            with pytest.raises(almanet.timeout_error) as caught:
                await session.call(f"{prepath}.greet", timeout=30)
            assert time.monotonic() - started < 1.0
            assert caught.value.reason == "not_served" and "did you mean" in str(caught.value)

    run(scenario())
    assert f"_rpc_.{prepath}.greet" not in a.topics() and f"_rpc_.{prepath}.greet" not in b.topics()


def test_fail_fast_off_queues_for_a_service_that_starts_later(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("ffoff")
    service = _greeter(nsqd.tcp_address, prepath=prepath)

    async def scenario() -> str:
        async with joined(nsqd.tcp_address, nsqd_http=nsqd.http_address, fail_fast=False) as session:
            call = asyncio.ensure_future(session.call(f"{prepath}.greeting", "late", timeout=20))
            topic = f"_rpc_.{prepath}.greeting"
            await asyncio.to_thread(wait_until, lambda: topic in nsqd.topics(), 10, message="not published")
            async with serving(service):
                return (await call).payload

    assert run(scenario(), timeout=25) == "Hello, late!"


def test_multicall_of_a_uri_nothing_serves_returns_nothing_at_once(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    uri = f"{unique_name('ffm')}.nobody"

    async def scenario() -> float:
        async with joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
            started = time.monotonic()
            assert await session.multicall(uri, timeout=30) == []
            return time.monotonic() - started

    assert run(scenario()) < 1.0
    assert f"_rpc_.{uri}" not in nsqd.topics()


def test_nsqd_http_is_checked_like_every_address() -> None:
    with pytest.raises(almanet.invalid_argument, match="has no port; write host:port"):
        almanet.new_session("localhost:4150", nsqd_http="nonsense")
    # a closed port is a valid address: it only makes the verdict unknown
    almanet.new_session("localhost:4150", nsqd_http=f"127.0.0.1:{free_port()}")


def test_a_service_that_went_away_is_noticed_in_the_background(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("ffgone")
    service = _greeter(nsqd.tcp_address, prepath=prepath)
    topic = f"_rpc_.{prepath}.greeting"

    async def scenario() -> None:
        async with joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
            session._caller._liveness.interval = 0.1  # the background re-read, every 5 s by default
            async with serving(service):
                assert (await session.call(f"{prepath}.greeting", "x")).payload == "Hello, x!"
                assert session._caller._served == {topic: True}  # ours announce the deadline extension
            await wait_for_async(lambda: topic not in session._caller._served, 5, message="the cache kept it")
            started = time.monotonic()
            with pytest.raises(almanet.timeout_error) as caught:
                await session.call(f"{prepath}.greeting", "x", timeout=30)
            assert time.monotonic() - started < 1.0 and caught.value.reason == "not_served"

    run(scenario())
