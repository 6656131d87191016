"""``AbstractProcedure``: a procedure's contract (URI, payload and result types) without its code.

0.7.0's interface split: an interface module declares ``@service.abstract_procedure async def
greet(payload: In) -> Out``, callers import only that module and ``session.call(greet, In(...))``
gets a reply validated into ``Out``; the service's own module registers the code with
``@greet.implements``. It lives on the calling side because callers need it without a service;
registering is a callback the service hands over, so this module imports nothing of serving.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .._wire.errors import invalid_argument
from .models import CallResult

if TYPE_CHECKING:  # pydantic is imported with the first typed call, not by `import almanet`
    from .._wire.validation import Signature

__all__ = ["AbstractProcedure", "In", "Out", "target_of", "typed_result"]

In = TypeVar("In")
Out = TypeVar("Out")

# what registers an implementation: the service's, given the implementing function
Register = Callable[["AbstractProcedure[Any, Any]", Callable[..., Awaitable[Any]]], None]


class AbstractProcedure(Generic[In, Out]):
    """A declared procedure: call it by this object, implement it once with ``@it.implements``."""

    __slots__ = ("_register", "channel", "description", "implementation", "signature", "uri")

    def __init__(self, uri: str, channel: str, signature: Signature, description: str, register: Register) -> None:
        self.uri = uri
        self.channel = channel
        self.signature = signature
        self.description = description
        self.implementation: Callable[..., Awaitable[Any]] | None = None
        self._register = register

    @property
    def payload_model(self) -> Any:
        """The payload's annotation (``In``): what the implementation validates invocations into."""
        return self.signature.payload.annotation

    @property
    def return_model(self) -> Any:
        """The result's annotation (``Out``): what a typed call validates the reply into."""
        return self.signature.result.annotation

    @overload
    def implements(self, function: Callable[[Any, In], Awaitable[Out]]) -> Callable[[Any, In], Awaitable[Out]]: ...

    @overload
    def implements(self, function: Callable[[In], Awaitable[Out]]) -> Callable[[In], Awaitable[Out]]: ...

    def implements(self, function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """Register ``function`` as the code of this procedure, ``(session, payload)`` or ``(payload)``.

        A second implementation is a ``ValueError``: one URI runs one function per service.
        """
        if self.implementation is not None:
            raise ValueError(
                f"procedure already implemented: {self.uri!r} by {self.implementation.__qualname__};"
                f" {function.__qualname__} cannot implement it too"
            )
        self._register(self, function)
        self.implementation = function
        return function

    def __repr__(self) -> str:
        state = "implemented" if self.implementation is not None else "not implemented"
        return f"AbstractProcedure({self.uri!r}, {state})"


def target_of(procedure: Any, result: Any) -> tuple[str, Any]:
    """The URI and result check of a call given an ``AbstractProcedure`` (or a clear error)."""
    if isinstance(procedure, AbstractProcedure):
        if result is not None:
            raise invalid_argument("result= is for a URI: an abstract procedure's result type is its own")
        return procedure.uri, procedure
    raise invalid_argument(
        f"the procedure to call must be a URI string or an abstract procedure, not {type(procedure).__name__}"
    )


def typed_result(reply: CallResult[Any], result: Any, uri: str) -> CallResult[Any]:
    """The reply's payload validated into the result type: an abstract procedure's, or ``result=``."""
    what = f"the result of {uri}"
    if isinstance(result, AbstractProcedure):
        return CallResult(reply.call_id, result.signature.result.validate(reply.payload, what, quote=False))
    from .._wire.validation import validated

    return CallResult(reply.call_id, validated(result, reply.payload, what))
