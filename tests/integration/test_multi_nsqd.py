"""Two nsqd: a service subscribes on both; a caller publishes to either (round robin)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import almanet
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess


def _message_count(nsqd: NsqdProcess, topic: str) -> int:
    for t in nsqd.stats().get("topics") or []:
        if t["topic_name"] == topic:
            return t["message_count"]
    return 0


def _add_service(addresses: tuple[str, ...], prepath: str) -> almanet.Service:
    service = almanet.new_service(*addresses, prepath=prepath)

    @service.procedure
    async def add(payload: list[int]) -> int:
        return sum(payload)

    return service


def test_service_on_both_answers_a_caller_that_knows_one(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a, b = nsqd_factory(), nsqd_factory()
    service = _add_service((a.tcp_address, b.tcp_address), unique_name("svc"))
    uri = f"{service.prepath}.add"

    async def scenario() -> None:
        async with serving(service):
            for only in (a, b):
                async with joined(only.tcp_address) as session:
                    results = await asyncio.gather(*(session.call(uri, [i, 1], timeout=5) for i in range(10)))
                    assert [r.payload for r in results] == [i + 1 for i in range(10)]

    run(scenario())
    # each caller's invocations went to its own nsqd, and the service answered there
    assert _message_count(a, f"_rpc_.{uri}") == 10
    assert _message_count(b, f"_rpc_.{uri}") == 10


def test_caller_on_both_gets_every_call_answered(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a, b = nsqd_factory(), nsqd_factory()
    service = _add_service((a.tcp_address, b.tcp_address), unique_name("svc"))
    uri = f"{service.prepath}.add"
    calls = 40

    async def scenario() -> None:
        async with serving(service), joined(a.tcp_address, b.tcp_address) as session:
            results = await asyncio.gather(*(session.call(uri, [i, i], timeout=5) for i in range(calls)))
            assert [r.payload for r in results] == [2 * i for i in range(calls)]
            # sequential calls too: each is answered whichever nsqd it was published to
            for i in range(6):
                assert (await session.call(uri, [i], timeout=5)).payload == i

    run(scenario())
    on_a, on_b = _message_count(a, f"_rpc_.{uri}"), _message_count(b, f"_rpc_.{uri}")
    assert on_a + on_b == calls + 6
    assert on_a > 0 and on_b > 0, (on_a, on_b)  # round robin used both


def test_caller_on_both_fails_over_when_one_is_down(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a, b = nsqd_factory(), nsqd_factory()
    service = _add_service((a.tcp_address, b.tcp_address), unique_name("svc"))
    uri = f"{service.prepath}.add"

    async def scenario() -> None:
        async with serving(service), joined(a.tcp_address, b.tcp_address) as session:
            assert (await session.call(uri, [1, 2], timeout=5)).payload == 3
            await asyncio.to_thread(b.kill)
            # b is gone: every call now goes to a and is answered there
            for i in range(6):
                assert (await session.call(uri, [i, 1], timeout=5)).payload == i + 1

    run(scenario())
