"""almanet.testing: test almanet services against a real nsqd, started and stopped by the test.

With pytest, the fixtures (``nsqd``, ``served``, ``session``, ``expect_call``, ...) come from the
plugin in ``almanet.testing.plugin``, registered when almanet is installed. The names here are
for other runners and for tests that need more: daemons, serving, and waiters as plain calls.
They are imported on first use, so that loading the plugin costs pytest nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cluster import NsqCluster, start_cluster
    from ._processes import NsqdProcess, NsqlookupdProcess, kill_leftovers, start_nsqd, start_nsqlookupd
    from ._serving import Call, Expectation, Message, expect_call, expect_message, serving
    from ._tools import NsqProcessError, NsqToolNotFound, find_tool, install_dir
    from ._util import free_port, new_name, wait_until

_LAZY = {
    "Call": "._serving",
    "Expectation": "._serving",
    "Message": "._serving",
    "NsqCluster": "._cluster",
    "NsqProcessError": "._tools",
    "NsqToolNotFound": "._tools",
    "NsqdProcess": "._processes",
    "NsqlookupdProcess": "._processes",
    "expect_call": "._serving",
    "expect_message": "._serving",
    "find_tool": "._tools",
    "free_port": "._util",
    "install_dir": "._tools",
    "kill_leftovers": "._processes",
    "new_name": "._util",
    "serving": "._serving",
    "start_cluster": "._cluster",
    "start_nsqd": "._processes",
    "start_nsqlookupd": "._processes",
    "wait_until": "._util",
}

__all__ = [
    "Call",
    "Expectation",
    "Message",
    "NsqCluster",
    "NsqProcessError",
    "NsqToolNotFound",
    "NsqdProcess",
    "NsqlookupdProcess",
    "expect_call",
    "expect_message",
    "find_tool",
    "free_port",
    "install_dir",
    "kill_leftovers",
    "new_name",
    "serving",
    "start_cluster",
    "start_nsqd",
    "start_nsqlookupd",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'almanet.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
