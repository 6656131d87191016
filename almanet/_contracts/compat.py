"""Is a new contract compatible with an old one? Breaking and compatible changes, by procedure.

A caller built against the old document keeps working when every payload it may send is still
accepted, every result it may get is one it accepts, and every error it handles is still
declared. So a payload may accept more (compatible) but not less (breaking), a result may return
less but not more, and a declared error may be added but not removed.

Schemas are compared by structure, not by sampling: ``_lost(a, b)`` names the ways a value valid
under ``a`` can be invalid under ``b`` (types, required and removed fields, enums and constants,
bounds, items, anyOf/oneOf branches). It reads the JSON Schema that pydantic writes; a construct
it does not model (``not``, ``if``/``then``, patterns changed) is reported as a change to check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Change", "Contract", "TopicContract", "compare", "contracts_of", "topics_of"]

_NUMBER_BOUNDS = (("minimum", 1), ("exclusiveMinimum", 1), ("maximum", -1), ("exclusiveMaximum", -1))
_LENGTH_BOUNDS = (("minLength", 1), ("maxLength", -1), ("minItems", 1), ("maxItems", -1))
_UNMODELLED = ("pattern", "not", "if", "then", "else", "format", "multipleOf", "uniqueItems", "dependentRequired")


@dataclass(frozen=True, slots=True)
class Contract:
    """One procedure as a document describes it; schemas stay relative to ``document``."""

    key: str
    uri: str
    channel: str
    payload: Any
    result: Any
    errors: frozenset[str]
    document: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    breaking: bool
    key: str
    text: str

    def __str__(self) -> str:
        return f"{self.key}: {self.text}"


def _pointer(document: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are read, not {ref!r}")
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"$ref {ref!r} does not resolve in the document")
        node = node[part]
    return node


def _deref(document: Mapping[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        node = _pointer(document, node["$ref"])
        seen += 1
        if seen > 64:
            raise ValueError("a $ref cycle without a schema in it")
    return node


def contracts_of(document: Mapping[str, Any]) -> dict[str, Contract]:
    """Every almanet procedure of an AsyncAPI document (the operations with ``x-almanet-uri``)."""
    found: dict[str, Contract] = {}
    operations = document.get("operations")
    if not isinstance(operations, Mapping):
        raise ValueError("the document has no operations object: not an AsyncAPI 3 document")
    for key, operation in operations.items():
        if not isinstance(operation, Mapping) or not isinstance(operation.get("x-almanet-uri"), str):
            continue
        channel = _deref(document, operation.get("channel"))
        invocation = _deref(document, (operation.get("messages") or [None])[0])
        payload = _deref(document, invocation.get("payload")).get("properties", {}).get("payload", {})
        result: Any = {}
        for ref in (operation.get("reply") or {}).get("messages") or []:
            message = _deref(document, ref)
            properties = _deref(document, message.get("payload")).get("properties", {})
            if properties.get("is_error") == {"const": False}:
                result = properties.get("payload", {})
        errors = frozenset(
            str(e["name"]) for e in operation.get("x-almanet-errors") or [] if isinstance(e, Mapping) and "name" in e
        )
        found[str(key)] = Contract(
            key=str(key),
            uri=operation["x-almanet-uri"],
            channel=str(channel.get("x-nsq-channel", "")),
            payload=payload,
            result=result,
            errors=errors,
            document=document,
        )
    return found


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a schema allows (None: any); ``integer`` is within ``number``."""
    if "const" in schema:
        return {_type_of(schema["const"])}
    if "enum" in schema and isinstance(schema["enum"], list):
        return {_type_of(v) for v in schema["enum"]}
    kind = schema.get("type")
    if kind is None:
        return None
    return {kind} if isinstance(kind, str) else set(kind)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _covered(kind: str, allowed: set[str]) -> bool:
    return kind in allowed or (kind == "integer" and "number" in allowed)


def _branches(schema: Mapping[str, Any]) -> list[Any] | None:
    for word in ("anyOf", "oneOf"):
        if isinstance(schema.get(word), list):
            return list(schema[word])
    return None


@dataclass(frozen=True, slots=True)
class _Side:
    """The documents ``a`` and ``b`` come from; ``flip``: ``a`` is the newer, so wording reads old → new."""

    da: Mapping[str, Any]
    db: Mapping[str, Any]
    flip: bool

    def became(self, what: str, in_a: Any, in_b: Any) -> str:
        old, new = (in_b, in_a) if self.flip else (in_a, in_b)
        return f"{what} {old} became {new}"


def _lost(a: Any, b: Any, side: _Side, where: str, depth: int = 0) -> list[str]:
    """Ways a value valid under ``a`` is invalid under ``b``; [] when none is found."""
    da, db = side.da, side.db
    if depth > 32:
        return []
    a, b = _deref(da, a), _deref(db, b)
    if a is False or b is True or b == {}:
        return []
    if a is True:
        a = {}
    if b is False:
        return [f"{where}: nothing is accepted any more"]
    branches_a = _branches(a)
    if branches_a is not None:
        return [r for branch in branches_a for r in _lost(branch, b, side, where, depth + 1)]
    branches_b = _branches(b)
    if branches_b is not None:
        # some branch of b must take all of a: report the closest branch's reasons
        best: list[str] | None = None
        for branch in branches_b:
            missed = _lost(a, branch, side, where, depth + 1)
            if not missed:
                return []
            if best is None or len(missed) < len(best):
                best = missed
        return best or []
    if isinstance(b.get("allOf"), list):
        return [r for part in b["allOf"] for r in _lost(a, part, side, where, depth + 1)]
    if isinstance(a.get("allOf"), list) and len(a["allOf"]) == 1:
        return _lost(a["allOf"][0], b, side, where, depth + 1)
    reasons: list[str] = []
    types_a, types_b = _types(a), _types(b)
    if types_b is not None:
        if types_a is None:
            return [f"{where}: " + side.became("type", "any", " or ".join(sorted(types_b)))]
        gone = sorted(t for t in types_a if not _covered(t, types_b))
        if gone:
            return [f"{where}: " + side.became("type", " or ".join(sorted(types_a)), " or ".join(sorted(types_b)))]
    if "enum" in b or "const" in b:
        allowed_b = b["enum"] if "enum" in b else [b["const"]]
        values_a = a["enum"] if "enum" in a else [a["const"]] if "const" in a else None
        if values_a is None:
            reasons.append(f"{where}: " + side.became("values", "any", repr(allowed_b)))
        else:
            missing = [v for v in values_a if v not in allowed_b]
            if missing:
                which = ", ".join(repr(v) for v in missing)
                reasons.append(f"{where}: {which} " + ("added" if side.flip else "no longer allowed"))
    for bound, sign in _NUMBER_BOUNDS + _LENGTH_BOUNDS:
        if bound in b:
            old = a.get(bound)
            if old is None or (b[bound] - old) * sign > 0:
                reasons.append(f"{where}: " + side.became(bound, old if old is not None else "none", b[bound]))
    for word in _UNMODELLED:
        if word in b and a.get(word) != b.get(word):
            reasons.append(f"{where}: " + side.became(word, repr(a.get(word)), repr(b[word])) + " (check by hand)")
    reasons.extend(_lost_object(a, b, side, where, depth))
    if "items" in b and isinstance(b["items"], Mapping | bool):
        reasons.extend(_lost(a.get("items", {}), b["items"], side, f"{where}[]", depth + 1))
    return reasons


def _lost_object(a: Mapping[str, Any], b: Mapping[str, Any], side: _Side, where: str, depth: int) -> list[str]:
    reasons: list[str] = []
    props_a: Mapping[str, Any] = a.get("properties") or {}
    props_b: Mapping[str, Any] = b.get("properties") or {}
    required_a, required_b = set(a.get("required") or ()), set(b.get("required") or ())
    for name in sorted(required_b - required_a):
        if side.flip:  # a result: the field may now be missing
            reasons.append(f"{where}.{name}: " + ("no longer always there" if name in props_a else "gone"))
        else:
            reasons.append(f"{where}.{name}: " + ("now required" if name in props_a else "a new required field"))
    closed_b = b.get("additionalProperties") is False
    for name, schema in props_a.items():
        if name in props_b:
            reasons.extend(_lost(schema, props_b[name], side, f"{where}.{name}", depth + 1))
        elif closed_b:
            reasons.append(f"{where}.{name}: " + ("field added" if side.flip else "field removed"))
        elif isinstance(b.get("additionalProperties"), Mapping):
            reasons.extend(_lost(schema, b["additionalProperties"], side, f"{where}.{name}", depth + 1))
    if closed_b and a.get("additionalProperties") is not False and "properties" in b:
        reasons.append(f"{where}: extra fields no longer allowed")
    extra_a, extra_b = a.get("additionalProperties"), b.get("additionalProperties")
    if isinstance(extra_b, Mapping) and extra_b and not props_b:
        reasons.extend(_lost(extra_a if isinstance(extra_a, Mapping) else {}, extra_b, side, f"{where}{{}}", depth + 1))
    return reasons


@dataclass(frozen=True, slots=True)
class TopicContract:
    """A topic a service declared it produces or consumes, as a document describes it."""

    key: str
    topic: str
    direction: str  # "produces" or "consumes"
    message: Any  # its JSON Schema, relative to the document
    channel: str | None
    description: str
    prepath: str | None


def topics_of(document: Mapping[str, Any]) -> dict[str, TopicContract]:
    """Every declared topic of an AsyncAPI document (the operations with ``x-almanet-topic``), by key."""
    found: dict[str, TopicContract] = {}
    for key, operation in (document.get("operations") or {}).items():
        if not isinstance(operation, Mapping) or not isinstance(operation.get("x-almanet-topic"), str):
            continue
        message = _deref(document, (operation.get("messages") or [None])[0])
        channel, prepath = operation.get("x-nsq-channel"), operation.get("x-almanet-prepath")
        found[str(key)] = TopicContract(
            key=str(key),
            topic=operation["x-almanet-topic"],
            direction=str(operation.get("x-almanet-direction")),
            message=message.get("payload", {}) if isinstance(message, Mapping) else {},
            channel=channel if isinstance(channel, str) else None,
            description=str(operation.get("description") or ""),
            prepath=prepath if isinstance(prepath, str) else None,
        )
    return found


def _topics_of(document: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """The declared topics' operations: key -> (direction, message schema)."""
    return {key: (t.direction, t.message) for key, t in topics_of(document).items()}


def _compare_topics(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """A produced topic's messages may carry less, not more; a consumed one may accept more, not less."""
    before, after = _topics_of(old), _topics_of(new)
    changes = [
        Change(True, key, f"topic no longer {before[key][0].removesuffix('s')}d")
        for key in sorted(before.keys() - after.keys())
    ]
    changes += [Change(False, key, f"topic {after[key][0]} added") for key in sorted(after.keys() - before.keys())]
    forward, backward = _Side(old, new, flip=False), _Side(new, old, flip=True)
    for key in sorted(before.keys() & after.keys()):
        (direction, was), (_, now) = before[key], after[key]
        if direction == "produces":  # its consumers must still read every message it sends
            changes += [
                Change(True, key, f"its messages carry more or other types: {r}")
                for r in _lost(now, was, backward, "message")
            ]
            changes += [
                Change(False, key, f"its messages carry less: {r}") for r in _lost(was, now, forward, "message")
            ]
        else:  # its producers' messages must still be accepted
            changes += [
                Change(True, key, f"it accepts fewer messages: {r}") for r in _lost(was, now, forward, "message")
            ]
            changes += [
                Change(False, key, f"it accepts more messages: {r}") for r in _lost(now, was, backward, "message")
            ]
    return changes


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new``; ``Change.breaking`` for those that break old callers."""
    before, after = contracts_of(old), contracts_of(new)
    changes: list[Change] = _compare_topics(old, new)
    for key in sorted(before.keys() - after.keys()):
        changes.append(Change(True, key, "procedure gone"))
    for key in sorted(after.keys() - before.keys()):
        changes.append(Change(False, key, "procedure added"))
    for key in sorted(before.keys() & after.keys()):
        was, now = before[key], after[key]
        forward, backward = _Side(old, new, flip=False), _Side(new, old, flip=True)
        for reason in _lost(was.payload, now.payload, forward, "payload"):
            changes.append(Change(True, key, f"the payload accepts less: {reason}"))
        for reason in _lost(now.payload, was.payload, backward, "payload"):
            changes.append(Change(False, key, f"the payload accepts more: {reason}"))
        for reason in _lost(now.result, was.result, backward, "result"):
            changes.append(Change(True, key, f"the result returns more or differently typed: {reason}"))
        for reason in _lost(was.result, now.result, forward, "result"):
            changes.append(Change(False, key, f"the result returns less: {reason}"))
        for name in sorted(was.errors - now.errors):
            changes.append(Change(True, key, f"declared error {name} gone"))
        for name in sorted(now.errors - was.errors):
            changes.append(Change(False, key, f"declared error {name} added"))
    return changes
