"""A registered procedure: its URI, channel, function, signature and discovery description.

Below both the registry (``service``) and the invocations that run it, so that neither imports
the other for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from .._calling.contract import AbstractProcedure
from .._wire import deadline as _deadline
from .._wire.errors import rpc_error
from .._wire.validation import Signature

__all__ = ["DISCOVERY_VERSION", "Procedure", "ServiceOptions", "check_same", "error_classes"]

DISCOVERY_VERSION = 1


@dataclass(frozen=True, slots=True)
class Procedure:
    uri: str
    channel: str
    function: Callable[..., Awaitable[Any]]
    signature: Signature
    description: str
    tags: tuple[str, ...] = ()
    # an invocation without a deadline older than this (seconds since nsqd took it) is dropped
    stale_after: float | None = _deadline.DEFAULT_STALE_AFTER
    # the errors it declares it raises (``raises=``), listed by discovery
    errors: tuple[type[rpc_error], ...] = ()

    def describe(self, session_id: str) -> dict[str, Any]:
        """0.7.0's per-procedure discovery reply; ``errors`` only when declared (0.7.0 ignores it)."""
        description = {
            "client": session_id,
            "version": DISCOVERY_VERSION,
            "uri": self.uri,
            "channel": self.channel,
            "tags": list(self.tags),
            "description": self.description,
            "payload_json_schema": self.signature.payload.schema(),
            "return_json_schema": self.signature.result.schema(),
            "stale_after": self.stale_after,
        }
        if self.errors:
            description["errors"] = [
                {"name": error.__name__, "fields_json_schema": error.fields_schema() or {}} for error in self.errors
            ]
        return description


class ServiceOptions(TypedDict, total=False):
    """``almanet.new_service``'s keywords besides ``prepath`` (``Service.__init__`` documents them)."""

    channel: str
    max_concurrency: int
    drain_timeout: float
    tags: tuple[str, ...]
    lookupd: Sequence[str] | str
    lookupd_interval: float | None
    stale_after: float | None


def error_classes(raises: Iterable[type[rpc_error]]) -> tuple[type[rpc_error], ...]:
    errors = tuple(raises)
    for error in errors:
        if not (isinstance(error, type) and issubclass(error, rpc_error)):
            raise TypeError(f"raises= takes rpc_error subclasses, not {error!r}")
    return errors


def check_same(abstract: AbstractProcedure[Any, Any], own: Signature, code: Callable[..., Any]) -> None:
    """An implementation that annotates its payload or result must say what the abstract says."""
    for what, mine, declared in (
        ("payload", own.payload.annotation, abstract.payload_model),
        ("return", own.result.annotation, abstract.return_model),
    ):
        if mine is not Any and mine != declared:
            raise TypeError(
                f"{code.__qualname__} implements {abstract.uri} but annotates its {what} as {mine!r},"
                f" not {declared!r} as the abstract procedure does: use the same type"
            )
