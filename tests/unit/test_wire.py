"""almanet._wire.protocol: the message shapes on NSQ, compatible with almanet 0.7.0 both ways."""

from __future__ import annotations

import datetime
import json
import re
import uuid

import pytest

from almanet._nsq.names import is_ephemeral, is_valid_name
from almanet._wire import protocol as _wire
from almanet._wire.protocol import (
    Invocation,
    Reply,
    WireError,
    channel_name,
    check_uri,
    decode_invocation,
    decode_reply,
    describe_uri,
    encode_invocation,
    encode_reply,
    error_payload,
    new_id,
    parse_error_payload,
    reply_topic,
    rpc_topic,
)

SESSION_ID = "0123456789abcdef0123456789abcdef"
REPLY_TOPIC = reply_topic(SESSION_ID)


def _invocation(**overrides: object) -> dict[str, object]:
    value: dict[str, object] = {"id": "c1", "caller_id": "s1", "payload": {"x": 1}, "reply_topic": REPLY_TOPIC}
    value.update(overrides)
    return value


# -- invocations -------------------------------------------------------------------------------


def test_invocation_has_exactly_the_four_0_7_0_keys() -> None:
    body = encode_invocation("call-1", "caller-1", ["a", 1, None], REPLY_TOPIC)
    assert json.loads(body) == {
        "id": "call-1",
        "caller_id": "caller-1",
        "payload": ["a", 1, None],
        "reply_topic": REPLY_TOPIC,
    }


@pytest.mark.parametrize("payload", [None, "text", 0, 1.5, True, [1, [2]], {"nested": {"k": "v"}}])
def test_invocation_round_trip(payload: object) -> None:
    body = encode_invocation("call-1", "caller-1", payload, REPLY_TOPIC)
    assert decode_invocation(body) == Invocation("call-1", "caller-1", payload, REPLY_TOPIC)


def test_decodes_a_0_7_0_invocation_written_by_hand() -> None:
    body = b'{"id": "abc", "caller_id": "def", "payload": "Aidar", "reply_topic": "_rpc_._reply_.def#ephemeral"}'
    assert decode_invocation(body) == Invocation("abc", "def", "Aidar", "_rpc_._reply_.def#ephemeral")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(_invocation(extra=1), id="extra-key"),
        pytest.param({k: v for k, v in _invocation().items() if k != "caller_id"}, id="missing-caller_id"),
        pytest.param({k: v for k, v in _invocation().items() if k != "payload"}, id="missing-payload"),
        pytest.param(_invocation(id=5), id="id-not-string"),
        pytest.param(_invocation(caller_id=None), id="caller_id-null"),
        pytest.param(_invocation(reply_topic=["t"]), id="reply_topic-list"),
        pytest.param(_invocation(reply_topic="bad topic"), id="reply_topic-invalid-name"),
        pytest.param(_invocation(reply_topic="t" * 65), id="reply_topic-too-long"),
        pytest.param({}, id="empty-object"),
    ],
)
def test_decode_invocation_rejects_wrong_shapes(value: dict[str, object]) -> None:
    with pytest.raises(WireError):
        decode_invocation(json.dumps(value).encode())


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b"\xff\xfe", b'{"id": "a",}'])
def test_decode_rejects_non_json(body: bytes) -> None:
    with pytest.raises(WireError, match="invocation is not JSON"):
        decode_invocation(body)
    with pytest.raises(WireError, match="reply is not JSON"):
        decode_reply(body)


@pytest.mark.parametrize("body", [b"[]", b"null", b"1", b'"text"', b"true", b'[{"id": "a"}]'])
def test_decode_rejects_non_objects(body: bytes) -> None:
    with pytest.raises(WireError, match="not a JSON object"):
        decode_invocation(body)
    with pytest.raises(WireError, match="not a JSON object"):
        decode_reply(body)


def test_extra_key_message_lists_the_keys() -> None:
    with pytest.raises(WireError) as info:
        decode_invocation(json.dumps(_invocation(extra=1)).encode())
    assert "extra" in str(info.value)
    assert "reply_topic" in str(info.value)


def test_wire_error_is_a_value_error() -> None:
    assert issubclass(WireError, ValueError)


def test_encode_rejects_what_json_cannot_carry() -> None:
    with pytest.raises(WireError, match="not JSON-serializable"):
        encode_invocation("c", "s", {1, 2}, REPLY_TOPIC)
    with pytest.raises(WireError, match="not JSON-serializable"):
        encode_reply("c", False, object())


# -- replies -----------------------------------------------------------------------------------


def test_reply_has_exactly_three_keys() -> None:
    assert json.loads(encode_reply("call-1", False, {"ok": True})) == {
        "call_id": "call-1",
        "is_error": False,
        "payload": {"ok": True},
    }


@pytest.mark.parametrize("is_error", [True, False])
def test_reply_round_trip(is_error: bool) -> None:
    assert decode_reply(encode_reply("c9", is_error, [1, "x"])) == Reply("c9", is_error, [1, "x"])


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"call_id": "c", "is_error": False, "payload": 1, "more": 2}, id="extra-key"),
        pytest.param({"call_id": "c", "is_error": False}, id="missing-payload"),
        pytest.param({"call_id": "c", "payload": 1}, id="missing-is_error"),
        pytest.param({"call_id": 1, "is_error": False, "payload": 1}, id="call_id-not-string"),
        pytest.param({"call_id": "c", "is_error": 0, "payload": 1}, id="is_error-int"),
        pytest.param({"call_id": "c", "is_error": "false", "payload": 1}, id="is_error-string"),
    ],
)
def test_decode_reply_rejects_wrong_shapes(value: dict[str, object]) -> None:
    with pytest.raises(WireError):
        decode_reply(json.dumps(value).encode())


# -- error payloads ----------------------------------------------------------------------------


def test_error_payload_keeps_json_args() -> None:
    assert error_payload("denied", ("no", 3, [1, 2], {"k": None})) == {
        "name": "denied",
        "message": ["no", 3, [1, 2], {"k": None}],
    }


def test_error_payload_turns_non_json_args_into_str() -> None:
    when = datetime.timedelta(seconds=3)
    payload = error_payload("boom", (ValueError("inner"), {1, 2}, when, "plain", 2**70))
    assert payload["message"] == ["inner", str({1, 2}), str(when), "plain", str(2**70)]
    reply = decode_reply(encode_reply("c", True, payload))  # now it travels
    assert reply.payload == payload


def test_error_payload_leaves_what_orjson_encodes_natively() -> None:
    ident = uuid.UUID(int=5)
    payload = error_payload("boom", (ident,))
    assert decode_reply(encode_reply("c", True, payload)).payload["message"] == [str(ident)]


def test_error_payload_with_no_args() -> None:
    assert error_payload("InternalError", ()) == {"name": "InternalError", "message": []}


def test_parse_error_payload_accepts_0_7_0_string_message() -> None:
    assert parse_error_payload({"name": "InternalError", "message": "oops"}) == ("InternalError", ("oops",))


def test_parse_error_payload_list_args() -> None:
    assert parse_error_payload({"name": "denied", "message": ["a", 2, None]}) == ("denied", ("a", 2, None))


def test_parse_error_payload_missing_message() -> None:
    assert parse_error_payload({"name": "denied"}) == ("denied", ())
    assert parse_error_payload({"name": "denied", "message": None}) == ("denied", ())


def test_parse_error_payload_of_something_else_is_an_rpc_error_carrying_it() -> None:
    assert parse_error_payload("just text") == ("rpc_error", ("just text",))
    assert parse_error_payload({"name": 5, "message": "x"}) == ("rpc_error", ({"name": 5, "message": "x"},))
    assert parse_error_payload(None) == ("rpc_error", (None,))


def test_error_payload_round_trips_through_parse() -> None:
    assert parse_error_payload(error_payload("denied", ("x", 1))) == ("denied", ("x", 1))


# -- URIs, topics, channels --------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["a", "net.example.greeting", "A-b_c.d-9", "x" * 58, "a." * 28 + "bc"])
def test_valid_uris(uri: str) -> None:
    assert check_uri(uri) == uri
    topic = rpc_topic(uri)
    assert topic == "_rpc_." + uri
    assert is_valid_name(topic)
    assert len(topic) <= 64


@pytest.mark.parametrize("uri", ["", ".a", "a.", "a..b", "a b", "a/b", "a#ephemeral", "a:b", "ünï", "a\n", None, 5])
def test_invalid_uris(uri: object) -> None:
    with pytest.raises(ValueError, match="invalid"):
        check_uri(uri)  # type: ignore[arg-type]


def test_uri_length_limit_is_what_fits_an_nsq_topic() -> None:
    check_uri("x" * (64 - len("_rpc_.")))
    with pytest.raises(ValueError) as info:
        check_uri("x" * (65 - len("_rpc_.")))
    assert "59 characters" in str(info.value) and "at most 58" in str(info.value)
    with pytest.raises(ValueError):
        rpc_topic("x" * 59)


def test_invalid_uri_message_shows_an_example() -> None:
    with pytest.raises(ValueError, match=r"e\.g\. net\.example\.greeting"):
        check_uri("bad uri")


def test_reply_topic_is_an_ephemeral_valid_name() -> None:
    for session_id in (SESSION_ID, new_id(), "f" * 32):
        topic = reply_topic(session_id)
        assert session_id in topic
        assert is_ephemeral(topic)
        assert is_valid_name(topic)
        assert len(topic) <= 64


def test_reply_topics_differ_per_session() -> None:
    assert reply_topic(new_id()) != reply_topic(new_id())


def test_channel_name() -> None:
    assert channel_name("RPC") == "RPC#ephemeral"
    assert channel_name("RPC#ephemeral") == "RPC#ephemeral"
    assert channel_name(_wire.DEFAULT_CHANNEL) == "RPC#ephemeral"
    assert channel_name("c" * 54) == "c" * 54 + "#ephemeral"


@pytest.mark.parametrize("channel", ["c" * 55, "bad channel", ""])
def test_channel_name_rejects_what_nsq_would(channel: str) -> None:
    with pytest.raises(ValueError, match="channel name"):
        channel_name(channel)


def test_reply_channel_is_ephemeral() -> None:
    assert is_ephemeral(_wire.REPLY_CHANNEL)
    assert is_valid_name(_wire.REPLY_CHANNEL)


def test_describe_uri_is_0_7_0_shape() -> None:
    assert describe_uri("net.example.greeting") == "_api_schema_.net.example.greeting.RPC"
    assert describe_uri("net.example.greeting", "blue") == "_api_schema_.net.example.greeting.blue"


def test_new_id_is_32_hex_and_unique() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_call_ids_are_32_hex_unique_and_carry_the_callers_deadline() -> None:
    first, second = _wire.IdSequence(), _wire.IdSequence()
    deadline_ms = 1_800_000_001_500  # 2027-01-15, POSIX ms
    ids = [first.next(deadline_ms) for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == 1000
    # read back near nsqd's timestamp of the message: a second before, or a day after
    assert {_wire.deadline_in_id(i, 1_800_000_000.5) for i in ids} == {1_800_000_001.5}
    assert _wire.deadline_in_id(ids[0], 1_800_086_400.0) == 1_800_000_001.5
    # the per-session random bits (40 of them) set two sessions apart
    assert {i[8:12] + i[17:23] for i in ids} == {ids[0][8:12] + ids[0][17:23]}
    assert second.next(deadline_ms)[8:23] != ids[0][8:23]
    assert _wire.deadline_in_id(first.next(), 1_800_000_000.0) is None  # an id without a deadline


@pytest.mark.parametrize("offset_ms", [-(2**31) + 1, -86_400_000, -1, 0, 1, 86_400_000, 2**31 - 1])
def test_a_deadline_is_read_in_the_cycle_nearest_the_timestamp(offset_ms: int) -> None:
    """32 bits of ms wrap every 49.7 days: any deadline within 24.8 days of nsqd's stamp reads back."""
    for near_ms in (0x1_0000_0000 * 420 - 5, 0x1_0000_0000 * 420, 0x1_0000_0000 * 420 + 7, 1_765_000_000_123):
        deadline_ms = near_ms + offset_ms
        call_id = _wire.IdSequence().next(deadline_ms)
        assert _wire.deadline_in_id(call_id, near_ms / 1000) == deadline_ms / 1000


def test_a_uuid4_or_foreign_id_never_reads_as_a_deadline() -> None:
    # 0.7.0 callers send uuid4().hex: its 13th digit is 4, never the 8 of ours
    assert all(_wire.deadline_in_id(uuid.uuid4().hex, 1_800_000_000.0) is None for _ in range(2000))
    for foreign in ("", "x" * 32, "0000000000008a1d8" + "Z" * 15, "00000000 0008a1d8" + "0" * 15):
        assert _wire.deadline_in_id(foreign, 1_800_000_000.0) is None


def test_the_deadline_travels_in_the_id_of_a_plain_invocation() -> None:
    call_id = _wire.IdSequence().next(1_800_000_000_700)
    plain = _wire.encode_invocation(call_id, "S" * 32, "Aidar", "_rpc_._reply_.S")
    assert set(json.loads(plain)) == {"id", "caller_id", "payload", "reply_topic"}  # what 0.7.0 takes
    invocation = _wire.decode_invocation(plain)
    assert invocation.timeout_ms is None  # only the key is relative; the id is read by the service
    assert _wire.deadline_in_id(invocation.id, 1_800_000_000.0) == 1_800_000_000.7
    keyed = _wire.encode_invocation(call_id, "S" * 32, "Aidar", "_rpc_._reply_.S", 900)
    assert _wire.decode_invocation(keyed).timeout_ms == 900


# -- decode_discovery ---------------------------------------------------------------------------


def test_decode_discovery_reads_an_almanet_reply() -> None:
    from almanet._wire.protocol import decode_discovery

    payload = {
        "client": "c1",
        "version": 1,
        "routes": ["net.a.x/RPC", "net.a.y/fast"],
        "prepath": "net.a",
        "host": "h",
        "pid": 42,
        "started_at": 1700000000,
        "procedures": [
            {"uri": "net.a.x", "channel": "RPC", "tags": ["t"], "description": "X."},
            {"uri": "net.a.y", "channel": "fast"},
            {"no": "uri"},
        ],
    }
    instance = decode_discovery(payload)
    assert instance is not None
    assert instance.client == "c1" and instance.prepath == "net.a" and instance.host == "h" and instance.pid == 42
    assert instance.started_at == 1700000000.0
    assert [(p.uri, p.channel, p.tags, p.description) for p in instance.procedures] == [
        ("net.a.x", "RPC", ("t",), "X."),
        ("net.a.y", "fast", (), ""),
    ]
    assert instance.procedures[0].document is payload["procedures"][0]
    assert instance.served == (("net.a.x", "RPC"), ("net.a.y", "fast"))
    assert instance.uris == {"net.a.x", "net.a.y"}


def test_decode_discovery_reads_a_070_reply_and_drops_odd_fields() -> None:
    from almanet._wire.protocol import decode_discovery

    instance = decode_discovery({"client": "c", "routes": ["a.b/RPC", "no-channel", 7], "pid": True, "host": 3})
    assert instance is not None
    assert instance.procedures == () and instance.served == (("a.b", "RPC"),)
    assert instance.pid is None and instance.host is None and instance.started_at is None
    for not_discovery in (None, [], "x", {"routes": []}, {"client": 5}):
        assert decode_discovery(not_discovery) is None


def test_internal_topics_are_told_from_procedures() -> None:
    from almanet._wire.protocol import is_internal_topic, reply_topic, rpc_topic

    assert is_internal_topic(reply_topic("abc"))
    assert is_internal_topic(rpc_topic("_api_schema_.client"))
    assert not is_internal_topic(rpc_topic("net.example.greeting"))


def test_known_reply_topics_are_the_receivers_and_bad_ones_never_enter() -> None:
    known: set[str] = set()
    assert decode_invocation(json.dumps(_invocation()).encode(), known).reply_topic == REPLY_TOPIC
    assert known == {REPLY_TOPIC}
    bad = json.dumps(_invocation(reply_topic="no spaces allowed")).encode()
    for receiver in (known, None):
        with pytest.raises(WireError, match="reply topic"):
            decode_invocation(bad, receiver)
    assert known == {REPLY_TOPIC}
