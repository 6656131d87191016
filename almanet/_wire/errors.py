"""The exceptions almanet raises, all in one tree.

Every error a user can see is one of these; errors of the
layers below (``OSError``, ``ssl``, orjson, pydantic, the NSQ client's own tree) are
translated where they cross into almanet, so ``except almanet.almanet_error`` is enough::

    almanet_error                     base of everything almanet raises on purpose
    ├── config_error                  almanet.toml / environment is wrong (names file and key)
    ├── invalid_argument              a bad URI, topic, channel or payload, caught before sending
    ├── session_state_error           using a session that is not open, or reopening a closed one
    ├── broker_error                  nsqd is unreachable, refused a command, or went away
    ├── rpc_error                     an error raised by a remote procedure, carried over the wire
    │   ├── ValidationError           the payload (or result) did not match the annotations
    │   ├── InternalError             the procedure failed unexpectedly (details stay in its log)
    │   └── <your subclasses>         matched by class name on the calling side
    └── timeout_error                 no reply in time, or nothing serves the URI (also a builtin
                                      TimeoutError); ``reason`` says which: not served, queued, ...
"""

from __future__ import annotations

import inspect
import logging
import typing
from typing import Any, ClassVar

__all__ = [
    "InternalError",
    "ValidationError",
    "almanet_error",
    "broker_error",
    "config_error",
    "fields_validated",
    "invalid_argument",
    "reply_too_large",
    "rpc_error",
    "session_state_error",
    "timeout_error",
]


class almanet_error(Exception):
    """Base of every exception almanet raises on purpose."""


class config_error(almanet_error):
    """The configuration (file or environment) cannot be used as it is."""


class invalid_argument(almanet_error, ValueError):
    """Input rejected before anything was sent: nothing happened on the broker."""


class session_state_error(almanet_error, RuntimeError):
    """The session is not in a state that allows the operation."""


class broker_error(almanet_error, ConnectionError):
    """nsqd could not be reached, refused a command, or closed the connection."""


class rpc_error(almanet_error):
    """An error raised by a remote procedure and carried back to the caller.

    Subclass it to define your own errors: the class name travels over the wire, so a caller
    that defines a class of the same name catches it as that class. Annotated class attributes
    are typed fields (``sku: str``): raise it with them as keywords (``out_of_stock(sku="x")``),
    they travel with the error and the caller's class validates them into attributes.
    """

    name: str
    # the declared fields, read from the annotations on first use (they may be forward references)
    _field_names: ClassVar[tuple[str, ...]] = ()
    _fields_model: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [
            n
            for n, annotation in inspect.get_annotations(cls).items()
            if not n.startswith("_") and n != "name" and "ClassVar" not in str(annotation)
        ]
        cls._field_names = tuple(dict.fromkeys((*cls._field_names, *own)))
        cls._fields_model = None

    def __init__(self, *args: Any, name: str | None = None, **fields: Any) -> None:
        super().__init__(*args)
        self.name = name or type(self).__name__
        self._sent_fields: dict[str, Any] = {}
        if fields:
            if not type(self)._field_names:
                raise TypeError(
                    f"{type(self).__name__} declares no fields, got {sorted(fields)}:"
                    " annotate them on the class (e.g. `sku: str`) or pass them as arguments"
                )
            try:
                self._set_fields(fields_validated(type(self), fields))
            except ValueError as exc:
                raise TypeError(f"{type(self).__name__}(...): {exc}") from None

    @property
    def fields(self) -> dict[str, Any]:
        """The typed fields: the declared ones that have a value, and any others a reply carried."""
        values = dict(self.__dict__.get("_sent_fields") or {})
        for field in type(self)._field_names:
            if hasattr(self, field):
                values[field] = getattr(self, field)
        return values

    @classmethod
    def from_wire(cls, name: str, args: tuple[Any, ...], fields: dict[str, Any] | None) -> rpc_error:
        """The error as a reply carried it, the subclass's own ``__init__`` bypassed.

        The fields are validated by the class's declared ones; fields that do not validate are
        kept as sent (``ValueError`` is not raised: the error itself must reach the caller).
        """
        error = cls.__new__(cls)
        Exception.__init__(error, *args)
        error.name = name
        error._sent_fields = {}
        if fields:
            if cls._field_names:
                try:
                    fields = fields_validated(cls, fields)
                except ValueError as exc:
                    logging.getLogger("almanet").warning("%s came with fields that do not validate: %s", name, exc)
            error._set_fields(fields)
        return error

    def _set_fields(self, values: dict[str, Any]) -> None:
        # only declared names become attributes: a reply must not set `args`, `name` or dunders
        self._sent_fields = values
        declared = type(self)._field_names
        for key, value in values.items():
            if key in declared:
                setattr(self, key, value)

    @classmethod
    def fields_schema(cls) -> dict[str, Any] | None:
        """The JSON Schema of the declared fields (None: it declares none)."""
        if not cls._field_names:
            return None
        schema: dict[str, Any] = _fields_model(cls).model_json_schema()
        return schema

    def __str__(self) -> str:
        detail = ", ".join(str(a) for a in self.args)
        return f"{self.name}: {detail}" if detail else self.name

    def __repr__(self) -> str:
        fields = f", fields={self.fields!r}" if self.fields else ""
        return f"{type(self).__name__}(name={self.name!r}, args={self.args!r}{fields})"


def _fields_model(cls: type[rpc_error]) -> Any:
    """A pydantic model of the class's annotated fields, built once (pydantic imported here only)."""
    model = cls.__dict__.get("_fields_model")
    if model is None:
        import pydantic

        hints = typing.get_type_hints(cls)
        definitions: dict[str, Any] = {}
        for field in cls._field_names:
            default = getattr(cls, field, ...)
            definitions[field] = (hints.get(field, Any), default)
        model = pydantic.create_model(f"{cls.__name__}_fields", **definitions)
        cls._fields_model = model
    return model


def fields_validated(cls: type[rpc_error], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` validated by the class's fields; a ``ValueError`` saying which are wrong."""
    import pydantic

    try:
        model = _fields_model(cls).model_validate(values)
    except pydantic.ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ValueError(f"fields of {cls.__name__}: {wrong}") from None
    return {key: getattr(model, key) for key in cls._field_names}


class ValidationError(rpc_error):
    """The payload or the result did not match the procedure's annotations."""


class InternalError(rpc_error):
    """The procedure raised something unexpected; its service logged the traceback."""


class reply_too_large(rpc_error):
    """A procedure's reply was larger than nsqd accepts: the service answered this instead."""


class timeout_error(almanet_error, TimeoutError):
    """A call got no reply in time; ``reason`` says what the broker and the caller saw.

    Still a ``TimeoutError`` (what 0.7.0 raises, also for a procedure nobody serves). ``reason``
    is one of the constants below; ``facts`` holds the numbers behind it (depth, instances,
    in-flight count, what could not be read), ``uri`` the procedure called.
    """

    NOT_SERVED = "not_served"  # no subscriber on any nsqd: nothing serves the URI
    QUEUED = "queued"  # invocations wait in nsqd for a free instance
    RUNNING = "running"  # delivered and still being handled
    REPLY_LOST = "reply_lost"  # handled, but the reply was lost or came late
    BUDGET = "budget"  # the calling procedure's own deadline left no time for it
    EXPIRED = "expired"  # it reached the service past its deadline: dropped unrun, the service said so
    UNKNOWN = "unknown"  # the facts could not be read (``facts["unread"]`` says which)

    def __init__(self, message: str, *, uri: str, reason: str, facts: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.uri = uri
        self.reason = reason
        self.facts: dict[str, Any] = dict(facts or {})
