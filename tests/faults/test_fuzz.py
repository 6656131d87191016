"""Fuzzing with hypothesis: whatever bytes arrive, the decoders answer with frames or their own error.

The frame decoder must raise only ``ProtocolError`` (never IndexError, struct.error, a hang),
decode the same frames however the bytes are split, and the wire decoders must raise only
``WireError``. A connection acts on exactly these exceptions; anything else would kill its loop.
"""

from __future__ import annotations

import os
import struct

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from almanet._nsq import codec
from almanet._nsq.errors import ProtocolError
from almanet._wire import protocol as _wire

SOAK = os.environ.get("ALMANET_SOAK", "") not in ("", "0")
FUZZ = settings(max_examples=5000 if SOAK else 300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL_MAX = 4096  # a small frame limit, so that the size checks are reached often


def _frames() -> st.SearchStrategy[bytes]:
    message = st.builds(
        codec.encode_message,
        st.integers(0, 2**63 - 1),
        st.integers(0, 2**16 - 1),
        st.binary(min_size=16, max_size=16),
        st.binary(max_size=300),
    )
    other = st.builds(
        codec.encode_frame, st.sampled_from([codec.FRAME_RESPONSE, codec.FRAME_ERROR]), st.binary(max_size=300)
    )
    return st.one_of(message, other)


def _feed_all(decoder: codec.FrameDecoder, chunks: list[bytes]) -> list[codec.Frame]:
    frames: list[codec.Frame] = []
    for chunk in chunks:
        frames.extend(decoder.feed(chunk))
    return frames


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_garbage_raises_only_protocol_error(chunks: list[bytes]) -> None:
    decoder = codec.FrameDecoder(SMALL_MAX)
    try:
        _feed_all(decoder, chunks)
    except ProtocolError:
        pass
    assert decoder.pending < SMALL_MAX + 8 + 200  # never hoards more than one frame's worth


@FUZZ
@given(st.lists(_frames(), min_size=1, max_size=6), st.data())
def test_any_split_decodes_the_same_frames(frames: list[bytes], data: st.DataObject) -> None:
    wire = b"".join(frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    whole = codec.FrameDecoder(SMALL_MAX).feed(wire)
    split_decoder = codec.FrameDecoder(SMALL_MAX)
    assert _feed_all(split_decoder, chunks) == whole
    assert len(whole) == len(frames) and split_decoder.pending == 0


@FUZZ
@given(_frames(), st.integers(0, 10_000), st.integers(0, 255))
def test_a_corrupted_frame_raises_only_protocol_error(frame: bytes, where: int, value: int) -> None:
    corrupted = bytearray(frame)
    corrupted[where % len(corrupted)] = value
    try:
        codec.FrameDecoder(SMALL_MAX).feed(bytes(corrupted))
    except ProtocolError:
        pass


@FUZZ
@given(st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1))
def test_any_header_is_judged_at_once(size: int, frame_type: int) -> None:
    """A header alone either waits for its body (a plausible frame) or fails: no other outcome."""
    decoder = codec.FrameDecoder(SMALL_MAX)
    try:
        assert decoder.feed(struct.pack(">lL", size, frame_type)) == [] or size == 4
    except ProtocolError:
        return
    assert 4 <= size <= SMALL_MAX and frame_type in (codec.FRAME_RESPONSE, codec.FRAME_ERROR, codec.FRAME_MESSAGE)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


# JSON texts that Python's own encoder makes and orjson may not read: big integers, NaN, -0
_ODD_JSON = [b'{"id": 123456789012345678901234567890}', b"[NaN]", b'{"a": -0}', b'{"a": 1e999}', b'"\\ud800"']


@FUZZ
@given(st.one_of(st.binary(max_size=300), _json.map(orjson.dumps), st.sampled_from(_ODD_JSON)))
def test_wire_decoders_raise_only_wire_error(body: bytes) -> None:
    for decode in (_wire.decode_invocation, _wire.decode_reply):
        try:
            decode(body)
        except _wire.WireError:
            pass


@FUZZ
@given(
    st.fixed_dictionaries(
        {"id": _json, "caller_id": _json, "payload": _json, "reply_topic": st.one_of(_json, st.text(max_size=80))}
    )
)
def test_invocation_shaped_objects_raise_only_wire_error(value: dict[str, object]) -> None:
    try:
        invocation = _wire.decode_invocation(orjson.dumps(value))
    except _wire.WireError:
        return
    assert isinstance(invocation.id, str) and isinstance(invocation.reply_topic, str)
