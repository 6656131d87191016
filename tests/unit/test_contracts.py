"""The contract logic with data alone: documents built from descriptions, changes classified."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from almanet._contracts.asyncapi import ServiceDescription, build_document
from almanet._contracts.compat import compare


def _procedure(
    uri: str, payload: dict[str, Any], result: dict[str, Any], errors: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "uri": uri,
        "channel": "RPC",
        "description": "",
        "tags": [],
        "payload_json_schema": payload,
        "return_json_schema": result,
        "errors": [{"name": e, "fields_json_schema": {}} for e in errors],
    }


def _doc(*procedures: dict[str, Any]) -> dict[str, Any]:
    return build_document([ServiceDescription("net.t", procedures)], title="t")


ITEM = {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}, "required": ["name"]}


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[bool, str]]:
    return [(c.breaking, c.text) for c in compare(_doc(old), _doc(new))]


def test_an_unchanged_contract_has_no_change() -> None:
    same = _procedure("net.t.p", ITEM, {"type": "string"}, ("nope",))
    assert _changes(same, copy.deepcopy(same)) == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({**ITEM, "required": ["name", "n"]}, (True, "the payload accepts less: payload.n: now required")),
        (
            {**ITEM, "properties": {**ITEM["properties"], "n": {"type": "integer", "maximum": 5}}},
            (True, "the payload accepts less: payload.n: maximum none became 5"),
        ),
        (
            {**ITEM, "properties": {**ITEM["properties"], "name": {"enum": ["a", "b"]}}},
            (True, "the payload accepts less: payload.name: values any became ['a', 'b']"),
        ),
    ],
)
def test_a_payload_that_accepts_less_breaks(payload: dict[str, Any], expected: tuple[bool, str]) -> None:
    assert _changes(_procedure("net.t.p", ITEM, {}), _procedure("net.t.p", payload, {})) == [expected]


def test_a_payload_that_accepts_more_is_compatible() -> None:
    wider = {**ITEM, "required": [], "properties": {**ITEM["properties"], "n": {"type": "number"}}}
    changes = _changes(_procedure("net.t.p", ITEM, {}), _procedure("net.t.p", wider, {}))
    assert changes and all(not breaking for breaking, _ in changes), changes


def test_a_result_that_returns_more_breaks_and_one_that_returns_less_does_not() -> None:
    narrow = {"enum": ["ok"]}
    wide = {"type": "string"}
    assert _changes(_procedure("net.t.p", {}, narrow), _procedure("net.t.p", {}, wide)) == [
        (True, "the result returns more or differently typed: result: values ['ok'] became any")
    ]
    assert _changes(_procedure("net.t.p", {}, wide), _procedure("net.t.p", {}, narrow))[0][0] is False
    dropped = _changes(_procedure("net.t.p", {}, ITEM), _procedure("net.t.p", {}, {**ITEM, "required": []}))
    assert dropped == [(True, "the result returns more or differently typed: result.name: no longer always there")]


def test_procedures_and_declared_errors_gone_break_added_ones_do_not() -> None:
    one = _procedure("net.t.p", {}, {}, ("a", "b"))
    old, new = _doc(one, _procedure("net.t.q", {}, {})), _doc(_procedure("net.t.p", {}, {}, ("b", "c")))
    assert [(c.breaking, str(c)) for c in compare(old, new)] == [
        (True, "net.t.q: procedure gone"),
        (True, "net.t.p: declared error a gone"),
        (False, "net.t.p: declared error c added"),
    ]
    assert [(c.breaking, str(c)) for c in compare(new, old)] == [
        (False, "net.t.q: procedure added"),
        (True, "net.t.p: declared error c gone"),
        (False, "net.t.p: declared error a added"),
    ]


def test_anyof_branches_are_compared_branch_by_branch() -> None:
    maybe = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert _changes(_procedure("net.t.p", {"type": "integer"}, {}), _procedure("net.t.p", maybe, {}))[0][0] is False
    assert _changes(_procedure("net.t.p", maybe, {}), _procedure("net.t.p", {"type": "integer"}, {})) == [
        (True, "the payload accepts less: payload: type null became integer")
    ]


def test_defs_of_two_procedures_are_hoisted_once_or_renamed_when_they_differ() -> None:
    item_ref = {"$ref": "#/$defs/Item"}
    first = _procedure("net.t.a", {"$defs": {"Item": ITEM}, **item_ref}, {})
    same = _procedure("net.t.b", {"$defs": {"Item": ITEM}, "type": "array", "items": item_ref}, {})
    other = _procedure("net.t.c", {"$defs": {"Item": {"type": "string"}}, **item_ref}, {})
    schemas = _doc(first, same, other)["components"]["schemas"]
    assert schemas["Item"] == ITEM and schemas["Item2"] == {"type": "string"}
    assert schemas["net.t.a.payload"] == {"$ref": "#/components/schemas/Item"}
    assert schemas["net.t.b.payload"]["items"] == {"$ref": "#/components/schemas/Item"}
    assert schemas["net.t.c.payload"] == {"$ref": "#/components/schemas/Item2"}


def test_one_uri_on_two_channels_is_two_operations() -> None:
    red = _procedure("net.t.p", {}, {})
    blue = {**red, "channel": "blue"}
    operations = _doc(red, blue)["operations"]
    assert sorted(operations) == ["net.t.p.RPC", "net.t.p.blue"]
    assert {o["x-almanet-uri"] for o in operations.values()} == {"net.t.p"}


def _topic(direction: str, schema: dict[str, Any]) -> ServiceDescription:
    declared = {"topic": "orders", "direction": direction, "message_json_schema": schema, "description": ""}
    return ServiceDescription("net.t", (), topics=(declared,))


def _topic_changes(direction: str, old: dict[str, Any], new: dict[str, Any]) -> list[tuple[bool, str]]:
    before = build_document([_topic(direction, old)], title="t")
    after = build_document([_topic(direction, new)], title="t")
    return [(c.breaking, str(c)) for c in compare(before, after)]


def test_a_produced_topic_may_carry_less_and_a_consumed_one_accept_more() -> None:
    key = "net.t.produces.orders"
    assert _topic_changes("produces", {"type": "integer"}, {"type": "number"}) == [
        (True, f"{key}: its messages carry more or other types: message: type integer became number")
    ]
    assert _topic_changes("produces", {"type": "number"}, {"type": "integer"})[0][0] is False
    key = "net.t.consumes.orders"
    assert _topic_changes("consumes", {"type": "number"}, {"type": "integer"}) == [
        (True, f"{key}: it accepts fewer messages: message: type number became integer")
    ]
    assert _topic_changes("consumes", {"type": "integer"}, {"type": "number"})[0][0] is False
    gone = compare(build_document([_topic("produces", {})], title="t"), build_document([], title="t"))
    assert [(c.breaking, str(c)) for c in gone] == [(True, "net.t.produces.orders: topic no longer produced")]


def test_declaring_a_topic_checks_its_name_its_type_and_duplicates() -> None:
    import almanet

    service = almanet.new_service(prepath="net.t")
    service.produces("orders", int)
    with pytest.raises(almanet.invalid_argument, match="declared twice as produces"):
        service.produces("orders", int)
    service.consumes("orders", int, channel="audit")  # its own reader of the same topic
    with pytest.raises(almanet.invalid_argument, match="cannot declare topic 'bad topic'"):
        service.produces("bad topic")
    with pytest.raises(TypeError, match="has no JSON Schema"):
        service.produces("callbacks", type(lambda: None))
    assert [t.describe()["direction"] for t in service.topics.values()] == ["produces", "consumes"]
