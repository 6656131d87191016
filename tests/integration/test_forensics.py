"""Timeout forensics: each reason produced for real, from nsqd /stats and the caller's records.

A hand-written "service" (a plain consume() on the procedure's topic) makes the reply go wrong in
the ways a real service can: a reply that is not a valid reply object, one that comes too late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

import almanet
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.support.nsqproc import NsqdProcess, free_port


async def _timed_out(session: almanet.Almanet, uri: str, payload: Any, timeout: float) -> tuple[Any, float]:
    started = time.monotonic()
    with pytest.raises(almanet.timeout_error) as caught:
        await session.call(uri, payload, timeout=timeout)
    return caught.value, time.monotonic() - started


def test_delivered_and_still_running(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    prepath = unique_name("fr")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)
    release = asyncio.Event()

    @service.procedure
    async def slow(payload: None = None) -> None:
        await release.wait()

    async def scenario() -> tuple[Any, float]:
        async with serving(service), joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
            try:
                return await _timed_out(session, f"{prepath}.slow", None, 0.5)
            finally:
                release.set()

    error, elapsed = run(scenario())
    assert error.reason == "running"
    assert "delivered and still running (1 in flight on 1 instance" in str(error)
    assert error.facts["in_flight"] == 1 and error.facts["instances"] == 1
    assert elapsed < 0.5 + 1.2  # within about a second more


def test_not_served_after_the_timeout_when_fail_fast_is_off(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    uri = f"{unique_name('fr')}.nobody"

    async def scenario() -> tuple[Any, float]:
        async with joined(nsqd.tcp_address, nsqd_http=nsqd.http_address, fail_fast=False) as session:
            return await _timed_out(session, uri, None, 0.3)

    error, elapsed = run(scenario())
    assert error.reason == "not_served" and elapsed >= 0.3
    assert f"nothing serves {uri}" in str(error) and f"almanet purge {uri}" in str(error)


def test_a_reply_that_cannot_be_read_is_reported_as_lost(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    uri = f"{unique_name('fr')}.bad"

    async def scenario() -> tuple[Any, float]:
        async with joined(nsqd.tcp_address) as server, joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as s:
            # a "service" that stays subscribed and answers with a key a reply must not have
            async with server.consume(f"_rpc_.{uri}", "RPC#ephemeral") as messages:
                await wait_for_async(lambda: f"_rpc_.{uri}" in nsqd.topics(), 5, message="not subscribed")
                call = asyncio.ensure_future(_timed_out(s, uri, None, 0.5))
                message = await anext(messages)
                invocation = message.body
                reply = {"call_id": invocation["id"], "is_error": False, "payload": 1, "extra": True}
                await server.produce(invocation["reply_topic"], reply)
                await message.commit()
                return await call

    error, _ = run(scenario())
    assert error.reason == "reply_lost"
    assert "the reply could not be read (reply keys are" in str(error)


def test_a_reply_after_the_deadline_is_reported_as_late(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    uri = f"{unique_name('fr')}.late"

    async def scenario() -> tuple[Any, float]:
        async with joined(nsqd.tcp_address) as server, joined(nsqd.tcp_address, nsqd_http=nsqd.http_address) as s:
            async with server.consume(f"_rpc_.{uri}", "RPC#ephemeral") as messages:
                await wait_for_async(lambda: f"_rpc_.{uri}" in nsqd.topics(), 5, message="not subscribed")
                call = asyncio.ensure_future(_timed_out(s, uri, None, 0.5))
                message = await anext(messages)
                await message.commit()  # finished first: nothing waits or runs any more
                # answered only once the caller's deadline has passed (its forensics started)
                await wait_for_async(lambda: s._caller._autopsies, 5, message="the call did not time out")
                invocation = message.body
                reply = {"call_id": invocation["id"], "is_error": False, "payload": 1}
                await server.produce(invocation["reply_topic"], reply)
                return await call

    error, elapsed = run(scenario())
    assert error.reason == "reply_lost"
    assert "the reply came" in str(error) and "after the deadline" in str(error)
    assert 0.0 <= error.facts["late_by"] < 1.0
    assert elapsed < 0.5 + 1.2


def test_unknown_says_what_could_not_be_read(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    prepath = unique_name("fr")
    service = almanet.new_service(nsqd.tcp_address, prepath=prepath)
    release = asyncio.Event()

    @service.procedure
    async def slow(payload: None = None) -> None:
        await release.wait()

    closed = f"127.0.0.1:{free_port()}"

    async def scenario() -> tuple[Any, float]:
        async with serving(service), joined(nsqd.tcp_address, nsqd_http=closed) as session:
            try:
                return await _timed_out(session, f"{prepath}.slow", None, 0.3)
            finally:
                release.set()

    error, _ = run(scenario())
    assert error.reason == "unknown"
    assert f"nsqd {nsqd.tcp_address}: its HTTP address is unknown" in str(error)
