"""almanet._nsq.names: NSQ's topic and channel rules, checked before anything reaches nsqd."""

from __future__ import annotations

import string

import pytest

from almanet._nsq.names import EPHEMERAL_SUFFIX, MAX_NAME_LENGTH, check_name, is_ephemeral, is_valid_name

ALLOWED = string.ascii_letters + string.digits + "._-"

VALID = [
    "a",
    "1",
    ".",
    "_rpc_.net.example.greeting",
    "Topic-Name_2.x",
    "a" * 64,
    "chan#ephemeral",
    "c" * (64 - len("#ephemeral")) + "#ephemeral",
    ALLOWED[:32],
    ALLOWED[32:],
]

INVALID = [
    "",
    "a" * 65,
    "c" * (65 - len("#ephemeral")) + "#ephemeral",  # the suffix counts toward 64
    "has space",
    "slash/name",
    "colon:name",
    "tab\tname",
    "newline\n",
    "#ephemeral",  # nothing before the suffix
    "a#ephemeral#ephemeral",
    "a#ephemeralx",
    "a#other",
    "a#",
    "ünïcode",
    "٣",  # an Arabic-Indic digit: \d would take it, NSQ does not
    "\uff41",  # a fullwidth letter
]


def test_constants() -> None:
    assert MAX_NAME_LENGTH == 64
    assert EPHEMERAL_SUFFIX == "#ephemeral"


@pytest.mark.parametrize("name", VALID)
def test_valid_names(name: str) -> None:
    assert is_valid_name(name)
    assert check_name(name) == name
    assert check_name(name, "channel") == name


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(ValueError):
        check_name(name)


@pytest.mark.parametrize("char", sorted(set(string.printable) - set(ALLOWED)))
def test_every_other_printable_character_is_rejected(char: str) -> None:
    assert not is_valid_name(f"ok{char}ok")


def test_agrees_with_gnsq_on_lengths() -> None:
    gnsq_protocol = pytest.importorskip("gnsq.protocol")
    for n in range(0, 80):
        name = "x" * n
        assert is_valid_name(name) == gnsq_protocol.valid_topic_name(name), n
        eph = "x" * n + "#ephemeral"
        assert is_valid_name(eph) == gnsq_protocol.valid_channel_name(eph), n


def test_is_ephemeral() -> None:
    assert is_ephemeral("chan#ephemeral")
    assert not is_ephemeral("chan")
    assert not is_ephemeral("chan#ephemeralx")


def test_empty_message_names_the_kind() -> None:
    with pytest.raises(ValueError, match=r"^channel name is empty$"):
        check_name("", "channel")


def test_too_long_message_gives_the_length_and_limit() -> None:
    name = "t" * 70
    with pytest.raises(ValueError) as info:
        check_name(name, "topic")
    message = str(info.value)
    assert "70 characters" in message
    assert "64" in message
    assert message.startswith("topic name")


def test_bad_character_message_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError) as info:
        check_name("bad name", "channel")
    message = str(info.value)
    assert message.startswith("channel name 'bad name' is invalid")
    for allowed in ("letters", "digits", "'.'", "'_'", "'-'", "#ephemeral"):
        assert allowed in message


def test_non_string_is_a_value_error_naming_the_type() -> None:
    with pytest.raises(ValueError, match="must be a string, not int"):
        check_name(42)  # type: ignore[arg-type]
