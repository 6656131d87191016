"""Every public call refuses a bad timeout, delay, size or name with ``almanet.invalid_argument``.

Table-driven: each row is a call with one bad argument. A refusal must come at once (a NaN
timeout used to wait forever, a string timeout raised a raw TypeError) and leave the session
usable. The rollback rows also check that a refused delay never reaches nsqd, where an
out-of-range REQ is a fatal error that drops the connection and every message in flight on it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import almanet
from tests.integration._aio import joined, run
from tests.support.nsqproc import NsqdProcess

NAN, INF = math.nan, math.inf
BAD_TIMEOUTS = [NAN, INF, -INF, -1, 0, "5", True, b"5", [5]]
BAD_DELAYS = [NAN, INF, -1, -0.001, 3600.5, 7200, "5", True, [1]]
BAD_COUNTS = [0, -1, 1.5, "5", True, NAN]
URI = "faults.args.nobody"  # nothing serves it: a refused call must not even be published


def _id(value: Any) -> str:
    return repr(value)


SessionCall = Callable[[almanet.Almanet, Any], Coroutine[Any, Any, Any]]

SESSION_CASES: dict[str, tuple[SessionCall, list[Any]]] = {
    "call timeout": (lambda s, v: s.call(URI, 1, timeout=v), BAD_TIMEOUTS),
    "multicall timeout": (lambda s, v: s.multicall(URI, 1, timeout=v), BAD_TIMEOUTS),
    "delay_call delay": (lambda s, v: s.delay_call(URI, 1, v), BAD_DELAYS),
    "produce delay": (lambda s, v: s.produce("faults_args", 1, delay=v), [d for d in BAD_DELAYS if d not in (0,)]),
    "call uri": (lambda s, v: s.call(v, 1, timeout=1), ["bad uri!", "", "a" * 100, 5]),
    "produce topic": (lambda s, v: s.produce(v, 1), ["bad topic!", "", "a" * 70, "x#ephemeral#"]),
    "produce size": (lambda s, v: s.produce("faults_args", v), ["x" * (1024 * 1024 + 1)]),
    "produce payload": (lambda s, v: s.produce("faults_args", v), [{1, 2}, object()]),
}
ROWS = [(name, value) for name, (_, values) in SESSION_CASES.items() for value in values]


@pytest.fixture(scope="module")
def addresses(nsqd: NsqdProcess) -> tuple[str, ...]:
    return (nsqd.tcp_address,)


@pytest.mark.parametrize(("case", "value"), ROWS, ids=[f"{n}={_id(v)}"[:60] for n, v in ROWS])
def test_session_refuses(addresses: tuple[str, ...], case: str, value: Any) -> None:
    make, _ = SESSION_CASES[case]

    async def scenario() -> None:
        async with joined(*addresses) as session:
            with pytest.raises(almanet.invalid_argument) as refused:
                await asyncio.wait_for(make(session, value), 5)  # a hang fails here, as TimeoutError
            assert "\n" not in str(refused.value)
            # still usable: a good call of the same kind goes through to nsqd
            await session.produce("faults_args", {"after": case})

    run(scenario(), timeout=15)


CONSTRUCTOR_CASES: list[tuple[str, Callable[[Any], Any], list[Any]]] = [
    ("new_session default_timeout", lambda v: almanet.new_session("127.0.0.1:1", default_timeout=v), BAD_TIMEOUTS),
    ("new_session max_message_size", lambda v: almanet.new_session("127.0.0.1:1", max_message_size=v), BAD_COUNTS),
    (
        "new_session lookupd_interval",
        lambda v: almanet.new_session(lookupd="127.0.0.1:1", lookupd_interval=v),
        BAD_TIMEOUTS,
    ),
    ("new_session address", lambda v: almanet.new_session(v), ["localhost", "host:port", "h:0", "h:70000"]),
    ("new_service max_concurrency", lambda v: almanet.new_service(max_concurrency=v), BAD_COUNTS),
    ("new_service drain_timeout", lambda v: almanet.new_service(drain_timeout=v), [NAN, INF, -1, "5", True]),
    ("new_service prepath", lambda v: almanet.new_service(prepath=v), ["bad prepath!", "a" * 100]),
]
CROWS = [(name, make, v) for name, make, values in CONSTRUCTOR_CASES for v in values]


@pytest.mark.parametrize(("case", "make", "value"), CROWS, ids=[f"{n}={_id(v)}"[:60] for n, _, v in CROWS])
def test_constructor_refuses(case: str, make: Callable[[Any], Any], value: Any) -> None:
    with pytest.raises(almanet.invalid_argument):
        make(value)


@pytest.mark.parametrize("value", [*BAD_COUNTS, -5])
def test_consume_refuses_max_in_flight(addresses: tuple[str, ...], value: Any) -> None:
    async def scenario() -> None:
        async with joined(*addresses) as session:
            with pytest.raises(almanet.invalid_argument):
                session.consume("faults_args", "c", max_in_flight=value)
            with pytest.raises(almanet.invalid_argument):
                session.consume("faults_args", "c", max_attempts=value)

    run(scenario())


def test_consume_refuses_bad_names(addresses: tuple[str, ...]) -> None:
    async def scenario() -> None:
        async with joined(*addresses) as session:
            for topic, channel in [("bad topic!", "c"), ("t", "bad channel!"), ("", "c"), ("t", "")]:
                with pytest.raises(almanet.invalid_argument):
                    session.consume(topic, channel)

    run(scenario())


def test_service_stop_refuses_a_bad_drain_timeout() -> None:
    service = almanet.new_service()

    async def scenario() -> None:
        for value in (NAN, -1, "5"):
            with pytest.raises(almanet.invalid_argument):
                await service.stop(drain_timeout=value)

    run(scenario())


@pytest.mark.parametrize("delay", BAD_DELAYS, ids=_id)
def test_rollback_refuses_a_bad_delay_and_keeps_the_connection(
    nsqd: NsqdProcess, unique_name: Callable[..., str], delay: Any
) -> None:
    """A refused rollback sends nothing: the message stays ours, and the others on its connection too."""
    topic = unique_name("rb")

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            await session.produce_many(topic, [1, 2])
            async with session.consume(topic, "c", max_in_flight=2) as messages:
                first = await anext(messages)
                second = await anext(messages)
                with pytest.raises(almanet.invalid_argument):
                    await first.rollback(delay)
                assert not first.handled
                await first.rollback(0)  # a good one still works, on the same connection
                await second.commit()
                again = await asyncio.wait_for(anext(messages), 10)
                assert again.body == first.body and again.attempts == 2
                await again.commit()

    run(scenario(), timeout=20)
    channel = nsqd.channel_stats(topic, "c")
    assert channel is not None
    assert channel["requeue_count"] == 1 and channel["timeout_count"] == 0
