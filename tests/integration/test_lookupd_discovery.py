"""nsqd found through nsqlookupd: at join, and while the session runs (lookupd polled every 0.2 s).

The second nsqd (B) starts after the service or the subscription: only the polling can find it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import almanet
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.support.nsqproc import NsqdProcess, NsqlookupdProcess, free_port, wait_until

INTERVAL = 0.2


def _registered(lookupd: NsqlookupdProcess, *nsqd: NsqdProcess) -> None:
    wanted = {n.tcp_address for n in nsqd}

    def listed() -> bool:
        return wanted <= {f"{n['broadcast_address']}:{n['tcp_port']}" for n in lookupd.nodes()}

    wait_until(listed, timeout=5, message=f"{sorted(wanted)} in lookupd /nodes")


def _start_registered(nsqd_factory: Callable[..., NsqdProcess], lookupd: NsqlookupdProcess) -> NsqdProcess:
    nsqd = nsqd_factory(lookupd_tcp_addresses=[lookupd.tcp_address])
    _registered(lookupd, nsqd)
    return nsqd


def _ready_counts(nsqd: NsqdProcess, topic: str, channel: str) -> list[int]:
    return [c["ready_count"] for c in (nsqd.channel_stats(topic, channel) or {}).get("clients") or []]


def test_service_with_lookupd_only_answers_on_an_nsqd_started_later(
    nsqlookupd: NsqlookupdProcess, nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a = _start_registered(nsqd_factory, nsqlookupd)
    service = almanet.new_service(
        prepath=unique_name("svc"), lookupd=(nsqlookupd.http_address,), lookupd_interval=INTERVAL
    )

    @service.procedure
    async def add(payload: list[int]) -> int:
        return sum(payload)

    uri = f"{service.prepath}.add"

    async def answered_on_b(session: almanet.Almanet) -> bool:
        try:
            return (await session.call(uri, [2, 3], timeout=0.3)).payload == 5
        except TimeoutError:
            return False

    async def scenario() -> None:
        async with serving(service):
            assert service.session.addresses == (a.tcp_address,)  # found at join
            async with joined(a.tcp_address) as on_a:
                assert (await on_a.call(uri, [1, 2], timeout=5)).payload == 3
            b = await asyncio.to_thread(_start_registered, nsqd_factory, nsqlookupd)
            async with joined(b.tcp_address) as on_b:  # a caller that knows only B
                await wait_for_async(lambda: answered_on_b(on_b), timeout=6, message="a call on B answered")
                assert service.session.addresses == (a.tcp_address, b.tcp_address)
                results = await asyncio.gather(*(on_b.call(uri, [i, 1], timeout=5) for i in range(5)))
                assert [r.payload for r in results] == [i + 1 for i in range(5)]

    run(scenario())


def test_a_lookupd_only_caller_gets_replies_from_an_nsqd_started_after_its_first_call(
    nsqlookupd: NsqlookupdProcess, nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a = _start_registered(nsqd_factory, nsqlookupd)
    prepath = unique_name("svc")
    uri = f"{prepath}.echo"

    async def answered(session: almanet.Almanet) -> bool:
        try:
            return (await session.call(uri, "hi", timeout=0.3)).payload == "hi"
        except TimeoutError:
            return False

    async def scenario() -> None:
        async with joined(lookupd=nsqlookupd.http_address, lookupd_interval=INTERVAL) as caller:
            assert caller.addresses == (a.tcp_address,)
            assert await caller.multicall(uri, None, timeout=0.1) == []  # the reply subscription, on A only
            b = await asyncio.to_thread(_start_registered, nsqd_factory, nsqlookupd)
            service = almanet.new_service(b.tcp_address, prepath=prepath)  # serves on B only

            @service.procedure
            async def echo(payload: str) -> str:
                return payload

            async with serving(service):
                # invocations published to B are answered on B, where the caller now reads replies too
                await wait_for_async(lambda: answered(caller), timeout=6, message="a call answered through B")
                assert caller.addresses == (a.tcp_address, b.tcp_address)

    run(scenario())


def test_consume_started_before_an_nsqd_existed_receives_what_is_produced_there(
    nsqlookupd: NsqlookupdProcess, nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a = _start_registered(nsqd_factory, nsqlookupd)
    topic, channel = unique_name(), unique_name("ch")

    async def scenario() -> None:
        received: list[object] = []
        async with joined(lookupd=nsqlookupd.http_address, lookupd_interval=INTERVAL) as session:
            assert session.addresses == (a.tcp_address,)
            async with session.consume(topic, channel, max_in_flight=100) as messages:
                await wait_for_async(
                    lambda: _ready_counts(a, topic, channel) == [100], timeout=5, message="RDY 100 on A"
                )

                async def collect() -> None:
                    async for message in messages:
                        received.append(message.body)
                        await message.commit()

                collector = asyncio.ensure_future(collect())
                try:
                    b = await asyncio.to_thread(_start_registered, nsqd_factory, nsqlookupd)
                    await wait_for_async(
                        lambda: b.tcp_address in session.addresses, timeout=5, message="B found through lookupd"
                    )
                    # the subscription made before B existed is now on B too, and its RDY is
                    # shared: max_in_flight 100 over two nsqd is 50 on each
                    await wait_for_async(
                        lambda: _ready_counts(b, topic, channel) == [50],
                        timeout=5,
                        message="the consume() subscription on B with RDY 50",
                    )
                    await wait_for_async(
                        lambda: _ready_counts(a, topic, channel) == [50], timeout=5, message="RDY 50 again on A"
                    )
                    async with joined(b.tcp_address) as on_b:  # knows only B: the message is on B
                        await on_b.produce(topic, {"from": "b-only"})
                    # and the lookupd-only session publishes to B too (round robin over A and B)
                    sent = 0

                    async def published_on_b() -> bool:
                        nonlocal sent
                        await session.produce(topic, {"n": sent})
                        sent += 1
                        return ((b.topic_stats(topic) or {}).get("message_count") or 0) > 1

                    await wait_for_async(published_on_b, timeout=5, message="the session publishing to B")
                    expected = [{"from": "b-only"}, *({"n": i} for i in range(sent))]
                    await wait_for_async(
                        lambda: len(received) >= len(expected), timeout=5, message="every message received"
                    )
                    assert sorted(map(str, received)) == sorted(map(str, expected))
                finally:
                    collector.cancel()
                    await asyncio.gather(collector, return_exceptions=True)

    run(scenario())


def test_join_with_lookupd_down_and_no_nsqd_names_the_lookupd() -> None:
    down = f"127.0.0.1:{free_port()}"

    async def scenario() -> None:
        session = almanet.new_session(lookupd=(down,))
        with pytest.raises(almanet.broker_error) as info:
            await session.join()
        assert down in str(info.value) and "nsqlookupd" in str(info.value)
        assert session.state == "unopened"

    run(scenario())


def test_join_with_lookupd_down_but_an_nsqd_given_joins_and_keeps_asking(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    down = f"127.0.0.1:{free_port()}"

    async def scenario() -> None:
        async with joined(nsqd.tcp_address, lookupd=down, lookupd_interval=INTERVAL) as session:
            assert session.addresses == (nsqd.tcp_address,)
            await session.produce(unique_name(), {"ok": True})

    run(scenario())


def test_leave_stops_the_poller_and_closes_every_connection(
    nsqlookupd: NsqlookupdProcess, nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a = _start_registered(nsqd_factory, nsqlookupd)
    topic, channel = unique_name(), unique_name("ch")

    async def scenario() -> None:
        baseline = asyncio.all_tasks()
        session = almanet.new_session(lookupd=(nsqlookupd.http_address,), lookupd_interval=INTERVAL)
        await session.join()
        pollers = [t for t in asyncio.all_tasks() - baseline if "nsqlookupd poller" in t.get_name()]
        assert len(pollers) == 1
        subscription = session.consume(topic, channel)
        await subscription.start()
        await session.produce(topic, "x")
        assert (a.channel_stats(topic, channel) or {}).get("clients")
        await session.leave()
        assert asyncio.all_tasks() == baseline
        assert pollers[0].done()
        assert not session.broker._producer._connections and not session.broker._consumers
        await wait_for_async(
            lambda: not (a.channel_stats(topic, channel) or {}).get("clients"),
            timeout=5,
            message="no subscriber left on nsqd",
        )
        await wait_for_async(
            lambda: not (a.stats().get("producers") or []), timeout=5, message="no publisher left on nsqd"
        )

    run(scenario())
