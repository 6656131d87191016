"""A small NSQ cluster for tests: one nsqlookupd and the nsqd registered with it."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from ._processes import NsqdProcess, NsqlookupdProcess, start_nsqd, start_nsqlookupd
from ._tools import NsqProcessError

__all__ = ["NsqCluster", "start_cluster"]


@dataclass(eq=False)
class NsqCluster:
    """An nsqlookupd and nsqd registered with it; ``close()`` stops them all."""

    lookupd: NsqlookupdProcess
    nsqds: list[NsqdProcess]

    @property
    def tcp_addresses(self) -> tuple[str, ...]:
        return tuple(n.tcp_address for n in self.nsqds)

    def wait_registered(self, timeout: float = 10) -> None:
        """Until lookupd lists every nsqd (they register a moment after they start)."""
        want = {n.tcp_port for n in self.nsqds}
        deadline = time.monotonic() + timeout
        while {node.get("tcp_port") for node in self.lookupd.nodes()} < want:
            if time.monotonic() >= deadline:
                raise NsqProcessError(f"nsqd did not register with nsqlookupd within {timeout:g}s")
            time.sleep(0.02)

    def close(self) -> None:
        # ExitStack: every daemon is stopped even if stopping one of them raises
        with contextlib.ExitStack() as stack:
            stack.callback(self.lookupd.close)
            for nsqd in self.nsqds:
                stack.callback(nsqd.close)


def start_cluster(size: int = 2, **nsqd_options: Any) -> NsqCluster:
    """``size`` nsqd registered with one new nsqlookupd, returned once lookupd lists them all."""
    if size < 1:
        raise ValueError("a cluster needs at least one nsqd")
    lookupd = start_nsqlookupd()
    cluster = NsqCluster(lookupd, [])
    try:
        for _ in range(size):
            cluster.nsqds.append(start_nsqd(lookupd_tcp_addresses=[lookupd.tcp_address], **nsqd_options))
        cluster.wait_registered()
    except BaseException:
        cluster.close()
        raise
    return cluster
