"""The almanet message shapes on NSQ, compatible with almanet 0.7.0 both ways.

Pure: JSON bytes in and out, topic names, ids. ``docs/protocol.md`` explains the protocol;
this module is its executable form.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any, NamedTuple

import orjson

from ._nsq.names import EPHEMERAL_SUFFIX, check_name

__all__ = [
    "CLIENT_DISCOVERY_URI",
    "DEADLINE_AGENT",
    "DEFAULT_CHANNEL",
    "REPLY_CHANNEL",
    "RPC_PREFIX",
    "TIMEOUT_KEY",
    "IdSequence",
    "Invocation",
    "Reply",
    "WireError",
    "channel_name",
    "check_uri",
    "decode_invocation",
    "decode_reply",
    "describe_uri",
    "encode_invocation",
    "encode_reply",
    "error_payload",
    "new_id",
    "parse_error_payload",
    "reply_topic",
    "rpc_topic",
]

RPC_PREFIX = "_rpc_."
DESCRIBE_PREFIX = "_api_schema_."
CLIENT_DISCOVERY_URI = "_api_schema_.client"
DEFAULT_CHANNEL = "RPC"
REPLY_CHANNEL = "rpc-recipient" + EPHEMERAL_SUFFIX
_URI = re.compile(r"[a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*")
_INVOCATION_KEYS = frozenset({"id", "caller_id", "payload", "reply_topic"})
# The deadline extension (docs/protocol.md §3, "Deadlines"): the caller's remaining timeout in ms,
# counted from the NSQ message's timestamp. Sent only when every subscriber of the procedure's
# topic announced it understands it, with this token in the user_agent of its IDENTIFY.
TIMEOUT_KEY = "timeout_ms"
DEADLINE_AGENT = "almanet-deadline/1"
_EXTENDED_KEYS = _INVOCATION_KEYS | {TIMEOUT_KEY}
_REPLY_KEYS = frozenset({"call_id", "is_error", "payload"})


class WireError(ValueError):
    """Bytes that are not a valid almanet message."""


def new_id() -> str:
    """32 random lowercase hex digits, the shape of 0.7.0's ``uuid4().hex``: session ids."""
    return os.urandom(16).hex()


class IdSequence:
    """Call ids: a random 64-bit prefix per session and a counter, as 32 lowercase hex digits.

    Unique within the session by the counter, across sessions by the prefix, and free of the
    ``getrandom`` system call that a random id per call costs (a tenth of a caller's CPU at load).
    """

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


def check_uri(uri: str) -> str:
    """A procedure URI: dot-separated words of letters, digits, '_' and '-'; its topic must fit NSQ."""
    if not isinstance(uri, str) or not _URI.fullmatch(uri):
        raise ValueError(
            f"procedure URI {uri!r} is invalid: use dot-separated words of letters, digits, '_' and '-'"
            " (e.g. net.example.greeting)"
        )
    limit = 64 - len(RPC_PREFIX)
    if len(uri) > limit:
        raise ValueError(f"procedure URI {uri!r} is {len(uri)} characters long; at most {limit} fit an NSQ topic")
    return uri


def rpc_topic(uri: str) -> str:
    return RPC_PREFIX + check_uri(uri)


def describe_uri(uri: str, channel: str = DEFAULT_CHANNEL) -> str:
    """0.7.0's per-procedure discovery URI (``_api_schema_.<uri>.<channel>``)."""
    return f"{DESCRIBE_PREFIX}{uri}.{channel}"


def channel_name(channel: str) -> str:
    """The NSQ channel serving a logical channel: ephemeral, so it goes when its last subscriber does."""
    name = channel if channel.endswith(EPHEMERAL_SUFFIX) else channel + EPHEMERAL_SUFFIX
    return check_name(name, "channel")


def reply_topic(session_id: str) -> str:
    return f"_rpc_._reply_.{session_id}{EPHEMERAL_SUFFIX}"


class Invocation(NamedTuple):
    id: str
    caller_id: str
    payload: Any
    reply_topic: str
    timeout_ms: int | None = None  # the deadline extension; None in a plain (0.7.0) invocation


class Reply(NamedTuple):
    call_id: str
    is_error: bool
    payload: Any


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise WireError(f"payload is not JSON-serializable: {exc}") from None


def encode_invocation(
    call_id: str, caller_id: str, payload: Any, reply_to: str, timeout_ms: int | None = None
) -> bytes:
    # Exactly these four keys unless told otherwise: a 0.7.0 service rejects any other.
    if timeout_ms is None:
        return _dumps({"id": call_id, "caller_id": caller_id, "payload": payload, "reply_topic": reply_to})
    return _dumps(
        {"id": call_id, "caller_id": caller_id, "payload": payload, "reply_topic": reply_to, TIMEOUT_KEY: timeout_ms}
    )


def _loads_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise WireError(f"{what} is not a JSON object")
    return value


def decode_invocation(body: bytes) -> Invocation:
    value = _loads_object(body, "invocation")
    keys = value.keys()
    timeout_ms = None
    if keys != _INVOCATION_KEYS:
        if keys != _EXTENDED_KEYS:
            raise WireError(
                f"invocation keys are {sorted(value)},"
                f" expected {sorted(_INVOCATION_KEYS)} (and optionally {TIMEOUT_KEY!r})"
            )
        timeout_ms = value[TIMEOUT_KEY]
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
            raise WireError(f"invocation {TIMEOUT_KEY} must be a non-negative integer, not {timeout_ms!r}")
    call_id, caller_id, reply_to = value["id"], value["caller_id"], value["reply_topic"]
    if not (isinstance(call_id, str) and isinstance(caller_id, str) and isinstance(reply_to, str)):
        raise WireError("invocation id, caller_id and reply_topic must be strings")
    if reply_to not in _known_reply_topics:
        try:
            check_name(reply_to, "reply topic")
        except ValueError as exc:
            raise WireError(str(exc)) from None
        if len(_known_reply_topics) >= 10_000:
            _known_reply_topics.clear()
        _known_reply_topics.add(reply_to)
    return Invocation(call_id, caller_id, value["payload"], reply_to, timeout_ms)


# Reply topics already checked: a caller sends thousands of invocations with the same one.
_known_reply_topics: set[str] = set()


def encode_reply(call_id: str, is_error: bool, payload: Any) -> bytes:
    return _dumps({"call_id": call_id, "is_error": is_error, "payload": payload})


def decode_reply(body: bytes) -> Reply:
    value = _loads_object(body, "reply")
    if value.keys() != _REPLY_KEYS:
        raise WireError(f"reply keys are {sorted(value)}, expected {sorted(_REPLY_KEYS)}")
    if not isinstance(value["call_id"], str) or not isinstance(value["is_error"], bool):
        raise WireError("reply call_id must be a string and is_error a boolean")
    return Reply(value["call_id"], value["is_error"], value["payload"])


def error_payload(name: str, args: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    """An error reply's payload; arguments that JSON cannot carry travel as their ``str``."""
    safe = [a if _json_safe(a) else str(a) for a in args]
    return {"name": name, "message": safe}


def _json_safe(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def parse_error_payload(payload: Any) -> tuple[str, tuple[Any, ...]]:
    """(name, args) of an error reply; accepts 0.7.0's string ``message`` as one argument."""
    if isinstance(payload, dict) and isinstance(payload.get("name"), str):
        message = payload.get("message")
        if isinstance(message, list):
            return payload["name"], tuple(message)
        if message is None:
            return payload["name"], ()
        return payload["name"], (message,)
    return "rpc_error", (payload,)
