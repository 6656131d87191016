"""Payload and result validation from a procedure's annotations, with JSON schemas for discovery.

pydantic does the work for models, dataclasses and typing constructs; plain ``str``/``int``/...
annotations take a shortcut, because a pydantic round trip per call costs more than the call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

import pydantic

from .errors import ValidationError

__all__ = ["Signature", "TypeCheck", "adapter_for", "inspect_procedure", "validated", "validated_json"]

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


def _looks_like_session(parameter: inspect.Parameter, hint: Any) -> bool:
    """A session parameter: annotated ``Almanet``, or unannotated and named ``session``."""
    if hint is not _EMPTY and hint is not Any:
        return getattr(hint, "__name__", None) == "Almanet"
    return parameter.name in ("session", "_session")


def _check_of(function: Callable[..., Any], what: str, hint: Any) -> TypeCheck:
    """A ``TypeCheck`` of ``hint``, or one ``TypeError`` naming the function and the rule."""
    try:
        check = TypeCheck(hint)
        if check._adapter is not None:
            check._adapter.json_schema()
    except Exception as exc:  # pydantic's schema errors say nothing of the procedure
        raise TypeError(
            f"procedure {function.__qualname__}: its {what} annotation {hint!r} cannot be described by a JSON"
            " Schema; use JSON types, a pydantic model, a dataclass or a TypedDict"
            f" ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    return check


def inspect_procedure(function: Callable[..., Any]) -> Signature:
    """Read ``(session, payload)`` or ``(payload)``; anything else is a ``TypeError`` naming the fix."""
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"procedure {function.__qualname__} must be an `async def` function")
    name = function.__qualname__
    parameters = [
        p
        for p in inspect.signature(function).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(parameters) > 2:
        raise TypeError(f"procedure {name} takes {len(parameters)} arguments; use (session, payload) or (payload)")
    try:
        hints = get_type_hints(function)
    except Exception as exc:  # an unresolvable forward reference
        raise TypeError(f"cannot read the annotations of {name}: {exc}") from None
    fix = f"declare `async def {function.__name__}(session: almanet.Almanet, payload: None)` for no payload"
    if not parameters:
        raise TypeError(f"procedure {name} takes no payload parameter: {fix}")
    hint_of = {p.name: hints.get(p.name, _EMPTY) for p in parameters}
    if len(parameters) == 1 and _looks_like_session(parameters[0], hint_of[parameters[0].name]):
        raise TypeError(f"procedure {name} takes only the session, no payload parameter: {fix}")
    if len(parameters) == 2:
        first = parameters[0]
        hint = hint_of[first.name]
        if hint is not _EMPTY and hint is not Any and not _looks_like_session(first, hint):
            raise TypeError(
                f"procedure {name} has two payload-looking parameters ({first.name}, {parameters[1].name}):"
                " a procedure takes one payload; use `(session: almanet.Almanet, payload: Model)`"
                " with a model that holds both"
            )
    payload_hint = hint_of[parameters[-1].name]
    return Signature(
        takes_session=len(parameters) == 2,
        takes_payload=True,
        payload=_check_of(function, "payload", Any if payload_hint is _EMPTY else payload_hint),
        result=_check_of(function, "return", hints.get("return", Any)),
    )


@functools.lru_cache(maxsize=512)
def _cached_adapter(annotation: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(annotation)


def adapter_for(annotation: Any) -> pydantic.TypeAdapter[Any]:
    """One ``TypeAdapter`` per annotation, kept: building one costs far more than validating."""
    try:
        return _cached_adapter(annotation)
    except TypeError:  # an unhashable annotation: built each time
        return pydantic.TypeAdapter(annotation)


def validated(annotation: Any, value: Any, what: str) -> Any:
    """``value`` validated into ``annotation``, or almanet's ``ValidationError`` saying what is wrong."""
    try:
        return adapter_for(annotation).validate_python(value)
    except pydantic.ValidationError as exc:
        raise ValidationError(_describe_errors(exc, what, quote=False)) from None


def validated_json(annotation: Any, body: bytes, what: str) -> Any:
    """JSON ``body`` validated into ``annotation`` in one step (no intermediate Python objects)."""
    try:
        return adapter_for(annotation).validate_json(body)
    except pydantic.ValidationError as exc:
        raise ValidationError(_describe_errors(exc, what, quote=False)) from None
