"""almanet: routed RPC and produce/consume for Python services, over NSQ.

The public API is what this module exports; everything in underscore modules is private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._calling.contract import AbstractProcedure
    from ._calling.models import CallResult, ConsumedMessage
    from ._calling.options import SessionOptions
    from ._calling.session import Almanet
    from ._calling.subscription import Subscription
    from ._nsq.options import ConnectionOptions, TLSOptions
    from ._runner import run
    from ._serving.context import CallContext, current_call
    from ._serving.procedure import ServiceOptions
    from ._serving.service import Procedure, Service
    from ._wire.errors import (
        InternalError,
        ValidationError,
        almanet_error,
        broker_error,
        config_error,
        invalid_argument,
        reply_too_large,
        rpc_error,
        session_state_error,
        timeout_error,
    )

# Names are imported on first use, so that `almanet --help` does not pay for pydantic and asyncio.
_LAZY = {
    "AbstractProcedure": "._calling.contract",
    "InternalError": "._wire.errors",
    "ValidationError": "._wire.errors",
    "almanet_error": "._wire.errors",
    "broker_error": "._wire.errors",
    "config_error": "._wire.errors",
    "invalid_argument": "._wire.errors",
    "reply_too_large": "._wire.errors",
    "rpc_error": "._wire.errors",
    "session_state_error": "._wire.errors",
    "timeout_error": "._wire.errors",
    "CallResult": "._calling.models",
    "ConnectionOptions": "._nsq.options",
    "TLSOptions": "._nsq.options",
    "ConsumedMessage": "._calling.models",
    "Procedure": "._serving.service",
    "Service": "._serving.service",
    "Almanet": "._calling.session",
    "Subscription": "._calling.subscription",
    "run": "._runner",
    "CallContext": "._serving.context",
    "current_call": "._serving.context",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'almanet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AbstractProcedure",
    "Almanet",
    "CallContext",
    "CallResult",
    "ConnectionOptions",
    "ConsumedMessage",
    "InternalError",
    "Procedure",
    "Service",
    "Subscription",
    "TLSOptions",
    "ValidationError",
    "__version__",
    "almanet_error",
    "broker_error",
    "config_error",
    "current_call",
    "invalid_argument",
    "new_service",
    "new_session",
    "reply_too_large",
    "rpc_error",
    "run",
    "session_state_error",
    "timeout_error",
]

__version__ = "0.8.0.dev0"


def new_session(*addresses: str, **options: Unpack[SessionOptions]) -> Almanet:
    """A session on the nsqd at ``addresses`` (``localhost:4150`` when none); join it with ``async with``.

    The options are ``Almanet``'s keywords (``default_timeout``, ``lookupd``, ``fail_fast``, ...);
    an unknown one is a ``TypeError`` naming the nearest.
    """
    from ._calling.options import check_session_options
    from ._calling.session import Almanet

    check_session_options(options, "new_session()")
    return Almanet(*addresses, **options)


def new_service(*addresses: str, prepath: str = "", **options: Unpack[ServiceOptions]) -> Service:
    """A service whose procedures are registered with ``@service.procedure`` and run by ``serve()``.

    The options are ``Service``'s keywords (``channel``, ``max_concurrency``, ``tags``, ...); an
    unknown one is a ``TypeError`` naming the nearest.
    """
    from ._serving.procedure import ServiceOptions
    from ._serving.service import Service
    from ._wire.checks import check_keywords

    check_keywords(options, ServiceOptions.__annotations__, "new_service()")
    return Service(*addresses, prepath=prepath, **options)
