"""almanet: routed RPC and produce/consume for Python services, over NSQ.

The public API is what this module exports; everything in underscore modules is private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._errors import (
        InternalError,
        ValidationError,
        almanet_error,
        broker_error,
        config_error,
        invalid_argument,
        rpc_error,
        session_state_error,
        timeout_error,
    )
    from ._models import CallResult, ConsumedMessage
    from ._nsq.options import ConnectionOptions, TLSOptions
    from ._runner import run
    from ._service import Procedure, Service
    from ._session import Almanet
    from ._subscription import Subscription

# Names are imported on first use, so that `almanet --help` does not pay for pydantic and asyncio.
_LAZY = {
    "InternalError": "._errors",
    "ValidationError": "._errors",
    "almanet_error": "._errors",
    "broker_error": "._errors",
    "config_error": "._errors",
    "invalid_argument": "._errors",
    "rpc_error": "._errors",
    "session_state_error": "._errors",
    "timeout_error": "._errors",
    "CallResult": "._models",
    "ConnectionOptions": "._nsq.options",
    "TLSOptions": "._nsq.options",
    "ConsumedMessage": "._models",
    "Procedure": "._service",
    "Service": "._service",
    "Almanet": "._session",
    "Subscription": "._subscription",
    "run": "._runner",
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
    "Almanet",
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
    "invalid_argument",
    "new_service",
    "new_session",
    "rpc_error",
    "run",
    "session_state_error",
    "timeout_error",
]

__version__ = "0.8.0.dev0"


def new_session(*addresses: str, **options: Any) -> Almanet:
    """A session on the nsqd at ``addresses`` (``localhost:4150`` when none); join it with ``async with``."""
    from ._session import Almanet

    return Almanet(*addresses, **options)


def new_service(*addresses: str, prepath: str = "", **options: Any) -> Service:
    """A service whose procedures are registered with ``@service.procedure`` and run by ``serve()``."""
    from ._service import Service

    return Service(*addresses, prepath=prepath, **options)
