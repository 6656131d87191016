"""The almanet message shapes on NSQ, compatible with almanet 0.7.0 both ways.

Pure: JSON bytes in and out, topic names, ids. ``docs/protocol.md`` explains the protocol;
this module is its executable form.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from .._nsq.names import EPHEMERAL_SUFFIX, check_name
from .ids import IdSequence, deadline_in_id

__all__ = [
    "CANCEL_TOPIC",
    "CLIENT_DISCOVERY_URI",
    "DEADLINE_AGENT",
    "DEFAULT_CHANNEL",
    "EXPIRED_NOTICE",
    "REPLY_CHANNEL",
    "REPLY_PREFIX",
    "RPC_PREFIX",
    "TIMEOUT_KEY",
    "TRACE_AGENT",
    "TRACE_KEY",
    "Described",
    "IdSequence",
    "Instance",
    "Invocation",
    "Reply",
    "WireError",
    "channel_name",
    "check_uri",
    "deadline_in_id",
    "decode_cancel",
    "decode_discovery",
    "decode_invocation",
    "decode_reply",
    "describe_uri",
    "encode_cancel",
    "encode_invocation",
    "encode_json",
    "encode_reply",
    "error_payload",
    "fields_of_error",
    "is_expired_notice",
    "is_internal_topic",
    "is_reply_topic",
    "new_id",
    "parse_error_payload",
    "reply_topic",
    "rpc_topic",
]

RPC_PREFIX = "_rpc_."
DESCRIBE_PREFIX = "_api_schema_."
CLIENT_DISCOVERY_URI = "_api_schema_.client"
DEFAULT_CHANNEL = "RPC"
REPLY_PREFIX = RPC_PREFIX + "_reply_."
REPLY_CHANNEL = "rpc-recipient" + EPHEMERAL_SUFFIX
# Where callers say which calls they gave up on; every almanet service instance reads it on a
# channel of its own. Not ephemeral: cancels published while no instance is up wait for one.
CANCEL_TOPIC = RPC_PREFIX + "_cancel_"
_URI = re.compile(r"[a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*")
_INVOCATION_KEYS = frozenset({"id", "caller_id", "payload", "reply_topic"})
# The deadline extension (docs/protocol.md §3, "Deadlines"): the caller's remaining timeout in ms,
# counted from the NSQ message's timestamp. Sent only when every subscriber of the procedure's
# topic announced it understands it, with this token in the user_agent of its IDENTIFY.
TIMEOUT_KEY = "timeout_ms"
DEADLINE_AGENT = "almanet-deadline/1"
_EXTENDED_KEYS = _INVOCATION_KEYS | {TIMEOUT_KEY}
# W3C trace context (docs/protocol.md): sent only when every subscriber announces TRACE_AGENT
TRACE_KEY = "traceparent"
TRACE_AGENT = "almanet-trace/1"
_TRACED_KEYS = (_INVOCATION_KEYS | {TRACE_KEY}, _EXTENDED_KEYS | {TRACE_KEY})
_REPLY_KEYS = frozenset({"call_id", "is_error", "payload"})
# typed error fields: one trailing element of an error's message array, {FIELDS_KEY: {...}}, so
# that a 0.7.0 caller still reads the name and the message (it keeps the array as it is)
FIELDS_KEY = "_fields_"


class WireError(ValueError):
    """Bytes that are not a valid almanet message."""


def new_id() -> str:
    """32 random lowercase hex digits, the shape of 0.7.0's ``uuid4().hex``: session ids."""
    return os.urandom(16).hex()


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
    return f"{REPLY_PREFIX}{session_id}{EPHEMERAL_SUFFIX}"


def is_internal_topic(topic: str) -> bool:
    """An RPC topic that is no procedure: a reply, discovery (``_api_schema_``) or cancel topic."""
    return topic.startswith((REPLY_PREFIX, RPC_PREFIX + DESCRIBE_PREFIX, CANCEL_TOPIC))


def is_reply_topic(topic: str) -> bool:
    """A caller's reply topic, ours (``#ephemeral``) or 0.7.0's."""
    return topic.startswith(REPLY_PREFIX)


def encode_cancel(caller_id: str, call_ids: list[str]) -> bytes:
    """A caller gave up on these calls: services drop them unrun (docs/protocol.md, "Cancels")."""
    return _dumps({"caller_id": caller_id, "cancel": call_ids})


def decode_cancel(body: bytes) -> list[str]:
    value = _loads_object(body, "cancel")
    ids = value.get("cancel")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise WireError("a cancel's 'cancel' must be a list of call id strings")
    return ids


class Invocation(NamedTuple):
    id: str
    caller_id: str
    payload: Any
    reply_topic: str
    timeout_ms: int | None = None  # the deadline extension; None in a plain (0.7.0) invocation
    traceparent: str | None = None  # W3C trace context, when the caller traces and every subscriber reads it


class Reply(NamedTuple):
    call_id: str
    is_error: bool
    payload: Any


def _model_json(value: Any) -> orjson.Fragment:
    """orjson's ``default``: a pydantic model becomes its own JSON, written once, unparsed.

    orjson calls it only for a type it cannot write itself (dataclasses, TypedDicts, datetimes
    it writes natively), so a plain payload pays nothing for it.
    """
    dump = getattr(value, "model_dump_json", None)
    if dump is not None and hasattr(type(value), "__pydantic_fields__"):
        return orjson.Fragment(dump())
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def encode_json(value: Any) -> bytes:
    """JSON bytes of a payload; pydantic models, dataclasses and TypedDicts included."""
    return orjson.dumps(value, default=_model_json)


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_model_json)
    except TypeError as exc:
        raise WireError(f"payload is not JSON-serializable: {exc}") from None


def encode_invocation(
    call_id: str,
    caller_id: str,
    payload: Any,
    reply_to: str,
    timeout_ms: int | None = None,
    traceparent: str | None = None,
) -> bytes:
    # Exactly these four keys unless told otherwise: a 0.7.0 service rejects any other.
    if traceparent is not None:
        value = {"id": call_id, "caller_id": caller_id, "payload": payload, "reply_topic": reply_to}
        if timeout_ms is not None:
            value[TIMEOUT_KEY] = timeout_ms
        value[TRACE_KEY] = traceparent
        return _dumps(value)
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


def decode_invocation(body: bytes, known_reply_topics: set[str] | None = None) -> Invocation:
    """An invocation, checked; ``known_reply_topics`` (the receiver's) skips re-checking a reply topic.

    A caller sends thousands of invocations with the same reply topic, and checking it costs
    ~300 ns of a service's ~11 µs per call (``bench/caches.py``); the set is the receiver's to keep,
    so that this module stays without state.
    """
    value = _loads_object(body, "invocation")
    keys = value.keys()
    timeout_ms = traceparent = None
    if keys != _INVOCATION_KEYS:
        if keys != _EXTENDED_KEYS and keys not in _TRACED_KEYS:
            raise WireError(
                f"invocation keys are {sorted(value)},"
                f" expected {sorted(_INVOCATION_KEYS)} (and optionally {TIMEOUT_KEY!r}, {TRACE_KEY!r})"
            )
        if TIMEOUT_KEY in keys:
            timeout_ms = value[TIMEOUT_KEY]
            if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
                raise WireError(f"invocation {TIMEOUT_KEY} must be a non-negative integer, not {timeout_ms!r}")
        if TRACE_KEY in keys:
            traceparent = value[TRACE_KEY]
            if not isinstance(traceparent, str) or len(traceparent) > 256:
                raise WireError(f"invocation {TRACE_KEY} must be a W3C traceparent string")
    call_id, caller_id, reply_to = value["id"], value["caller_id"], value["reply_topic"]
    if not (isinstance(call_id, str) and isinstance(caller_id, str) and isinstance(reply_to, str)):
        raise WireError("invocation id, caller_id and reply_topic must be strings")
    if known_reply_topics is None or reply_to not in known_reply_topics:
        try:
            check_name(reply_to, "reply topic")
        except ValueError as exc:
            raise WireError(str(exc)) from None
        if known_reply_topics is not None:
            if len(known_reply_topics) >= 10_000:
                known_reply_topics.clear()
            known_reply_topics.add(reply_to)
    return Invocation(call_id, caller_id, value["payload"], reply_to, timeout_ms, traceparent)


def encode_reply(call_id: str, is_error: bool, payload: Any) -> bytes:
    return _dumps({"call_id": call_id, "is_error": is_error, "payload": payload})


def decode_reply(body: bytes) -> Reply:
    value = _loads_object(body, "reply")
    if value.keys() != _REPLY_KEYS:
        raise WireError(f"reply keys are {sorted(value)}, expected {sorted(_REPLY_KEYS)}")
    if not isinstance(value["call_id"], str) or not isinstance(value["is_error"], bool):
        raise WireError("reply call_id must be a string and is_error a boolean")
    return Reply(value["call_id"], value["is_error"], value["payload"])


# The error name of the notice a service sends when it drops an invocation that reached it past
# its caller's deadline (docs/protocol.md, "Deadlines"): no Python class can have this name, so it
# cannot be a procedure's own error. Sent only to callers whose deadline it read (almanet ones).
EXPIRED_NOTICE = "almanet:expired"


def is_expired_notice(reply: Reply) -> bool:
    return reply.is_error and isinstance(reply.payload, dict) and reply.payload.get("name") == EXPIRED_NOTICE


def error_payload(name: str, args: tuple[Any, ...] | list[Any], fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """An error reply's payload; arguments that JSON cannot carry travel as their ``str``.

    Typed fields (``fields``) ride as one more element of the message array, ``{"_fields_": ...}``.
    """
    safe: list[Any] = [a if _json_safe(a) else str(a) for a in args]
    if fields:
        safe.append({FIELDS_KEY: {k: v if _json_safe(v) else str(v) for k, v in fields.items()}})
    return {"name": name, "message": safe}


def _json_safe(value: Any) -> bool:
    try:
        orjson.dumps(value, default=_model_json)
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


def fields_of_error(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
    """An error's arguments without their trailing typed fields, and the fields (None: none sent)."""
    if args:
        last = args[-1]
        if type(last) is dict and len(last) == 1 and type(last.get(FIELDS_KEY)) is dict:
            return args[:-1], last[FIELDS_KEY]
    return args, None


# -- discovery replies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Described:
    """One procedure of a discovery reply; ``document`` is its reply as sent (for display)."""

    uri: str
    channel: str
    description: str
    tags: tuple[str, ...]
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Instance:
    """A live service instance, from its ``_api_schema_.client`` reply (0.7.0's or ours).

    ``procedures`` is empty for a 0.7.0 service, which sends only ``routes``; ``served`` gives
    (uri, channel) either way. The host, pid, prepath and start time are almanet's extensions.
    """

    client: str
    routes: tuple[tuple[str, str], ...]
    procedures: tuple[Described, ...]
    prepath: str | None
    host: str | None
    pid: int | None
    started_at: float | None
    # invocations each procedure dropped unrun, its caller having given up (an extension)
    stale: dict[str, int] = field(default_factory=dict)
    # the topics it declares it produces or consumes (``Service.produces``/``consumes``), as sent
    topics: tuple[dict[str, Any], ...] = ()

    @property
    def served(self) -> tuple[tuple[str, str], ...]:
        if self.procedures:
            return tuple((p.uri, p.channel) for p in self.procedures)
        return self.routes

    @property
    def uris(self) -> set[str]:
        return {p.uri for p in self.procedures} | {uri for uri, _ in self.routes}


def _described(value: Any) -> Described | None:
    if not isinstance(value, dict) or not isinstance(value.get("uri"), str):
        return None
    tags = value.get("tags")
    return Described(
        uri=value["uri"],
        channel=str(value.get("channel") or DEFAULT_CHANNEL),
        description=description if isinstance(description := value.get("description"), str) else "",
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        document=value,
    )


def decode_discovery(payload: Any) -> Instance | None:
    """A discovery reply's payload as an ``Instance``, or None if it is none (no ``client`` id).

    Lenient on purpose: one odd field (a route without a channel, a pid that is no number) is
    dropped, not the instance, since the reply may come from any version of any service.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("client"), str):
        return None
    routes = tuple(
        (uri, channel)
        for uri, _, channel in (r.rpartition("/") for r in payload.get("routes") or [] if isinstance(r, str))
        if uri
    )
    raw_procedures = payload.get("procedures")
    described = [_described(p) for p in raw_procedures] if isinstance(raw_procedures, list) else []
    pid, started = payload.get("pid"), payload.get("started_at")
    return Instance(
        client=payload["client"],
        routes=routes,
        procedures=tuple(d for d in described if d is not None),
        prepath=payload.get("prepath") if isinstance(payload.get("prepath"), str) else None,
        host=payload.get("host") if isinstance(payload.get("host"), str) else None,
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        started_at=float(started) if isinstance(started, int | float) and not isinstance(started, bool) else None,
        stale=_stale_counts(payload.get("stale")),
        topics=_declared_topics(payload.get("topics")),
    )


def _declared_topics(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        t
        for t in value
        if isinstance(t, dict) and isinstance(t.get("topic"), str) and t.get("direction") in ("produces", "consumes")
    )


def _stale_counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)}
