"""The quick-start example's error, defined once for every interop test.

The caller matches an error reply to an ``rpc_error`` subclass by class name, and when several
classes share a name the newest defined one wins: two test modules each defining their own
``denied`` would catch each other's class. So it lives here.
"""

import almanet

__all__ = ["denied"]


class denied(almanet.rpc_error):
    """The payload is not allowed (the package page's example error)."""
