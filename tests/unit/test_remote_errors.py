"""almanet._calling.caller.remote_error: an error reply becomes the caller's own exception class."""

from __future__ import annotations

import pytest

import almanet
from almanet._calling.caller import remote_error
from almanet._wire.errors import InternalError, ValidationError, rpc_error
from almanet._wire.protocol import error_payload


class denied_for_test(almanet.rpc_error):
    """The caller's own error class, matched by name."""


class quota_exceeded_for_test(almanet.rpc_error):
    """A subclass whose __init__ takes other arguments than the wire carries."""

    def __init__(self, user: str, limit: int) -> None:
        super().__init__(f"{user} is over {limit}")
        self.user = user
        self.limit = limit


class deeper_for_test(denied_for_test):
    """A grandchild of rpc_error: found too."""


def test_own_subclass_by_name() -> None:
    error = remote_error({"name": "denied_for_test", "message": ["no", 42]})
    assert type(error) is denied_for_test
    assert error.args == ("no", 42)
    assert error.name == "denied_for_test"
    with pytest.raises(denied_for_test):
        raise error


def test_grandchild_subclass_by_name() -> None:
    error = remote_error({"name": "deeper_for_test", "message": []})
    assert type(error) is deeper_for_test
    assert isinstance(error, denied_for_test)


def test_subclass_init_is_bypassed() -> None:
    # quota_exceeded_for_test(*("only one arg",)) would be a TypeError; the wire args go in as-is.
    error = remote_error({"name": "quota_exceeded_for_test", "message": ["only one arg"]})
    assert type(error) is quota_exceeded_for_test
    assert error.args == ("only one arg",)
    assert error.name == "quota_exceeded_for_test"
    assert not hasattr(error, "user")


def test_0_7_0_string_message() -> None:
    error = remote_error({"name": "InternalError", "message": "oops"})
    assert type(error) is InternalError
    assert error.args == ("oops",)


def test_builtin_subclasses_are_found() -> None:
    error = remote_error(error_payload("ValidationError", ("payload.age: bad",)))
    assert type(error) is ValidationError
    assert error.args == ("payload.age: bad",)


def test_unknown_name_gives_plain_rpc_error_with_the_name() -> None:
    error = remote_error({"name": "nobody_defines_this", "message": ["x"]})
    assert type(error) is rpc_error
    assert error.name == "nobody_defines_this"
    assert error.args == ("x",)


@pytest.mark.parametrize("name", ["ValueError", "almanet_error", "broker_error", "SystemExit", "rpc_error"])
def test_names_outside_the_rpc_error_tree_are_never_instantiated(name: str) -> None:
    error = remote_error({"name": name, "message": ["x"]})
    assert type(error) is rpc_error
    assert error.name == name


def test_malformed_payload_is_carried_in_an_rpc_error() -> None:
    error = remote_error("a bare string")
    assert type(error) is rpc_error
    assert error.name == "rpc_error"
    assert error.args == ("a bare string",)


def test_str_of_the_error() -> None:
    assert str(remote_error({"name": "denied_for_test", "message": ["no", 42]})) == "denied_for_test: no, 42"
    assert str(remote_error({"name": "denied_for_test", "message": []})) == "denied_for_test"
    assert str(remote_error({"name": "unknown_x", "message": "oops"})) == "unknown_x: oops"


def test_repr_names_class_and_args() -> None:
    error = remote_error({"name": "quota_exceeded_for_test", "message": ["a"]})
    assert repr(error) == "quota_exceeded_for_test(name='quota_exceeded_for_test', args=('a',))"


def test_round_trip_from_a_raised_error() -> None:
    original = denied_for_test("guest", 3)
    rebuilt = remote_error(error_payload(original.name, original.args))
    assert type(rebuilt) is denied_for_test
    assert rebuilt.args == original.args
    assert str(rebuilt) == str(original)


def test_newest_class_of_a_name_wins() -> None:
    older = type("twice_defined_for_test", (rpc_error,), {})
    newer = type("twice_defined_for_test", (rpc_error,), {})
    error = remote_error({"name": "twice_defined_for_test", "message": []})
    assert type(error) is newer
    assert type(error) is not older


class typed_for_test(almanet.rpc_error):
    """Typed fields, validated on the calling side."""

    sku: str
    left: int = 0


def test_typed_fields_are_validated_into_attributes() -> None:
    error = remote_error({"name": "typed_for_test", "message": ["gone", {"_fields_": {"sku": "a", "left": "2"}}]})
    assert type(error) is typed_for_test
    assert error.args == ("gone",) and error.sku == "a" and error.left == 2
    assert error.fields == {"sku": "a", "left": 2}


def test_fields_that_do_not_validate_are_kept_as_sent() -> None:
    error = remote_error({"name": "typed_for_test", "message": [{"_fields_": {"left": "many"}}]})
    assert type(error) is typed_for_test and error.args == ()
    assert error.fields == {"left": "many"} and error.left == "many"  # type: ignore[comparison-overlap]
    assert not hasattr(error, "sku")


def test_fields_of_an_unknown_class_never_become_attributes() -> None:
    error = remote_error({"name": "nobody_here", "message": ["x", {"_fields_": {"args": 1, "name": "y", "z": 2}}]})
    assert type(error) is rpc_error
    assert error.args == ("x",) and error.name == "nobody_here"
    assert error.fields == {"args": 1, "name": "y", "z": 2}
    assert not hasattr(error, "z")


def test_a_trailing_dict_that_is_not_fields_stays_an_argument() -> None:
    error = remote_error({"name": "typed_for_test", "message": [{"_fields_": 1}, {"other": 2}]})
    assert error.args == ({"_fields_": 1}, {"other": 2})
    assert error.fields == {"left": 0}  # only the class's default
