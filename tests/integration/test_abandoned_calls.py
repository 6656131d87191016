"""Abandoned calls are dropped: a caller that gives up tells the services, and leaves no reply behind.

Whether a procedure ran is read from what it appended, never from timing; nsqd's /stats is polled
with a deadline for what stays in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import almanet
from almanet._wire import protocol as _wire
from tests.cli.conftest import almanet as cli
from tests.cli.conftest import nsq_env
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.interop._nsqtools import to_nsq
from tests.support.nsqproc import NsqdProcess


def _reply_topics_with_messages(nsqd: NsqdProcess, session_id: str) -> list[str]:
    return [
        t["topic_name"]
        for t in nsqd.stats().get("topics") or []
        if t["topic_name"].startswith("_rpc_._reply_.")
        and session_id in t["topic_name"]
        and (int(t.get("depth") or 0) or any(int(c.get("depth") or 0) for c in t.get("channels") or []))
    ]


def test_a_call_cancelled_while_it_waits_behind_a_busy_procedure_never_runs(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("cx")
    uri = f"{prepath}.charge"
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath, max_concurrency=1)
    ran: list[str] = []
    release = asyncio.Event()

    @service.procedure
    async def charge(payload: str) -> str:
        ran.append(payload)
        if payload == "slow":
            await release.wait()
        return payload

    async def scenario() -> str:
        async with serving(service), joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as busy:
            slow = asyncio.ensure_future(busy.call(uri, "slow", timeout=30))
            await wait_for_async(lambda: ran == ["slow"], 5, message="the slow call did not start")
            async with joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as gone:
                abandoned = asyncio.ensure_future(gone.call(uri, "card-1", timeout=30))
                topic_stats = lambda: nsqd.topic_stats(f"_rpc_.{uri}") or {}  # noqa: E731
                await wait_for_async(
                    lambda: any(c["depth"] for c in topic_stats().get("channels") or []),
                    5,
                    message="the second call is not queued in nsqd",
                )
                abandoned.cancel()
                await asyncio.gather(abandoned, return_exceptions=True)
                running = service._running
                assert running is not None
                await wait_for_async(lambda: running.cancelled, 5, message="the cancel did not reach the service")
                gone_id = gone.id
            release.set()
            assert (await slow).payload == "slow"
            await wait_for_async(lambda: running.stale.get(uri) == 1, 5, message="the cancelled call was not dropped")
            assert (await busy.call(uri, "card-2", timeout=5)).payload == "card-2"
            return gone_id

    gone_id = run(scenario(), timeout=30)
    assert ran == ["slow", "card-2"]  # card-1 never ran
    assert _reply_topics_with_messages(nsqd, gone_id) == []


def test_leaving_with_a_call_in_flight_cancels_it_and_no_reply_stays(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    """What Ctrl-C in ``almanet call`` does: the session leaves with the call pending."""
    prepath = unique_name("lv")
    uri = f"{prepath}.charge"
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath, max_concurrency=1)
    ran: list[str] = []
    release = asyncio.Event()

    @service.procedure
    async def charge(payload: str) -> str:
        ran.append(payload)
        await release.wait()
        return payload

    async def scenario() -> str:
        async with serving(service):
            running = service._running
            assert running is not None
            session = almanet.new_session(nsqd.tcp_address, nsqd_http=nsqd.http_address)
            await session.join()
            pending = asyncio.ensure_future(session.call(uri, "running", timeout=30))
            await wait_for_async(lambda: ran == ["running"], 5, message="the call did not start")
            await session.leave()  # the call is running: its reply must not be left in nsqd
            assert pending.done()
            await wait_for_async(lambda: running.cancelled, 5, message="the cancel did not reach the service")
            release.set()
            await wait_for_async(lambda: not running.tasks and not running.replies, 5, message="still running")
            return session.id

    gone_id = run(scenario(), timeout=30)
    assert ran == ["running"]
    assert _reply_topics_with_messages(nsqd, gone_id) == []


def test_cancels_are_internal_topics() -> None:
    assert _wire.is_internal_topic(_wire.CANCEL_TOPIC)
    assert _wire.decode_cancel(_wire.encode_cancel("s", ["a", "b"])) == ["a", "b"]


def test_the_janitor_deletes_a_reply_topic_whose_caller_has_gone(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    """A caller killed -9 while its call ran: the reply lands in a reply topic nobody reads."""
    prepath = unique_name("jan")
    uri = f"{prepath}.echo"
    gone = f"_rpc_._reply_.{unique_name('gone')}#ephemeral"
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)
    service.reply_janitor_interval = 0.5
    ran: list[str] = []

    @service.procedure
    async def echo(payload: str) -> str:
        ran.append(payload)
        return payload

    invocation = {"id": "f" * 32, "caller_id": "e" * 32, "payload": "late", "reply_topic": gone}

    async def scenario() -> None:
        async with serving(service, nsqd_http=nsqd.http_address):
            await to_nsq(nsqd, f"_rpc_.{uri}", [invocation])
            await wait_for_async(lambda: ran == ["late"], 5, message="the invocation did not run")
            await wait_for_async(lambda: gone not in nsqd.topics(), 5, message="the orphaned reply topic stayed")

    run(scenario(), timeout=20)


def test_purge_stale_deletes_reply_topics_nobody_reads(
    nsqd: NsqdProcess, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    ours = f"_rpc_._reply_.{unique_name('ours')}#ephemeral"

    async def publish() -> None:
        await to_nsq(nsqd, ours, [{"call_id": "a" * 32, "is_error": False, "payload": 1}])

    run(publish())
    assert ours in nsqd.topics()
    done = cli("purge", "--stale", "--yes", "-o", "table", env=nsq_env(tmp_path, nsqd), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"delete topic {ours} on {nsqd.http_address} (1 invocation waiting)" in done.stdout.decode()
    assert ours not in nsqd.topics()


def test_ctrl_c_in_almanet_call_while_its_call_queues_means_it_never_runs(
    nsqd: NsqdProcess, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    """The issue's case as a user meets it: `almanet call` interrupted while a busy procedure holds
    its call in nsqd; the call must not run when the service gets to it."""
    import signal

    from tests.cli.conftest import start, stop

    prepath = unique_name("ctrlc")
    uri = f"{prepath}.charge"
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath, max_concurrency=1)
    ran: list[str] = []
    release = asyncio.Event()

    @service.procedure
    async def charge(payload: str) -> str:
        ran.append(payload)
        if payload == "slow":
            await release.wait()
        return payload

    env = nsq_env(tmp_path, nsqd)

    async def scenario() -> tuple[int, str]:
        async with serving(service), joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as busy:
            running = service._running
            assert running is not None
            slow = asyncio.ensure_future(busy.call(uri, "slow", timeout=30))
            await wait_for_async(lambda: ran == ["slow"], 5, message="the slow call did not start")
            proc = start("call", uri, '"card-1"', "--timeout", "30", env=env, cwd=tmp_path)
            topic_stats = lambda: nsqd.topic_stats(f"_rpc_.{uri}") or {}  # noqa: E731
            await wait_for_async(
                lambda: any(c["depth"] for c in topic_stats().get("channels") or []),
                15,
                message="the CLI's call is not queued in nsqd",
            )
            code, _, err = await asyncio.to_thread(stop, proc, signal.SIGINT)
            await wait_for_async(lambda: running.cancelled, 5, message="the cancel did not reach the service")
            release.set()
            assert (await slow).payload == "slow"
            await wait_for_async(lambda: running.stale.get(uri) == 1, 5, message="the cancelled call was not dropped")
            assert (await busy.call(uri, "card-2", timeout=5)).payload == "card-2"
            return code, err

    code, err = run(scenario(), timeout=60)
    assert code == 130, err
    assert ran == ["slow", "card-2"]  # card-1 never ran
