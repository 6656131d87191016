"""NSQ's naming rules for topics and channels, checked before anything reaches nsqd.

nsqd answers a bad name with a fatal error and closes the connection, so callers validate first.
"""

from __future__ import annotations

import re

__all__ = ["EPHEMERAL_SUFFIX", "MAX_NAME_LENGTH", "check_name", "is_ephemeral", "is_valid_name"]

EPHEMERAL_SUFFIX = "#ephemeral"
MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[.a-zA-Z0-9_-]+(#ephemeral)?")


def is_valid_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name) is not None


def is_ephemeral(name: str) -> bool:
    return name.endswith(EPHEMERAL_SUFFIX)


def check_name(name: object, kind: str = "topic") -> str:
    """Return ``name`` or raise ValueError saying exactly what is wrong with it (any value: user input)."""
    if not isinstance(name, str):
        raise ValueError(f"{kind} name must be a string, not {type(name).__name__}")
    if not name:
        raise ValueError(f"{kind} name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{kind} name {name!r} is {len(name)} characters long; NSQ allows at most 64")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{kind} name {name!r} is invalid: use only letters, digits, '.', '_' and '-'"
            " (optionally ending in '#ephemeral')"
        )
    return name
