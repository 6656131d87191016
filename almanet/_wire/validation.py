"""Payload and result validation from a procedure's annotations, with JSON schemas for discovery.

pydantic does the work for models, dataclasses and typing constructs; plain ``str``/``int``/...
annotations take a shortcut, because a pydantic round trip per call costs more than the call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

import pydantic

from .errors import ValidationError

__all__ = ["Signature", "TypeCheck", "inspect_procedure"]

_PLAIN = {str: "string", int: "integer", float: "number", bool: "boolean"}
_EMPTY = inspect.Parameter.empty


# pydantic error types whose message is written by the model's author and may quote the value
_CUSTOM_ERRORS = frozenset({"value_error", "assertion_error"})


def _describe_errors(error: pydantic.ValidationError, what: str, quote: bool) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"])
        message = item["msg"]
        if not quote:
            if item["type"] in _CUSTOM_ERRORS:
                message = "failed a validator"
            message = f"{message} (got {type(item['input']).__name__})"
        parts.append(f"{what}.{where}: {message}" if where else f"{what}: {message}")
    return "; ".join(parts)


class TypeCheck:
    """Validate values against one annotation; produce JSON-ready output and a JSON schema."""

    __slots__ = ("_adapter", "_plain", "annotation")

    def __init__(self, annotation: Any) -> None:
        self.annotation = annotation
        self._plain = annotation if annotation in _PLAIN else None
        self._adapter: pydantic.TypeAdapter[Any] | None = None
        if self._plain is None and annotation is not Any and annotation is not _EMPTY:
            self._adapter = pydantic.TypeAdapter(annotation)

    def validate(self, value: Any, what: str, *, quote: bool = True) -> Any:
        """``value`` checked (and converted); ``quote=False`` describes a bad one by its type only.

        A caller may see its own payload quoted back, never a procedure's result (it can hold
        anything: a token, someone else's data).
        """
        plain = self._plain
        if plain is not None:
            if type(value) is plain or (plain is float and type(value) is int):
                return value
            shown = f" {value!r:.60}" if quote else ""
            raise ValidationError(f"{what}: expected {_PLAIN[plain]}, got {type(value).__name__}{shown}")
        if self._adapter is None:
            return value
        try:
            return self._adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            raise ValidationError(_describe_errors(exc, what, quote)) from None

    def to_json(self, value: Any) -> Any:
        """A value as JSON-ready data (models become dicts)."""
        if self._adapter is None or value is None or type(value) in _PLAIN:
            return value
        return self._adapter.dump_python(value, mode="json")

    def schema(self) -> dict[str, Any]:
        if self._plain is not None:
            return {"type": _PLAIN[self._plain]}
        if self._adapter is None:
            return {}
        try:
            return self._adapter.json_schema()
        except pydantic.PydanticUserError:  # types with no JSON schema still validate
            return {}


@dataclass(frozen=True, slots=True)
class Signature:
    """How to call a procedure: does it take the session, and what are its payload and result."""

    takes_session: bool
    takes_payload: bool
    payload: TypeCheck
    result: TypeCheck


def inspect_procedure(function: Callable[..., Any]) -> Signature:
    """Read ``(session, payload)``, ``(payload)`` or ``()`` signatures; anything else is a TypeError."""
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"procedure {function.__qualname__} must be an `async def` function")
    parameters = [
        p
        for p in inspect.signature(function).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(parameters) > 2:
        raise TypeError(
            f"procedure {function.__qualname__} takes {len(parameters)} arguments;"
            " use (session, payload), (payload) or ()"
        )
    try:
        hints = get_type_hints(function)
    except Exception as exc:  # an unresolvable forward reference
        raise TypeError(f"cannot read the annotations of {function.__qualname__}: {exc}") from None
    payload_param = parameters[-1] if parameters else None
    payload_hint = hints.get(payload_param.name, Any) if payload_param else Any
    return Signature(
        takes_session=len(parameters) == 2,
        takes_payload=bool(parameters),
        payload=TypeCheck(payload_hint),
        result=TypeCheck(hints.get("return", Any)),
    )
