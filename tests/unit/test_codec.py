"""almanet._nsq.codec: frames decoded whole, byte by byte and with trailing bytes; garbage;
command bytes cross-checked against gnsq's independent encoders.
"""

from __future__ import annotations

import json
import random
import struct

import pytest

from almanet._nsq import codec
from almanet._nsq.codec import (
    FRAME_ERROR,
    FRAME_MESSAGE,
    FRAME_RESPONSE,
    ErrorFrame,
    FrameDecoder,
    MessageFrame,
    ResponseFrame,
    encode_frame,
    encode_message,
)
from almanet._nsq.errors import ProtocolError


def mpub_size(bodies: list[bytes]) -> int:
    """Bytes of MPUB's body for ``bodies``, as nsqd checks it against ``--max-body-size`` (the oracle)."""
    return 4 + sum(4 + len(b) for b in bodies)


# gnsq imports gevent (slow), but only this module pays for it.
gnsq_protocol = pytest.importorskip("gnsq.protocol")

MESSAGE_ID = b"0123456789abcdef"


def _raw(size: int, frame_type: int, data: bytes = b"") -> bytes:
    """A frame with an arbitrary (possibly lying) size field, built by hand, not by the codec."""
    return struct.pack(">lL", size, frame_type) + data


# (bytes on the wire, the frame they must decode to); the bytes are built by hand here so that
# a bug shared by encode_frame and the decoder cannot hide.
CASES = {
    "response": (struct.pack(">lL", 6, 0) + b"OK", ResponseFrame(b"OK")),
    "heartbeat": (struct.pack(">lL", 15, 0) + b"_heartbeat_", ResponseFrame(b"_heartbeat_")),
    "empty-response": (struct.pack(">lL", 4, 0), ResponseFrame(b"")),
    "error": (
        struct.pack(">lL", 4 + 20, 1) + b"E_INVALID bad things",
        ErrorFrame(b"E_INVALID bad things"),
    ),
    "message": (
        struct.pack(">lL", 4 + 26 + 5, 2) + struct.pack(">qH", 1_700_000_000_123_456_789, 3) + MESSAGE_ID + b"hello",
        MessageFrame(1_700_000_000_123_456_789, 3, MESSAGE_ID, b"hello"),
    ),
    "message-empty-body": (
        struct.pack(">lL", 4 + 26, 2) + struct.pack(">qH", 7, 65535) + MESSAGE_ID,
        MessageFrame(7, 65535, MESSAGE_ID, b""),
    ),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[bytes, codec.Frame]:
    return CASES[request.param]


# -- frames ------------------------------------------------------------------------------------


def test_whole_frame(case: tuple[bytes, codec.Frame]) -> None:
    wire, expected = case
    decoder = FrameDecoder()
    assert decoder.feed(wire) == [expected]
    assert decoder.pending == 0


def test_one_byte_at_a_time(case: tuple[bytes, codec.Frame]) -> None:
    wire, expected = case
    decoder = FrameDecoder()
    for i in range(len(wire) - 1):
        assert decoder.feed(wire[i : i + 1]) == [], f"frame produced early, after {i + 1} of {len(wire)} bytes"
        assert decoder.pending == i + 1
    assert decoder.feed(wire[-1:]) == [expected]
    assert decoder.pending == 0


def test_trailing_bytes_stay_buffered(case: tuple[bytes, codec.Frame]) -> None:
    wire, expected = case
    nxt = encode_frame(FRAME_RESPONSE, b"next one")
    decoder = FrameDecoder()
    assert decoder.feed(wire + nxt[:5]) == [expected]
    assert decoder.pending == 5
    assert decoder.feed(nxt[5:]) == [ResponseFrame(b"next one")]
    assert decoder.pending == 0


def test_empty_feed_is_need_more() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"") == []
    assert decoder.pending == 0


def test_several_frames_in_one_feed() -> None:
    stream = b"".join(wire for wire, _ in CASES.values())
    decoder = FrameDecoder()
    assert decoder.feed(stream) == [frame for _, frame in CASES.values()]
    assert decoder.pending == 0


def test_frames_are_frozen() -> None:
    frame = FrameDecoder().feed(CASES["message"][0])[0]
    with pytest.raises(AttributeError):
        frame.body = b"changed"  # type: ignore[misc]


def test_encode_frame_and_message_match_handmade_bytes() -> None:
    assert encode_frame(FRAME_RESPONSE, b"OK") == CASES["response"][0]
    assert encode_frame(FRAME_ERROR, b"E_INVALID bad things") == CASES["error"][0]
    assert encode_message(1_700_000_000_123_456_789, 3, MESSAGE_ID, b"hello") == CASES["message"][0]


def test_gnsq_decodes_our_message_frame() -> None:
    wire = encode_message(123456789, 2, MESSAGE_ID, b"body bytes")
    size, data = gnsq_protocol.unpack_response(wire)
    assert size == len(wire) - 4
    frame_type = struct.unpack(">l", data[:4])[0]
    assert frame_type == gnsq_protocol.FRAME_TYPE_MESSAGE
    assert gnsq_protocol.unpack_message(data[4:]) == (123456789, 2, MESSAGE_ID, b"body bytes")


@pytest.mark.parametrize("seed", range(20))
def test_random_split_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    expected: list[codec.Frame] = []
    parts: list[bytes] = []
    for _ in range(rng.randint(1, 30)):
        body = rng.randbytes(rng.choice([0, 1, 7, 100, 3000]))
        kind = rng.choice([FRAME_RESPONSE, FRAME_ERROR, FRAME_MESSAGE])
        if kind == FRAME_MESSAGE:
            frame: codec.Frame = MessageFrame(rng.getrandbits(63), rng.randrange(65536), rng.randbytes(16), body)
            parts.append(encode_message(frame.timestamp, frame.attempts, frame.id, frame.body))
        else:
            frame = ResponseFrame(body) if kind == FRAME_RESPONSE else ErrorFrame(body)
            parts.append(encode_frame(kind, body))
        expected.append(frame)
    stream = b"".join(parts)
    cuts = sorted(rng.sample(range(1, len(stream)), k=min(len(stream) - 1, rng.randint(0, 40))))
    decoder = FrameDecoder()
    got: list[codec.Frame] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got.extend(decoder.feed(stream[start:cut]))
        start = cut
    assert got == expected
    assert decoder.pending == 0


# -- garbage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(_raw(-1, FRAME_RESPONSE), id="negative-size"),
        pytest.param(_raw(-(2**31), FRAME_RESPONSE), id="most-negative-size"),
        pytest.param(_raw(0, FRAME_RESPONSE), id="size-zero"),
        pytest.param(_raw(3, FRAME_RESPONSE), id="size-below-type"),
        pytest.param(_raw(2**31 - 1, FRAME_RESPONSE), id="oversized"),
        pytest.param(_raw(4 + 3, 3, b"abc"), id="unknown-type-3"),
        pytest.param(_raw(4, 2**32 - 1), id="unknown-type-max"),
        pytest.param(_raw(4, FRAME_MESSAGE), id="empty-message"),
        pytest.param(_raw(4 + 25, FRAME_MESSAGE, bytes(25)), id="message-25-bytes"),
        pytest.param(b"HTTP/1.1 400 Bad Request\r\n\r\n", id="http-reply"),
    ],
)
def test_garbage_raises_protocol_error(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(wire)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(_raw(1000, 9), id="unknown-type"),
        pytest.param(_raw(4 + 10, FRAME_MESSAGE), id="short-message"),
        pytest.param(_raw(-5, FRAME_RESPONSE), id="negative-size"),
    ],
)
def test_bad_header_is_rejected_before_its_body_arrives(header: bytes) -> None:
    """A header that can never make a valid frame fails at once, not after buffering its body."""
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(header)


def test_max_frame_size_is_enforced() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    assert decoder.feed(encode_frame(FRAME_RESPONSE, bytes(96))) == [ResponseFrame(bytes(96))]
    with pytest.raises(ProtocolError, match="101"):
        decoder.feed(encode_frame(FRAME_RESPONSE, bytes(97)))


def test_message_shorter_than_header_says_so() -> None:
    with pytest.raises(ProtocolError, match="shorter than its header"):
        FrameDecoder().feed(_raw(4 + 10, FRAME_MESSAGE, bytes(10)))


@pytest.mark.parametrize("seed", range(10))
def test_random_garbage_never_raises_anything_else(seed: int) -> None:
    rng = random.Random(seed)
    decoder = FrameDecoder(max_frame_size=4096)
    for _ in range(200):
        try:
            frames = decoder.feed(rng.randbytes(rng.randint(0, 64)))
        except ProtocolError:
            decoder = FrameDecoder(max_frame_size=4096)
            continue
        assert all(isinstance(f, ResponseFrame | ErrorFrame | MessageFrame) for f in frames)
        assert decoder.pending <= 4096 + 4


# -- commands, against gnsq.protocol -----------------------------------------------------------


@pytest.mark.parametrize("topic", ["t", "net.example_topic-1", "_rpc_._reply_.abc#ephemeral"])
@pytest.mark.parametrize("body", [b"", b"hello", b"\x00\n\xff" * 100])
def test_pub_matches_gnsq(topic: str, body: bytes) -> None:
    assert codec.pub(topic, body) == gnsq_protocol.publish(topic, body)


def test_pub_known_bytes() -> None:
    assert codec.pub("t", b"hello") == b"PUB t\n\x00\x00\x00\x05hello"


@pytest.mark.parametrize("delay_ms", [0, 1, 3_600_000])
def test_dpub_matches_gnsq(delay_ms: int) -> None:
    assert codec.dpub("topic", delay_ms, b"later") == gnsq_protocol.deferpublish("topic", b"later", delay_ms)


@pytest.mark.parametrize("bodies", [[b"one"], [b"a", b"", b"ccc" * 50], [bytes([i]) * i for i in range(20)]])
def test_mpub_matches_gnsq(bodies: list[bytes]) -> None:
    assert codec.mpub("topic", bodies) == gnsq_protocol.multipublish("topic", bodies)


@pytest.mark.parametrize("bodies", [[], [b""], [b"x"], [b"a", b"bb", b"c" * 1000]])
def test_mpub_size_is_the_body_size_nsqd_sees(bodies: list[bytes]) -> None:
    wire = codec.mpub("t", bodies)
    header = b"MPUB t\n"
    (declared,) = struct.unpack(">l", wire[len(header) : len(header) + 4])
    assert mpub_size(bodies) == declared == len(wire) - len(header) - 4


def test_sub_matches_gnsq() -> None:
    assert codec.sub("topic", "chan#ephemeral") == gnsq_protocol.subscribe("topic", "chan#ephemeral")


@pytest.mark.parametrize("count", [0, 1, 2500])
def test_rdy_matches_gnsq(count: int) -> None:
    assert codec.rdy(count) == gnsq_protocol.ready(count)


def test_fin_touch_req_match_gnsq() -> None:
    assert codec.fin(MESSAGE_ID) == gnsq_protocol.finish(MESSAGE_ID)
    assert codec.touch(MESSAGE_ID) == gnsq_protocol.touch(MESSAGE_ID)
    assert codec.req(MESSAGE_ID, 0) == gnsq_protocol.requeue(MESSAGE_ID, 0)
    assert codec.req(MESSAGE_ID, 15_000) == gnsq_protocol.requeue(MESSAGE_ID, 15_000)


def test_nop_cls_match_gnsq() -> None:
    assert codec.nop() == gnsq_protocol.nop() == b"NOP\n"
    assert codec.cls() == gnsq_protocol.close() == b"CLS\n"


def test_auth_matches_gnsq() -> None:
    assert codec.auth(b"s3cret token") == gnsq_protocol.auth(b"s3cret token")


def test_identify_matches_gnsq() -> None:
    # gnsq's json.dumps puts spaces after separators and orjson does not: compare the framing
    # exactly and the JSON by value.
    options = {"client_id": "host", "feature_negotiation": True, "heartbeat_interval": 30000, "tls_v1": False}
    ours, theirs = codec.identify(options), gnsq_protocol.identify(options)
    prefix = b"IDENTIFY\n"
    assert ours.startswith(prefix) and theirs.startswith(prefix)
    (size,) = struct.unpack(">l", ours[len(prefix) : len(prefix) + 4])
    assert size == len(ours) - len(prefix) - 4
    assert json.loads(ours[len(prefix) + 4 :]) == json.loads(theirs[len(prefix) + 4 :]) == options


def test_magic() -> None:
    assert codec.MAGIC_V2 == gnsq_protocol.MAGIC_V2
    assert codec.HEARTBEAT == gnsq_protocol.HEARTBEAT
    assert (codec.FRAME_RESPONSE, codec.FRAME_ERROR, codec.FRAME_MESSAGE) == (
        gnsq_protocol.FRAME_TYPE_RESPONSE,
        gnsq_protocol.FRAME_TYPE_ERROR,
        gnsq_protocol.FRAME_TYPE_MESSAGE,
    )


def test_message_batch_matches_gnsq_and_mpub_size() -> None:
    bodies = [b"first", b"", b"\x00" * 300, b"last"]
    batch = codec.MessageBatch()
    assert (batch.count, batch.size) == (0, mpub_size([]))
    for i, body in enumerate(bodies, 1):
        batch.add(body)
        assert batch.count == i
        assert batch.size == mpub_size(bodies[:i])
    assert batch.command("topic") == gnsq_protocol.multipublish("topic", bodies)
