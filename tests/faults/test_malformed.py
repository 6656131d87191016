"""Malformed invocations, published raw to a procedure's topic: no crash, no loop, nothing left.

Each body below is sent by ``to_nsq`` (an independent client), so almanet's encoder is not on
the sending side. The service must drop (FIN) every one it cannot read, answer the readable
ones (a bad payload is a ValidationError reply), never requeue, and keep serving.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import almanet
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.interop._nsqtools import to_nsq
from tests.support.nsqproc import NsqdProcess


def _invocation(**fields: Any) -> dict[str, Any]:
    base = {"id": uuid.uuid4().hex, "caller_id": uuid.uuid4().hex, "payload": 1, "reply_topic": "faults_replies"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def _bodies(own_topic: str) -> list[bytes]:
    good = _invocation()
    raw = [
        b"not json",
        b"{",
        b"[]",
        b"null",
        b"42",
        b'"a string"',
        b"{}",
        b"\xff\xfe\x00\x01",
        b"[" * 5000 + b"]" * 5000,  # deeper than any JSON parser's limit
        b'{"id": "x", "caller_id": "y", "payload": NaN, "reply_topic": "faults_replies"}',
        json.dumps(good).encode()[:-1],  # cut short
        b'{"id": "a", "id": "b", "caller_id": "y", "payload": 1, "reply_topic": "faults_replies"}',
        b'{"id": "\xff", "caller_id": "y", "payload": 1, "reply_topic": "faults_replies"}',
    ]
    shaped = [
        _invocation(id=...),
        _invocation(reply_topic=...),
        _invocation(extra=True),
        _invocation(id=5),
        _invocation(caller_id=None),
        _invocation(reply_topic=7),
        _invocation(reply_topic="bad topic!"),
        _invocation(reply_topic="x" * 70),
        _invocation(reply_topic=""),
        _invocation(reply_topic=own_topic),  # its reply lands on its own topic: dropped, not looped
        _invocation(payload="not an int"),  # well-formed: answered with a ValidationError
        _invocation(payload={"deep": [[[[1]]]]}),  # answered with a ValidationError
    ]
    return raw + [json.dumps(b, separators=(",", ":")).encode() for b in shaped]


def test_malformed_invocations_are_dropped_and_the_service_keeps_serving(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    service = almanet.new_service(nsqd.tcp_address, prepath=unique_name("malformed"))
    uri = f"{service.prepath}.double"
    topic = f"_rpc_.{uri}"

    @service.procedure
    async def double(payload: int) -> int:
        return payload * 2

    bodies = _bodies(topic)
    assert len(bodies) == 25

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            replies = session.consume("faults_replies", unique_name("r") + "#ephemeral")
            async with replies:
                await to_nsq(nsqd, topic, [b for b in bodies if b"\n" not in b])

                def settled() -> bool:
                    # one more than sent: the reply that went to the procedure's own topic, dropped too
                    channel = nsqd.channel_stats(topic, "RPC#ephemeral")
                    return (
                        bool(channel)
                        and channel["message_count"] == len(bodies) + 1
                        and channel["depth"] == 0
                        and (channel["in_flight_count"] == 0)
                    )

                await wait_for_async(settled, 15, message="the service did not settle every invocation")
                answered = []
                async for message in replies:
                    answered.append(json.dumps(message.body["payload"]))
                    await message.commit()
                    if len(answered) == 3:
                        break
                # the readable invocations were answered: a bad payload with a ValidationError, and
                # duplicate keys as JSON reads them (the last wins)
                refused = [
                    "payload: expected integer, got str 'not an int'",
                    "payload: expected integer, got dict {'deep': [[[[1]]]]}",
                ]
                expected = ["2", *(json.dumps({"name": "ValidationError", "message": [m]}) for m in refused)]
                assert sorted(answered) == sorted(expected)
                # and the service still answers
                assert (await session.call(uri, 21, timeout=5)).payload == 42

    run(scenario(), timeout=40)
    channel = nsqd.channel_stats(topic, "RPC#ephemeral")
    assert channel is None or channel["requeue_count"] == 0  # no loop
