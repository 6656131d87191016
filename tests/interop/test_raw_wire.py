"""Our sessions and services against hand-written 0.7.0-style messages, through NSQ's own tools.

Nothing of almanet is on the other side: ``to_nsq`` publishes the raw JSON we write here and
``nsq_tail`` prints the raw bodies almanet publishes, so these tests pin the bytes of the
protocol (docs/protocol.md), not our own encoder agreeing with our own decoder.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest

import almanet
from tests.interop._example import denied
from tests.interop._nsqtools import tail, to_nsq
from tests.support.nsqproc import NsqdProcess, new_name, wait_until

HEX32 = re.compile(r"[0-9a-f]{32}")


def make_service(prepath: str) -> almanet.Service:
    service = almanet.new_service(prepath=prepath)

    @service.procedure
    async def greeting(session: almanet.Almanet, payload: str) -> str:
        """Return a greeting; "guest" is denied."""
        if payload == "guest":
            raise denied()
        return f"Hello, {payload}!"

    @service.procedure
    async def boom(session: almanet.Almanet, payload: Any) -> None:
        raise RuntimeError("a secret that must not reach the caller")

    return service


async def serving(nsqd: NsqdProcess) -> tuple[almanet.Service, str]:
    prepath = f"interop.{new_name('raw')}"
    service = make_service(prepath)
    await service.start((nsqd.tcp_address,))
    return service, prepath


def invocation(payload: Any, reply_topic: str) -> dict[str, Any]:
    """An invocation exactly as almanet 0.7.0 writes it."""
    return {"id": uuid.uuid4().hex, "caller_id": uuid.uuid4().hex, "payload": payload, "reply_topic": reply_topic}


# ------------------------------------------------------------------ a raw caller, our service


@pytest.mark.parametrize(
    ("payload", "is_error", "expected"),
    [
        ("Aidar", False, "Hello, Aidar!"),
        ("guest", True, {"name": "denied", "message": []}),
        (5, True, {"name": "ValidationError", "message": ["payload: expected string, got int 5"]}),
    ],
    ids=["result", "custom-error", "validation-error"],
)
def test_raw_invocation_gets_an_exact_reply(nsqd: NsqdProcess, payload: Any, is_error: bool, expected: Any) -> None:
    async def scenario() -> None:
        service, prepath = await serving(nsqd)
        try:
            # 0.7.0's callers use a non-ephemeral reply topic named after the session
            call = invocation(payload, f"_rpc_._reply_.{uuid.uuid4().hex}")
            async with tail(nsqd, call["reply_topic"]) as replies:
                await to_nsq(nsqd, f"_rpc_.{prepath}.greeting", [call])
                raw = await replies.next_line()
        finally:
            await service.stop()
        reply = json.loads(raw)
        assert list(reply) == ["call_id", "is_error", "payload"], raw
        assert reply == {"call_id": call["id"], "is_error": is_error, "payload": expected}

    asyncio.run(scenario())


def test_unexpected_exception_is_an_internal_error_without_internals(nsqd: NsqdProcess) -> None:
    async def scenario() -> None:
        service, prepath = await serving(nsqd)
        try:
            call = invocation(None, f"_rpc_._reply_.{uuid.uuid4().hex}#ephemeral")
            async with tail(nsqd, call["reply_topic"]) as replies:
                await to_nsq(nsqd, f"_rpc_.{prepath}.boom", [call])
                reply = await replies.next_json()
        finally:
            await service.stop()
        assert set(reply) == {"call_id", "is_error", "payload"}
        assert reply["call_id"] == call["id"] and reply["is_error"] is True
        error = reply["payload"]
        assert set(error) == {"name", "message"}
        assert error["name"] == "InternalError"
        assert isinstance(error["message"], list) and len(error["message"]) == 1
        assert "secret" not in json.dumps(error)
        assert call["id"] in error["message"][0]  # the invocation id, to find the service's log line

    asyncio.run(scenario())


def test_many_raw_invocations_each_get_their_reply(nsqd: NsqdProcess) -> None:
    async def scenario() -> None:
        service, prepath = await serving(nsqd)
        reply_topic = f"_rpc_._reply_.{uuid.uuid4().hex}#ephemeral"
        calls = [invocation(f"n{i}", reply_topic) for i in range(20)]
        try:
            async with tail(nsqd, reply_topic, count=len(calls)) as replies:
                await to_nsq(nsqd, f"_rpc_.{prepath}.greeting", calls)
                got = [await replies.next_json() for _ in calls]
        finally:
            await service.stop()
        assert {r["call_id"]: r["payload"] for r in got} == {c["id"]: f"Hello, {c['payload']}!" for c in calls}

    asyncio.run(scenario())


def test_raw_discovery_answers_with_routes_and_schemas(nsqd: NsqdProcess) -> None:
    async def scenario() -> None:
        service, prepath = await serving(nsqd)
        try:
            session_id = service.session.id
            topics = nsqd.topics()
            assert topics[f"_rpc_.{prepath}.greeting"] == ["RPC#ephemeral"]
            # every session answers discovery on a channel of its own, so each one gets a copy
            assert f"{session_id}#ephemeral" in topics["_rpc_._api_schema_.client"]
            reply_topic = f"_rpc_._reply_.{uuid.uuid4().hex}#ephemeral"
            client = invocation(None, reply_topic)
            describe = invocation(None, reply_topic)
            wanted = {client["id"], describe["id"]}
            got: dict[str, Any] = {}
            # other modules' services may still answer discovery on this shared nsqd: keep ours
            async with tail(nsqd, reply_topic, count=100) as replies:
                await to_nsq(nsqd, "_rpc_._api_schema_.client", [client])
                await to_nsq(nsqd, f"_rpc_._api_schema_.{prepath}.greeting.RPC", [describe])
                while wanted - got.keys():
                    reply = await replies.next_json()
                    if reply["call_id"] in wanted and reply["payload"]["client"] == session_id:
                        got[reply["call_id"]] = reply
        finally:
            await service.stop()
        info = got[client["id"]]
        assert set(info) == {"call_id", "is_error", "payload"} and info["is_error"] is False
        info = info["payload"]
        assert info["version"] == 1
        assert sorted(info["routes"]) == [f"{prepath}.boom/RPC", f"{prepath}.greeting/RPC"]
        # almanet's extension keys (a 0.7.0 caller takes the payload as it is)
        assert {"prepath", "host", "pid", "started_at", "procedures", "stale"} <= set(info)
        schema = got[describe["id"]]["payload"]
        assert schema == {
            "client": session_id,
            "version": 1,
            "uri": f"{prepath}.greeting",
            "channel": "RPC",
            "tags": [],
            "description": 'Return a greeting; "guest" is denied.',
            "payload_json_schema": {"type": "string"},
            "return_json_schema": {"type": "string"},
            "stale_after": 60.0,  # almanet's extension: invocations older than this are dropped unrun
        }

    asyncio.run(scenario())


# ------------------------------------------------------------------ our caller, a raw responder


def test_our_call_is_a_070_invocation_and_takes_a_raw_reply(nsqd: NsqdProcess) -> None:
    uri = f"interop.{new_name('resp')}.echo"

    async def scenario() -> None:
        async with almanet.new_session(nsqd.tcp_address) as session:
            async with tail(nsqd, f"_rpc_.{uri}", "responder#ephemeral") as responder:
                call = asyncio.create_task(session.call(uri, {"name": "Aidar", "n": [1, 2]}, timeout=10))
                raw = await responder.next_line()
                body = json.loads(raw)
                assert list(body) == ["id", "caller_id", "payload", "reply_topic"], raw
                assert HEX32.fullmatch(body["id"])
                assert body["caller_id"] == session.id and HEX32.fullmatch(session.id)
                assert body["payload"] == {"name": "Aidar", "n": [1, 2]}
                assert body["reply_topic"] == f"_rpc_._reply_.{session.id}#ephemeral"
                assert body["reply_topic"].endswith("#ephemeral")
                await to_nsq(nsqd, body["reply_topic"], [{"call_id": body["id"], "is_error": False, "payload": "hi"}])
                result = await call
        assert result.payload == "hi"
        assert result.call_id == body["id"]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("error", "expected_class", "expected_args"),
    [
        ({"name": "denied", "message": "not for guests"}, denied, ("not for guests",)),  # 0.7.0's string variant
        ({"name": "InternalError", "message": "oops"}, almanet.InternalError, ("oops",)),
        ({"name": "denied", "message": ["a", 1]}, denied, ("a", 1)),
        ({"name": "NoSuchClassHere", "message": []}, almanet.rpc_error, ()),
    ],
    ids=["string-message", "070-internal-error", "list-message", "unknown-name"],
)
def test_raw_error_replies_are_raised_by_name(
    nsqd: NsqdProcess, error: dict[str, Any], expected_class: type[almanet.rpc_error], expected_args: tuple[Any, ...]
) -> None:
    uri = f"interop.{new_name('err')}.fails"

    async def scenario() -> None:
        async with almanet.new_session(nsqd.tcp_address) as session:
            async with tail(nsqd, f"_rpc_.{uri}", "responder#ephemeral") as responder:
                call = asyncio.create_task(session.call(uri, None, timeout=10))
                body = await responder.next_json()
                await to_nsq(nsqd, body["reply_topic"], [{"call_id": body["id"], "is_error": True, "payload": error}])
                with pytest.raises(almanet.rpc_error) as caught:
                    await call
        # by name: another `denied` subclass defined later in this process would be the one raised
        assert type(caught.value).__name__ == expected_class.__name__
        assert caught.value.name == error["name"]
        assert caught.value.args == expected_args

    asyncio.run(scenario())


def test_the_caller_keeps_the_first_reply_and_drops_duplicates(nsqd: NsqdProcess) -> None:
    """At-least-once delivery can run a procedure twice for one call; the caller sees one result."""
    uri = f"interop.{new_name('dup')}.twice"

    async def scenario() -> None:
        async with almanet.new_session(nsqd.tcp_address) as session:
            async with tail(nsqd, f"_rpc_.{uri}", "responder#ephemeral", count=2) as responder:
                call = asyncio.create_task(session.call(uri, 1, timeout=10))
                body = await responder.next_json()
                replies = [{"call_id": body["id"], "is_error": False, "payload": p} for p in ("first", "second")]
                await to_nsq(nsqd, body["reply_topic"], replies)
                assert (await call).payload == "first"
                # the duplicate was consumed and dropped; the next call gets its own reply
                call = asyncio.create_task(session.call(uri, 2, timeout=10))
                body = await responder.next_json()
                await to_nsq(nsqd, body["reply_topic"], [{"call_id": body["id"], "is_error": False, "payload": 2}])
                assert (await call).payload == 2

    asyncio.run(scenario())


def test_a_session_leaves_only_shared_topics_behind(fresh_nsqd: NsqdProcess) -> None:
    """Channels are ephemeral and the reply topic too: what stays is the topics others share."""

    async def scenario() -> tuple[str, str]:
        service, prepath = await serving(fresh_nsqd)
        try:
            async with almanet.new_session(fresh_nsqd.tcp_address) as session:
                assert (await session.call(f"{prepath}.greeting", "x", timeout=10)).payload == "Hello, x!"
                assert f"_rpc_._reply_.{session.id}#ephemeral" in fresh_nsqd.topics()
        finally:
            await service.stop()
        return prepath, session.id

    prepath, _ = asyncio.run(scenario())
    expected = {
        f"_rpc_.{prepath}.greeting": [],
        f"_rpc_.{prepath}.boom": [],
        "_rpc_._api_schema_.client": [],
        f"_rpc_._api_schema_.{prepath}.greeting.RPC": [],
        f"_rpc_._api_schema_.{prepath}.boom.RPC": [],
        # one per bus, like discovery's: cancels published while no instance is up wait there
        "_rpc_._cancel_": [],
    }
    wait_until(lambda: fresh_nsqd.topics() == expected, 10, message=f"leftovers: {fresh_nsqd.topics()}")
