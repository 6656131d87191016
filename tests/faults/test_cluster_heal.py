"""A cluster of nsqd that loses a node, or has one freeze, and heals by itself.

kill -9 and restart on the same port and data dir: the producer reconnects in the background and
the restarted nsqd gets publishes again (it used to get none until every other node had failed).
SIGSTOP: a node that does not acknowledge leaves the round robin at once, what it held is
published elsewhere, and it comes back once it answers (SIGCONT). A subscription on a silent
nsqd (no heartbeats) is treated as dead and resubscribed when the node answers again.
No timing is asserted beyond generous deadlines: the machine is shared.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import almanet
from almanet._nsq.options import ConnectionOptions
from almanet._settings.config import load_settings
from almanet._settings.configure import session_options
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.support.nsqproc import NsqdProcess


def _count(nsqd: NsqdProcess, topic: str) -> int:
    stats = nsqd.topic_stats(topic)
    return int(stats["message_count"]) if stats else 0


def _adder(addresses: tuple[str, ...], prepath: str) -> almanet.Service:
    service = almanet.new_service(*addresses, prepath=prepath)

    @service.procedure
    async def add(payload: list[int]) -> int:
        return sum(payload)

    return service


def test_a_restarted_nsqd_gets_publishes_again(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    nodes = [nsqd_factory() for _ in range(3)]
    addresses = tuple(n.tcp_address for n in nodes)
    service = _adder(addresses, unique_name("heal"))
    uri = f"{service.prepath}.add"
    topic = f"_rpc_.{uri}"
    victim = nodes[1]

    async def scenario() -> None:
        async with serving(service), joined(*addresses) as session:
            for i in range(30):
                assert (await session.call(uri, [i, 1], timeout=5)).payload == i + 1
            assert all(_count(n, topic) > 0 for n in nodes)  # the round robin used all three
            await asyncio.to_thread(victim.kill)
            for i in range(30):  # the survivors answer meanwhile
                assert (await session.call(uri, [i, 2], timeout=5)).payload == i + 2
            await asyncio.to_thread(victim.restart)
            before = await asyncio.to_thread(_count, victim, topic)  # the data dir kept the old count

            async def victim_used_again() -> bool:
                assert (await session.call(uri, [1, 1], timeout=5)).payload == 2
                return await asyncio.to_thread(_count, victim, topic) > before

            await wait_for_async(victim_used_again, 20, interval=0.05, message="the restarted nsqd got no publish")

    run(scenario(), timeout=60)


def test_a_frozen_nsqd_leaves_the_round_robin_and_returns(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    a, b = nsqd_factory(), nsqd_factory()
    addresses = (a.tcp_address, b.tcp_address)
    service = _adder(addresses, unique_name("frozen"))
    uri = f"{service.prepath}.add"
    topic = f"_rpc_.{uri}"
    calls = 20

    async def scenario() -> None:
        async with serving(service), joined(*addresses) as session:
            for i in range(10):
                assert (await session.call(uri, [i, 0], timeout=5)).payload == i
            failed = 0
            b.freeze()
            try:
                for i in range(calls):  # sequential, each with a 2 s timeout
                    try:
                        assert (await session.call(uri, [i, 3], timeout=2)).payload == i + 3
                    except TimeoutError:
                        failed += 1
            finally:
                b.thaw()
            # before: every other call went to the frozen node and waited out its timeout
            assert failed <= 2, f"{failed} of {calls} calls failed while one of two nsqd was frozen"
            frozen_count = await asyncio.to_thread(_count, b, topic)

            async def b_used_again() -> bool:
                assert (await session.call(uri, [1, 1], timeout=5)).payload == 2
                return await asyncio.to_thread(_count, b, topic) > frozen_count

            await wait_for_async(b_used_again, 20, interval=0.05, message="the thawed nsqd got no publish")

    run(scenario(), timeout=90)


def test_a_subscription_on_a_silent_nsqd_is_treated_as_dead(
    fresh_nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    nsqd = fresh_nsqd
    topic = unique_name("hb")
    options = dataclasses.replace(ConnectionOptions(), heartbeat_interval_ms=1000)  # silent after 3 s

    async def scenario() -> None:
        async with joined(nsqd.tcp_address, options=options) as session:
            subscription = session.consume(topic, "c")
            async with subscription:
                consumer = subscription._consumer
                assert consumer is not None and consumer.connected == 1
                nsqd.freeze()
                try:
                    await wait_for_async(lambda: consumer.connected == 0, 15, message="a silent nsqd was not dropped")
                finally:
                    nsqd.thaw()
                await wait_for_async(lambda: consumer.connected == 1, 20, message="no resubscription")
                await session.produce(topic, {"after": "thaw"})
                message = await asyncio.wait_for(anext(aiter(subscription)), 10)
                assert message.body == {"after": "thaw"}
                await message.commit()

    run(scenario(), timeout=60)


def test_the_liveness_settings_drop_a_frozen_nsqd_within_their_bound(
    fresh_nsqd: NsqdProcess, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    """``[liveness]`` from the environment, as `almanet serve` reads it: heartbeat 4 s would drop
    a silent connection after 9 s (two heartbeats + 1); silent_after = 4.5 drops it sooner."""
    nsqd = fresh_nsqd
    topic = unique_name("live")
    env = {
        "HOME": str(tmp_path),
        "ALMANET_NSQD": nsqd.tcp_address,
        "ALMANET_HEARTBEAT": "4",
        "ALMANET_SILENT_AFTER": "4.5",
    }
    options = session_options(load_settings(env=env, cwd=tmp_path))

    async def scenario() -> float:
        async with almanet.new_session(nsqd.tcp_address, **options) as session:
            subscription = session.consume(topic, "c")
            async with subscription:
                consumer = subscription._consumer
                assert consumer is not None and consumer.connected == 1
                loop = asyncio.get_running_loop()
                nsqd.freeze()
                frozen_at = loop.time()
                try:
                    await wait_for_async(lambda: consumer.connected == 0, 30, message="a silent nsqd was not dropped")
                    dropped_after = loop.time() - frozen_at
                finally:
                    nsqd.thaw()
                await wait_for_async(lambda: consumer.connected == 1, 20, message="no resubscription")
                return dropped_after

    dropped_after = run(scenario(), timeout=60)
    # not before the bound (a healthy idle connection is kept), well before the derived 9 s
    assert 4.4 <= dropped_after < 8.5, dropped_after
