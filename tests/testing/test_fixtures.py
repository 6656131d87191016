"""The plugin's fixtures in use, the way a user's test uses them, under pytest-asyncio and anyio.

Every scenario is written once and run by both plugins (the two test classes at the bottom).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import almanet
from almanet.testing import NsqCluster, NsqdProcess, wait_until


class fixture_refused(almanet.rpc_error):
    """A procedure's own error, as a user's service defines one."""


def make_service(prefix: str) -> almanet.Service:
    # pointed at a port nothing listens on: served() must override the address
    service = almanet.new_service("127.0.0.1:1", prepath=prefix, lookupd="127.0.0.1:2")

    @service.procedure
    async def echo(payload: str) -> str:
        if payload == "no":
            raise fixture_refused("not this one")
        return payload.upper()

    @service.procedure
    async def relay(session: almanet.Almanet, payload: str) -> str:
        # a service that calls another procedure and produces a message: what expect_* watch
        await session.produce(f"{prefix.replace('.', '_')}_events", {"relayed": payload})
        with pytest.raises(TimeoutError):
            await session.call(f"{prefix}.downstream", {"from": payload}, timeout=0.3)
        return "relayed"

    return service


class Scenarios:
    """The scenarios; subclasses choose the async plugin that runs them."""

    async def test_served_and_session(self, served: Any, session: almanet.Almanet, nsqd: NsqdProcess) -> None:
        service = make_service("fx.a")
        async with served(service) as running:
            assert running is service
            # subscribed on the fixture's nsqd, as nsqd itself reports it
            assert "RPC#ephemeral" in nsqd.topics()["_rpc_.fx.a.echo"]
            assert (await session.call("fx.a.echo", "hi", timeout=5)).payload == "HI"
            with pytest.raises(fixture_refused):
                await session.call("fx.a.echo", "no", timeout=5)
        # after the block the service left: nsqd drops its ephemeral channel, and nobody answers
        wait_until(lambda: nsqd.channel_stats("_rpc_.fx.a.echo", "RPC#ephemeral") is None, timeout=5)
        with pytest.raises(TimeoutError):
            await session.call("fx.a.echo", "hi", timeout=0.3)

    async def test_expect_call_and_message(
        self, served: Any, session: almanet.Almanet, expect_call: Any, expect_message: Any
    ) -> None:
        service = make_service("fx.b")
        async with served(service):
            downstream = expect_call("fx.b.downstream")
            event = expect_message("fx_b_events")
            assert (await session.call("fx.b.relay", "x", timeout=5)).payload == "relayed"
            call = await downstream
            message = await event
        assert call.uri == "fx.b.downstream"
        assert call.payload == {"from": "x"}
        assert call.caller_id == service_session_id(call)
        assert message.body == {"relayed": "x"}
        assert message.topic == "fx_b_events"

    async def test_expectation_as_context_manager(self, session: almanet.Almanet, expect_message: Any) -> None:
        async with expect_message("fx_c_events") as seen:
            await session.produce("fx_c_events", [1, 2])
        assert seen.result.body == [1, 2]

    async def test_expectation_times_out_as_a_test_failure(self, expect_call: Any, expect_message: Any) -> None:
        with pytest.raises(AssertionError, match=r"no call of 'fx.d.never' within 0.2s"):
            await expect_call("fx.d.never", timeout=0.2)
        with pytest.raises(AssertionError, match=r"no message on 'fx_d_never' within 0.2s"):
            await expect_message("fx_d_never", timeout=0.2)

    async def test_expectation_sees_only_what_comes_after_it(
        self, session: almanet.Almanet, expect_message: Any
    ) -> None:
        await session.produce("fx_e_events", "before")
        seen = expect_message("fx_e_events")
        await session.produce("fx_e_events", "after")
        assert (await seen).body == "after"

    async def test_fresh_nsqd_is_the_one_used(
        self, served: Any, session: almanet.Almanet, nsqd: NsqdProcess, fresh_nsqd: NsqdProcess
    ) -> None:
        assert fresh_nsqd.tcp_address != nsqd.tcp_address
        async with served(make_service("fx.f")):
            assert "_rpc_.fx.f.echo" in fresh_nsqd.topics()
            assert "_rpc_.fx.f.echo" not in nsqd.topics()
            assert session.addresses == (fresh_nsqd.tcp_address,)

    async def test_served_on_a_cluster(self, served: Any, nsq_cluster: Any) -> None:
        cluster: NsqCluster = nsq_cluster(2)
        assert len(cluster.lookupd.nodes()) == 2
        async with served(make_service("fx.g"), nsqd=cluster):
            for nsqd in cluster.nsqds:  # subscribed on both before served() returned
                assert nsqd.channel_stats("_rpc_.fx.g.echo", "RPC#ephemeral")["clients"]
            async with almanet.new_session(*cluster.tcp_addresses) as session:
                results = await asyncio.gather(*(session.call("fx.g.echo", str(i), timeout=5) for i in range(6)))
        assert [r.payload for r in results] == [str(i) for i in range(6)]


def service_session_id(call: Any) -> str:
    """The caller of ``downstream`` is the service's own session: its reply topic names it."""
    return call.reply_topic.removeprefix("_rpc_._reply_.").removesuffix("#ephemeral")


@pytest.mark.asyncio
class TestUnderPytestAsyncio(Scenarios):
    pass


@pytest.mark.anyio
class TestUnderAnyio(Scenarios):
    pass


def test_session_needs_an_async_test(tmp_path: Path) -> None:
    """A sync test asking for ``session`` fails with one line that names the fix."""
    (tmp_path / "test_sync.py").write_text("def test_it(session):\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sync.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout
    assert "1 error" in done.stdout
    assert "the 'session' fixture needs an async test run by pytest-asyncio (@pytest.mark.asyncio)" in done.stdout
