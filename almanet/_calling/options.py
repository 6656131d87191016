"""``SessionOptions``: the keywords of ``almanet.new_session``, one typed dict for every pass-through.

``new_session``, ``Service.start`` and ``Service.serve`` pass a session's options along; typed
with ``Unpack[SessionOptions]`` a type checker sees a typo there, and ``check_session_options``
refuses it at run time with the nearest name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from .._nsq.options import ConnectionOptions
from .._wire.checks import check_keywords, check_timeout
from .._wire.errors import invalid_argument

__all__ = ["SessionOptions", "check_session_options", "with_liveness"]


class SessionOptions(TypedDict, total=False):
    """What a session takes besides its nsqd addresses (``Almanet.__init__`` documents each)."""

    default_timeout: float
    options: ConnectionOptions | None
    max_message_size: int
    lookupd: Sequence[str] | str
    lookupd_interval: float
    fail_fast: bool
    nsqd_http: Sequence[str] | str
    heartbeat: float | None
    silent_after: float | None
    ack_timeout: float | None


def check_session_options(options: Mapping[str, Any], where: str) -> None:
    """A ``TypeError`` naming the nearest option for an unknown one."""
    check_keywords(options, SessionOptions.__annotations__, where)


def with_liveness(
    options: ConnectionOptions, heartbeat: float | None, silent_after: float | None, ack_timeout: float | None
) -> ConnectionOptions:
    """The session's liveness keywords (seconds) over its connection options: the same three as
    the ``[liveness]`` settings, so that code need not build a ``ConnectionOptions`` for them."""
    changes: dict[str, Any] = {}
    if heartbeat is not None:
        changes["heartbeat_interval_ms"] = round(check_timeout(heartbeat, "heartbeat") * 1000)
    if silent_after is not None:
        changes["silent_after"] = check_timeout(silent_after, "silent_after")
    if ack_timeout is not None:
        changes["ack_timeout"] = check_timeout(ack_timeout, "ack_timeout")
    if not changes:
        return options
    try:
        return dataclasses.replace(options, **changes)
    except ValueError as exc:
        raise invalid_argument(str(exc)) from None
