"""An AsyncAPI 3.0.0 document of almanet procedures, built from their discovery descriptions.

Each procedure is a ``receive`` operation on its ``_rpc_.<uri>`` channel whose ``reply`` names
the reply topic carried in the invocation (``$message.payload#/reply_topic``) and correlates by
the call id. pydantic's ``$defs`` are hoisted into ``components.schemas`` (renamed when two
procedures use one name for different schemas) so that every ``$ref`` resolves in the document.
NSQ has no AsyncAPI binding: its specifics ride in ``x-nsq-*`` fields, almanet's in ``x-almanet-*``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._wire.protocol import DEFAULT_CHANNEL, REPLY_CHANNEL, REPLY_PREFIX, rpc_topic

__all__ = ["ASYNCAPI_VERSION", "ServiceDescription", "build_document", "component_name"]

ASYNCAPI_VERSION = "3.0.0"
_KEY = re.compile(r"[^a-zA-Z0-9._-]")
_LOCAL_REF = "#/$defs/"
_COMPONENT_REF = "#/components/schemas/"


@dataclass(frozen=True, slots=True)
class ServiceDescription:
    """What the document is built from: one service (instance) and its procedures' descriptions."""

    prepath: str | None
    procedures: tuple[Mapping[str, Any], ...]
    servers: tuple[str, ...] = ()
    # the topics it declares (discovery's ``topics``: topic, direction, message_json_schema, ...)
    topics: tuple[Mapping[str, Any], ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)


def component_name(text: str) -> str:
    """A component key AsyncAPI accepts (``^[a-zA-Z0-9.\\-_]+$``)."""
    return _KEY.sub("_", text) or "_"


class _Schemas:
    """``components.schemas``: each procedure's schemas with their ``$defs`` hoisted, names unique."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def add(self, name: str, schema: Mapping[str, Any] | None) -> dict[str, str]:
        """Store ``schema`` as ``name`` (its ``$defs`` beside it) and return a ``$ref`` to it."""
        body = copy.deepcopy(dict(schema or {}))
        defs = body.pop("$defs", {}) or {}
        renamed: dict[str, str] = {}
        # a definition is stored under its own name when free (or already there, identical)
        for def_name, definition in defs.items():
            renamed[def_name] = self._free_name(component_name(def_name), definition, defs)
        for def_name, definition in defs.items():
            self.components[renamed[def_name]] = _rewrite_refs(definition, renamed)
        key = self._unique(component_name(name))
        self.components[key] = _rewrite_refs(body, renamed)
        return {"$ref": _COMPONENT_REF + key}

    def _free_name(self, wanted: str, definition: Any, defs: Mapping[str, Any]) -> str:
        candidate, n = wanted, 1
        while candidate in self.components:
            # the same definition (after the same renames) is shared, not copied
            if self.components[candidate] == _rewrite_refs(definition, {k: k for k in defs}):
                return candidate
            n += 1
            candidate = f"{wanted}{n}"
        return candidate

    def _unique(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in self.components:
            n += 1
            candidate = f"{wanted}{n}"
        return candidate


def _rewrite_refs(value: Any, renamed: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith(_LOCAL_REF):
                target = item[len(_LOCAL_REF) :]
                out[key] = _COMPONENT_REF + renamed.get(target, component_name(target))
            else:
                out[key] = _rewrite_refs(item, renamed)
        return out
    if isinstance(value, list):
        return [_rewrite_refs(item, renamed) for item in value]
    return value


def _invocation_payload(payload_ref: dict[str, str]) -> dict[str, Any]:
    # 0.7.0's invocation, plus the optional extensions almanet sends to subscribers that announce them
    return {
        "type": "object",
        "required": ["id", "caller_id", "payload", "reply_topic"],
        "properties": {
            "id": {"type": "string", "description": "the call id; the reply's call_id repeats it"},
            "caller_id": {"type": "string"},
            "reply_topic": {
                "type": "string",
                "description": f"where the reply goes: {REPLY_PREFIX}<caller session id>, an ephemeral topic",
            },
            "timeout_ms": {"type": "integer", "minimum": 0, "description": "the caller's remaining budget"},
            "traceparent": {"type": "string", "description": "W3C trace context"},
            "payload": payload_ref,
        },
    }


def _result_payload(result_ref: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["call_id", "is_error", "payload"],
        "properties": {"call_id": {"type": "string"}, "is_error": {"const": False}, "payload": result_ref},
    }


def _error_payload(names: list[str]) -> dict[str, Any]:
    name: dict[str, Any] = {"type": "string"}
    if names:
        name["description"] = "declared: " + ", ".join(names) + "; any other name is an undeclared or internal error"
    return {
        "type": "object",
        "required": ["call_id", "is_error", "payload"],
        "properties": {
            "call_id": {"type": "string"},
            "is_error": {"const": True},
            "payload": {
                "type": "object",
                "required": ["name", "message"],
                "properties": {
                    "name": name,
                    "message": {
                        "description": 'the error\'s arguments; typed fields last, as {"_fields_": {...}}',
                        "type": ["array", "string"],
                    },
                },
            },
        },
    }


def _message(name: str, title: str, payload: dict[str, Any], correlated_by: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"name": name, "title": title, "contentType": "application/json", "payload": payload}
    if correlated_by is not None:
        message["correlationId"] = {"location": f"$message.payload#/{correlated_by}"}
    return message


def _operation_keys(descriptions: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """One key per (uri, channel): the URI, or URI and channel when channels share a URI."""
    pairs = list(dict.fromkeys((str(d["uri"]), str(d.get("channel") or DEFAULT_CHANNEL)) for d in descriptions))
    count: dict[str, int] = {}
    for uri, _ in pairs:
        count[uri] = count.get(uri, 0) + 1
    return {(u, c): component_name(u if count[u] == 1 else f"{u}.{c}") for u, c in pairs}


def build_document(
    services: Iterable[ServiceDescription], *, title: str, version: str = "0.0.0", description: str | None = None
) -> dict[str, Any]:
    """The AsyncAPI document of ``services`` (a (uri, channel) served twice is described once)."""
    services = list(services)
    procedures: dict[tuple[str, str], tuple[Mapping[str, Any], ServiceDescription]] = {}
    for service in services:
        for procedure in service.procedures:
            pair = (str(procedure["uri"]), str(procedure.get("channel") or DEFAULT_CHANNEL))
            procedures.setdefault(pair, (procedure, service))
    keys = _operation_keys(p for p, _ in procedures.values())
    schemas = _Schemas()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for (uri, channel), (procedure, service) in sorted(procedures.items()):
        key = keys[(uri, channel)]
        payload_ref = schemas.add(f"{key}.payload", procedure.get("payload_json_schema"))
        result_ref = schemas.add(f"{key}.result", procedure.get("return_json_schema"))
        errors = [e for e in procedure.get("errors") or [] if isinstance(e, dict) and isinstance(e.get("name"), str)]
        declared = []
        for error in errors:
            fields_ref = schemas.add(f"{key}.error.{error['name']}", error.get("fields_json_schema") or {})
            declared.append({"name": error["name"], "fields": fields_ref})
        text = str(procedure.get("description") or "")
        messages[f"{key}.invocation"] = _message(
            f"{key}.invocation", f"call {uri}", _invocation_payload(payload_ref), "id"
        )
        messages[f"{key}.result"] = _message(
            f"{key}.result", f"result of {uri}", _result_payload(result_ref), "call_id"
        )
        error_payload = _error_payload([e["name"] for e in declared])
        messages[f"{key}.error"] = _message(f"{key}.error", f"error of {uri}", error_payload, "call_id")
        channels[key] = {
            "address": rpc_topic(uri),
            "title": uri,
            "messages": {"invocation": {"$ref": f"#/components/messages/{key}.invocation"}},
            "x-nsq-topic": rpc_topic(uri),
            "x-nsq-channel": channel,
            "x-nsq-ephemeral": False,
        }
        channels[f"{key}.reply"] = {
            # the address is the invocation's reply_topic, known only at run time
            "address": None,
            "description": f"the caller's reply topic ({REPLY_PREFIX}<session id>), read from the invocation",
            "messages": {
                "result": {"$ref": f"#/components/messages/{key}.result"},
                "error": {"$ref": f"#/components/messages/{key}.error"},
            },
            "x-nsq-channel": REPLY_CHANNEL,
            "x-nsq-ephemeral": True,
        }
        operation: dict[str, Any] = {"action": "receive", "channel": {"$ref": f"#/channels/{key}"}, "title": uri}
        if text:
            operation["summary"] = text.splitlines()[0][:200]
            operation["description"] = text
        tags = [str(t) for t in procedure.get("tags") or []]
        if tags:
            operation["tags"] = [{"name": t} for t in dict.fromkeys(tags)]
        operation["messages"] = [{"$ref": f"#/channels/{key}/messages/invocation"}]
        operation["reply"] = {
            "address": {"location": "$message.payload#/reply_topic", "description": "the invocation's reply_topic"},
            "channel": {"$ref": f"#/channels/{key}.reply"},
            "messages": [
                {"$ref": f"#/channels/{key}.reply/messages/result"},
                {"$ref": f"#/channels/{key}.reply/messages/error"},
            ],
        }
        operation["x-almanet-uri"] = uri
        operation["x-almanet-errors"] = declared
        if service.prepath:
            operation["x-almanet-prepath"] = service.prepath
        if procedure.get("stale_after") is not None:
            operation["x-almanet-stale-after"] = procedure["stale_after"]
        operations[key] = operation
    _add_topics(services, schemas, channels, operations, messages)
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    document: dict[str, Any] = {"asyncapi": ASYNCAPI_VERSION, "info": info, "defaultContentType": "application/json"}
    servers: dict[str, Any] = {}
    for service in services:
        for address in service.servers:
            servers.setdefault(
                component_name(f"nsqd-{address}"), {"host": address, "protocol": "nsq", "description": "nsqd TCP"}
            )
    if servers:
        document["servers"] = servers
    document["channels"] = channels
    document["operations"] = operations
    document["components"] = {"schemas": schemas.components, "messages": messages}
    return document


def _add_topics(
    services: list[ServiceDescription],
    schemas: _Schemas,
    channels: dict[str, Any],
    operations: dict[str, Any],
    messages: dict[str, Any],
) -> None:
    """Declared produce/consume topics: a channel each, a send (produces) or receive (consumes) operation."""
    for service in services:
        for declared in service.topics:
            topic, direction = str(declared["topic"]), str(declared["direction"])
            channel_key = component_name(f"topic.{topic}")
            owner = service.prepath or "service"
            key = component_name(f"{owner}.{direction}.{topic}")
            if key in operations:  # another instance of the same service
                continue
            channel = channels.setdefault(
                channel_key,
                {
                    "address": topic,
                    "title": topic,
                    "messages": {},
                    "x-nsq-topic": topic,
                    "x-nsq-ephemeral": bool(declared.get("ephemeral")),
                },
            )
            # one message per declaring service: two services may see one topic's messages differently
            payload = schemas.add(f"{key}.message", declared.get("message_json_schema"))
            title = f"a message of {topic}, as {owner} {direction} it"
            messages[f"{key}.message"] = _message(f"{key}.message", title, payload, None)
            channel["messages"][key] = {"$ref": f"#/components/messages/{key}.message"}
            operation: dict[str, Any] = {
                "action": "send" if direction == "produces" else "receive",
                "channel": {"$ref": f"#/channels/{channel_key}"},
                "title": f"{owner} {direction} {topic}",
            }
            text = str(declared.get("description") or "")
            if text:
                operation["description"] = text
            operation["messages"] = [{"$ref": f"#/channels/{channel_key}/messages/{key}"}]
            operation["x-almanet-topic"] = topic
            operation["x-almanet-direction"] = direction
            if declared.get("channel"):
                operation["x-nsq-channel"] = declared["channel"]
            if service.prepath:
                operation["x-almanet-prepath"] = service.prepath
            operations[key] = operation
