"""``SessionOptions``: the keywords of ``almanet.new_session``, one typed dict for every pass-through.

``new_session``, ``Service.start`` and ``Service.serve`` pass a session's options along; typed
with ``Unpack[SessionOptions]`` a type checker sees a typo there, and ``check_session_options``
refuses it at run time with the nearest name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from .._nsq.options import ConnectionOptions
from .._wire.checks import check_keywords

__all__ = ["SessionOptions", "check_session_options"]


class SessionOptions(TypedDict, total=False):
    """What a session takes besides its nsqd addresses (``Almanet.__init__`` documents each)."""

    default_timeout: float
    options: ConnectionOptions | None
    max_message_size: int
    lookupd: Sequence[str] | str
    lookupd_interval: float
    fail_fast: bool
    nsqd_http: Sequence[str] | str


def check_session_options(options: Mapping[str, Any], where: str) -> None:
    """A ``TypeError`` naming the nearest option for an unknown one."""
    check_keywords(options, SessionOptions.__annotations__, where)
