"""almanet._wire.validation: procedure signatures, payload/result checks and JSON schemas."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Optional

import pydantic
import pytest

import almanet
from almanet._wire.errors import ValidationError, rpc_error
from almanet._wire.validation import Signature, TypeCheck, inspect_procedure


class Person(pydantic.BaseModel):
    name: str
    age: int


@dataclasses.dataclass
class Point:
    x: int
    y: int


# -- inspect_procedure -------------------------------------------------------------------------


async def with_session(session: Any, payload: Person) -> str:
    return payload.name


async def payload_only(payload: int) -> list[int]:
    return [payload]


async def no_args():  # no annotations at all
    return None


async def unannotated(session, payload):  # type: ignore[no-untyped-def]
    return payload


def test_session_and_payload() -> None:
    sig = inspect_procedure(with_session)
    assert isinstance(sig, Signature)
    assert sig.takes_session and sig.takes_payload
    assert sig.payload.annotation is Person
    assert sig.result.annotation is str


def test_payload_only() -> None:
    sig = inspect_procedure(payload_only)
    assert not sig.takes_session and sig.takes_payload
    assert sig.payload.annotation is int
    assert sig.result.annotation == list[int]


def test_no_arguments_are_refused_naming_the_fix() -> None:
    with pytest.raises(TypeError, match=r"procedure no_args takes no payload parameter: declare .*payload: None"):
        inspect_procedure(no_args)


def test_only_the_session_is_refused() -> None:
    async def only_session(session: almanet.Almanet) -> str: ...

    async def only_unannotated_session(session):  # type: ignore[no-untyped-def]
        return 1

    for function in (only_session, only_unannotated_session):
        with pytest.raises(TypeError, match=r"takes only the session, no payload parameter: declare"):
            inspect_procedure(function)


def test_two_payload_looking_parameters_are_refused() -> None:
    async def two(first: int, second: int) -> int: ...

    with pytest.raises(TypeError, match=r"two payload-looking parameters \(first, second\).*one payload"):
        inspect_procedure(two)


def test_payload_none_takes_nothing() -> None:
    async def nothing(session: almanet.Almanet, payload: None) -> int: ...

    sig = inspect_procedure(nothing)
    assert sig.takes_session and sig.payload.validate(None, "payload") is None
    with pytest.raises(ValidationError):
        sig.payload.validate(1, "payload")


def test_an_annotation_without_json_schema_is_refused_at_decoration() -> None:
    async def takes_a_type(payload: type) -> None: ...

    async def returns_a_callable(payload: int) -> Callable[[], None]: ...

    with pytest.raises(TypeError, match=r"takes_a_type: its payload annotation .* JSON Schema; use JSON types"):
        inspect_procedure(takes_a_type)
    with pytest.raises(TypeError, match=r"returns_a_callable: its return annotation"):
        inspect_procedure(returns_a_callable)


def test_unannotated_accepts_anything() -> None:
    sig = inspect_procedure(unannotated)
    assert sig.takes_session and sig.takes_payload
    assert sig.payload.validate([1, "x"], "payload") == [1, "x"]
    assert sig.payload.schema() == {}


def test_keyword_only_parameters_are_not_counted() -> None:
    async def procedure(payload: str, *, flag: bool = False) -> None: ...

    sig = inspect_procedure(procedure)
    assert not sig.takes_session and sig.takes_payload


def test_sync_function_is_rejected() -> None:
    def sync(payload: str) -> str:
        return payload

    with pytest.raises(TypeError, match="must be an `async def` function"):
        inspect_procedure(sync)


def test_three_arguments_are_rejected() -> None:
    async def three(session: Any, payload: str, extra: int) -> None: ...

    with pytest.raises(TypeError, match=r"takes 3 arguments.*\(session, payload\) or \(payload\)"):
        inspect_procedure(three)


def test_unresolvable_annotation_is_a_type_error() -> None:
    async def broken(payload: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match="cannot read the annotations"):
        inspect_procedure(broken)


# -- TypeCheck: plain fast paths ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [
        (str, ["", "text"], [1, b"bytes", None, ["x"]]),
        (int, [0, -5, 2**70], [True, False, 1.0, "1", None]),
        (float, [1.5, 0.0, 3, -2], [True, "1.5", None]),
        (bool, [True, False], [1, 0, "true", None]),
    ],
)
def test_plain_types(annotation: type, good: list[Any], bad: list[Any]) -> None:
    check = TypeCheck(annotation)
    for value in good:
        result = check.validate(value, "payload")
        assert result == value and type(result) is type(value)
    for value in bad:
        with pytest.raises(ValidationError) as info:
            check.validate(value, "payload")
        assert info.value.args[0].startswith("payload: expected ")


def test_bool_is_not_an_int_message() -> None:
    with pytest.raises(ValidationError, match="payload: expected integer, got bool True"):
        TypeCheck(int).validate(True, "payload")


def test_validation_error_is_an_rpc_error() -> None:
    with pytest.raises(rpc_error):
        TypeCheck(str).validate(1, "payload")


@pytest.mark.parametrize(
    ("annotation", "kind"), [(str, "string"), (int, "integer"), (float, "number"), (bool, "boolean")]
)
def test_plain_schemas(annotation: type, kind: str) -> None:
    assert TypeCheck(annotation).schema() == {"type": kind}


# -- TypeCheck: pydantic -----------------------------------------------------------------------


def test_model_from_dict() -> None:
    person = TypeCheck(Person).validate({"name": "Aidar", "age": 30}, "payload")
    assert person == Person(name="Aidar", age=30)


def test_model_error_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        TypeCheck(Person).validate({"name": "Aidar", "age": "old"}, "payload")
    message = str(info.value)
    assert "payload.age" in message
    assert "payload.name" not in message


def test_model_error_names_every_missing_field() -> None:
    with pytest.raises(ValidationError) as info:
        TypeCheck(Person).validate({}, "result")
    message = str(info.value)
    assert "result.name" in message and "result.age" in message


def test_model_to_json_is_a_dict() -> None:
    check = TypeCheck(Person)
    data = check.to_json(Person(name="A", age=1))
    assert data == {"name": "A", "age": 1}
    assert type(data) is dict


def test_model_schema() -> None:
    schema = TypeCheck(Person).schema()
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"name", "age"}
    assert schema["properties"]["age"]["type"] == "integer"
    assert set(schema["required"]) == {"name", "age"}


def test_dataclass() -> None:
    check = TypeCheck(Point)
    assert check.validate({"x": 1, "y": 2}, "payload") == Point(1, 2)
    assert check.to_json(Point(3, 4)) == {"x": 3, "y": 4}
    with pytest.raises(ValidationError, match=r"payload\.y"):
        check.validate({"x": 1, "y": "nope"}, "payload")
    assert set(check.schema()["properties"]) == {"x", "y"}


def test_list_of_int() -> None:
    check = TypeCheck(list[int])
    assert check.validate([1, 2, 3], "payload") == [1, 2, 3]
    with pytest.raises(ValidationError, match=r"payload\.1"):
        check.validate([1, "x", 3], "payload")
    with pytest.raises(ValidationError):
        check.validate("not a list", "payload")
    assert check.schema() == {"type": "array", "items": {"type": "integer"}}


def test_optional() -> None:
    check = TypeCheck(Optional[int])  # noqa: UP045 - the spelling users write
    assert check.validate(None, "payload") is None
    assert check.validate(5, "payload") == 5
    with pytest.raises(ValidationError):
        check.validate("five", "payload")
    assert check.to_json(None) is None
    schema = check.schema()
    assert {"type": "integer"} in schema["anyOf"] and {"type": "null"} in schema["anyOf"]


def test_pipe_optional_model() -> None:
    check = TypeCheck(Person | None)
    assert check.validate(None, "payload") is None
    assert check.to_json(Person(name="B", age=2)) == {"name": "B", "age": 2}


def test_any_passes_everything_through() -> None:
    check = TypeCheck(Any)
    sentinel = object()
    assert check.validate(sentinel, "payload") is sentinel
    assert check.to_json(sentinel) is sentinel
    assert check.schema() == {}


def test_type_without_json_schema_still_validates() -> None:
    check = TypeCheck(type)  # pydantic has no JSON schema for `type`
    assert check.validate(int, "payload") is int
    with pytest.raises(ValidationError):
        check.validate(5, "payload")
    assert check.schema() == {}
