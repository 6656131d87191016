"""Routed RPC against a real nsqd: results, remote errors, validation, load sharing, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pydantic
import pytest

import almanet
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess, free_port


class Point(pydantic.BaseModel):
    x: int
    y: int


class out_of_stock(almanet.rpc_error):
    """A custom error, raised by a procedure and caught by the caller under the same name."""


def _service(nsqd: NsqdProcess, unique_name: Callable[..., str], **options: object) -> almanet.Service:
    return almanet.new_service(nsqd.tcp_address, prepath=unique_name("svc"), **options)


# -- results ---------------------------------------------------------------------------------------


def test_call_returns_payload(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)

    @service.procedure
    async def greeting(session: almanet.Almanet, payload: str) -> str:
        assert isinstance(session, almanet.Almanet)
        return f"Hello, {payload}!"

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            result = await session.call(f"{service.prepath}.greeting", "Aidar", timeout=5)
            assert isinstance(result, almanet.CallResult)
            assert result.payload == "Hello, Aidar!"
            assert len(result.call_id) == 32

    run(scenario())


def test_payload_only_and_no_arg_procedures(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)

    @service.procedure
    async def double(payload: int) -> int:
        return payload * 2

    @service.procedure
    async def constant(session: almanet.Almanet, payload: None) -> dict:
        return {"answer": 42}

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            assert (await session.call(f"{service.prepath}.double", 21, timeout=5)).payload == 42
            assert (await session.call(f"{service.prepath}.constant", timeout=5)).payload == {"answer": 42}
            # `payload: None` takes nothing: a payload sent to it is refused, never silently ignored
            with pytest.raises(almanet.ValidationError):
                await session.call(f"{service.prepath}.constant", "ignored", timeout=5)

    run(scenario())


def test_pydantic_payload_and_result(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)

    @service.procedure
    async def mirror(payload: Point) -> Point:
        assert isinstance(payload, Point)
        return Point(x=payload.y, y=payload.x)

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            result = await session.call(f"{service.prepath}.mirror", {"x": 1, "y": 2}, timeout=5)
            assert result.payload == {"x": 2, "y": 1}

    run(scenario())


# -- remote errors ---------------------------------------------------------------------------------


def test_custom_error_is_caught_as_callers_class_with_args(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)

    @service.procedure
    async def buy(payload: str) -> None:
        raise out_of_stock(payload, 3, {"warehouse": "north"})

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(out_of_stock) as caught:
                await session.call(f"{service.prepath}.buy", "apples", timeout=5)
            assert type(caught.value) is out_of_stock
            assert caught.value.args == ("apples", 3, {"warehouse": "north"})
            assert caught.value.name == "out_of_stock"

    run(scenario())


def test_unknown_error_name_becomes_plain_rpc_error(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)

    @service.procedure
    async def fail(session: almanet.Almanet, payload: None) -> None:
        # no class of this name exists in the caller's process
        raise almanet.rpc_error("it broke", name="no_such_error_class_anywhere")

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.rpc_error) as caught:
                await session.call(f"{service.prepath}.fail", timeout=5)
            assert type(caught.value) is almanet.rpc_error
            assert caught.value.name == "no_such_error_class_anywhere"
            assert caught.value.args == ("it broke",)

    run(scenario())


def test_unexpected_exception_is_internal_error_without_details(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    service = _service(nsqd, unique_name)

    @service.procedure
    async def crash(session: almanet.Almanet, payload: None) -> None:
        raise RuntimeError("secret database password hunter2")

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.InternalError) as caught:
                await session.call(f"{service.prepath}.crash", timeout=5)
            text = f"{caught.value} {caught.value.args!r}"
            assert "hunter2" not in text
            assert "RuntimeError" not in text
            assert "Traceback" not in text and "File " not in text

    run(scenario())


def test_timeout_when_nobody_serves(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await session.call(f"{unique_name('nobody')}.home", timeout=0.3)
            assert 0.25 <= time.monotonic() - started < 3

    run(scenario())


# -- validation ------------------------------------------------------------------------------------


def test_wrong_payload_field_is_validation_error_naming_it(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)
    ran = []

    @service.procedure
    async def place(payload: Point) -> int:
        ran.append(payload)
        return payload.x

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.ValidationError) as caught:
                await session.call(f"{service.prepath}.place", {"x": 1, "y": "not a number"}, timeout=5)
            assert "y" in str(caught.value)
            assert "payload.y" in str(caught.value)
            assert ran == []

    run(scenario())


def test_result_is_validated(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)

    @service.procedure
    async def count(session: almanet.Almanet, payload: None) -> int:
        return "many"  # type: ignore[return-value]

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.ValidationError) as caught:
                await session.call(f"{service.prepath}.count", timeout=5)
            assert "result" in str(caught.value)

    run(scenario())


# -- volume and topology ---------------------------------------------------------------------------


def _worker(label: str, seen: list[int]) -> Callable[[int], Awaitable[str]]:
    async def work(payload: int) -> str:
        seen.append(payload)
        await asyncio.sleep(0.001)  # hold the invocation a moment, so the other instance gets some
        return label

    return work


def _labelled(label: str) -> Callable[[str], Awaitable[str]]:
    async def who(payload: str) -> str:
        return f"{label}:{payload}"

    return who


def test_200_concurrent_calls(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(nsqd, unique_name)

    @service.procedure
    async def square(payload: int) -> int:
        await asyncio.sleep(0)  # yield, so invocations overlap
        return payload * payload

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            uri = f"{service.prepath}.square"
            results = await asyncio.gather(*(session.call(uri, i, timeout=8) for i in range(200)))
            assert [r.payload for r in results] == [i * i for i in range(200)]
            assert len({r.call_id for r in results}) == 200

    run(scenario())


def test_two_instances_share_the_load(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    prepath = unique_name("svc")
    seen: dict[str, list[int]] = {"a": [], "b": []}
    services = []
    for label in seen:
        # max_concurrency=1: each instance takes one invocation at a time, so nsqd must spread them
        service = almanet.new_service(nsqd.tcp_address, prepath=prepath, max_concurrency=1)
        service.procedure(_worker(label, seen[label]), name="work")
        services.append(service)

    async def scenario() -> None:
        async with serving(services[0]), serving(services[1]), joined(nsqd.tcp_address) as session:
            results = await asyncio.gather(*(session.call(f"{prepath}.work", i, timeout=8) for i in range(60)))
        answered_by = [r.payload for r in results]
        assert set(answered_by) == {"a", "b"}, answered_by
        assert seen["a"] and seen["b"]
        # every call was invoked exactly once across the two instances
        assert sorted(seen["a"] + seen["b"]) == list(range(60))
        for i, label in enumerate(answered_by):
            assert i in seen[label]

    run(scenario())


def test_multicall_gets_one_reply_per_channel(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    prepath = unique_name("svc")
    services = []
    for channel in ("A", "B"):
        service = almanet.new_service(nsqd.tcp_address, prepath=prepath)
        service.procedure(_labelled(channel), name="who", channel=channel)
        services.append(service)

    async def scenario() -> None:
        async with serving(services[0]), serving(services[1]), joined(nsqd.tcp_address) as session:
            replies = await session.multicall(f"{prepath}.who", "hi", timeout=1)
        assert all(isinstance(r, almanet.CallResult) for r in replies), replies
        assert sorted(r.payload for r in replies) == ["A:hi", "B:hi"]  # type: ignore[union-attr]

    run(scenario())


def test_delay_call_runs_after_the_delay(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    # nsqd (v1.3.0) scans the deferred queues of the channels it knew at its last queue-scan
    # refresh, every 5 s and not configurable: a channel made since then can add up to 5 s.
    service = _service(nsqd, unique_name)
    delay = 1.0

    async def scenario() -> None:
        ran = asyncio.Event()
        received = []

        @service.procedure
        async def later(payload: str) -> None:
            received.append(payload)
            ran.set()

        async with serving(service), joined(nsqd.tcp_address) as session:
            started = time.monotonic()
            call_id = await session.delay_call(f"{service.prepath}.later", "tick", delay=delay)
            assert len(call_id) == 32
            await asyncio.wait_for(ran.wait(), timeout=delay + 6)
            elapsed = time.monotonic() - started
        assert received == ["tick"]
        assert elapsed >= delay * 0.9, elapsed

    run(scenario())


# -- refused before sending ------------------------------------------------------------------------


def test_non_json_payload_is_invalid_argument_and_nothing_is_sent(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    uri = f"{unique_name('svc')}.anything"

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.invalid_argument):
                await session.call(uri, object(), timeout=1)
            with pytest.raises(almanet.invalid_argument):
                await session.call(uri, {"when": {1, 2}}, timeout=1)
            with pytest.raises(almanet.invalid_argument):
                await session.delay_call(uri, object(), delay=1)
            with pytest.raises(almanet.invalid_argument):
                await session.multicall(uri, object(), timeout=1)

    run(scenario())
    assert f"_rpc_.{uri}" not in nsqd.topics()


@pytest.mark.parametrize("uri", ["", "bad uri", "net..example", "net.example.", "a/b", "x" * 60, "ünï.code"])
def test_invalid_uri_is_invalid_argument(nsqd: NsqdProcess, uri: str) -> None:
    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.invalid_argument):
                await session.call(uri, timeout=1)
            with pytest.raises(almanet.invalid_argument):
                await session.delay_call(uri, None, delay=0)

    run(scenario())


def test_oversized_payload_is_refused_before_sending(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    uri = f"{unique_name('svc')}.big"
    payload = "x" * (1024 * 1024 + 1)

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.invalid_argument) as caught:
                await session.call(uri, payload, timeout=1)
            assert "bytes" in str(caught.value)
            with pytest.raises(almanet.invalid_argument):
                await session.delay_call(uri, payload, delay=0)
            # the session is still usable: nsqd did not drop the connection
            with pytest.raises(TimeoutError):
                await session.call(uri, "small", timeout=0.2)

    run(scenario())
    topics = nsqd.topics()
    # only the small call reached nsqd: the topic exists but holds one message, not the big one
    assert f"_rpc_.{uri}" in topics
    depth = next(t["depth"] for t in nsqd.stats()["topics"] if t["topic_name"] == f"_rpc_.{uri}")
    assert depth == 1


# -- session state and broker ----------------------------------------------------------------------


def test_session_used_before_join_or_after_leave(nsqd: NsqdProcess) -> None:
    async def scenario() -> None:
        session = almanet.new_session(nsqd.tcp_address)
        assert session.state == "unopened"
        with pytest.raises(almanet.session_state_error):
            await session.call("net.example.greeting", "x", timeout=1)
        with pytest.raises(almanet.session_state_error):
            await session.produce("some_topic", {"a": 1})
        async with session:
            assert session.state == "open"
        assert session.state == "closed"
        with pytest.raises(almanet.session_state_error):
            await session.call("net.example.greeting", "x", timeout=1)
        with pytest.raises(almanet.session_state_error):
            await session.multicall("net.example.greeting", "x", timeout=1)
        with pytest.raises(almanet.session_state_error):
            await session.produce("some_topic", {"a": 1})
        with pytest.raises(almanet.session_state_error):
            await session.join()

    run(scenario())


def test_broker_down_is_broker_error_with_address() -> None:
    address = f"127.0.0.1:{free_port()}"

    async def scenario() -> None:
        session = almanet.new_session(address)
        with pytest.raises(almanet.broker_error) as caught:
            async with session:
                pass  # pragma: no cover
        assert address in str(caught.value)
        assert isinstance(caught.value, almanet.almanet_error)

    run(scenario())
