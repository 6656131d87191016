"""Finding nsqd through nsqlookupd: poll ``GET /nodes`` and report the nsqd not seen before.

nsqd registers with nsqlookupd (``--lookupd-tcp-address``); lookupd's ``/nodes`` lists every nsqd
registered with it, so a client that knows only lookupd can follow nsqd as they are added. This
module only *finds* nsqd: what to do with a new one (subscribe there, publish there) is up to the
owner's callback. An nsqd that lookupd stops listing is not reported: its connections, if any,
keep their own reconnect loops, and nothing live is dropped because a registration lapsed.

Several lookupd are a union. One that fails is logged once per failure streak (a warning when it
starts failing, an info line when it answers again); a round where every lookupd fails raises
``NSQLookupdError`` from ``poll()``, which the polling task logs and survives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from .address import Address
from .errors import NSQError
from .http import DEFAULT_HTTP_TIMEOUT, LookupdHTTPClient, NSQHTTPError

__all__ = ["DEFAULT_LOOKUPD_INTERVAL", "LookupdPoller", "NSQLookupdError", "nsqd_tcp_addresses"]

logger = logging.getLogger(__name__)

DEFAULT_LOOKUPD_INTERVAL = 15.0


class NSQLookupdError(NSQError):
    """No nsqlookupd answered ``/nodes``; ``errors`` maps each lookupd address to its failure."""

    def __init__(self, errors: Mapping[str, Exception]) -> None:
        self.errors = dict(errors)
        self.addresses = tuple(self.errors)
        details = "; ".join(str(e) for e in self.errors.values())
        super().__init__(f"no nsqlookupd answered ({', '.join(self.addresses)}): {details}")


def nsqd_tcp_addresses(nodes: Mapping[str, Any] | Iterable[Any]) -> list[str]:
    """``broadcast_address:tcp_port`` of each nsqd in a ``/nodes`` reply, in order, without repeats.

    ``nodes`` is the whole document (``{"producers": [...]}``) or its ``producers`` list. An IPv6
    host is bracketed (``[::1]:4150``); entries without a host or a usable TCP port are skipped.
    """
    producers = (nodes.get("producers") or []) if isinstance(nodes, Mapping) else nodes
    found: dict[str, None] = {}
    for producer in producers:
        address = Address.of_node(producer, "tcp")
        if address is None:
            logger.debug("skipped a /nodes entry without a host or a usable TCP port: %r", producer)
            continue
        found[str(address)] = None
    return list(found)


Fetch = Callable[[str], Awaitable[Any]]


class LookupdPoller:
    """Ask every lookupd for its nsqd every ``interval`` seconds; report new ones to ``on_new``.

    ``poll()`` is one round (call it first to learn the nsqd before connecting anywhere);
    ``start()`` runs rounds in the background, in one task that ``close()`` cancels and awaits.
    ``on_new`` is called from that task with the addresses seen for the first time, in order;
    it must not block. ``fetch`` replaces the HTTP request (``address -> /nodes document``) in tests.
    """

    def __init__(
        self,
        lookupd: Sequence[str],
        on_new: Callable[[list[str]], None] | None = None,
        *,
        interval: float = DEFAULT_LOOKUPD_INTERVAL,
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        fetch: Fetch | None = None,
    ) -> None:
        if not lookupd:
            raise ValueError("at least one nsqlookupd address is needed")
        if not interval > 0:
            raise ValueError("the lookupd polling interval must be positive")
        if not timeout > 0:
            raise ValueError("the lookupd timeout must be positive")
        self.lookupd = tuple(dict.fromkeys(lookupd))
        self.on_new = on_new
        self.interval = interval
        self.timeout = timeout
        self._fetch = fetch or self._fetch_nodes
        self._known: dict[str, None] = {}
        self._failing: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def known(self) -> tuple[str, ...]:
        """Every nsqd TCP address seen so far, in the order first seen (none is ever removed)."""
        return tuple(self._known)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _fetch_nodes(self, address: str) -> Any:
        return await LookupdHTTPClient(address, timeout=self.timeout).nodes()

    async def _ask(self, address: str) -> list[str]:
        # urllib's timeout does not cover name resolution: bound the whole request here too
        try:
            async with asyncio.timeout(self.timeout + 1.0):
                return nsqd_tcp_addresses(await self._fetch(address))
        except TimeoutError:
            raise NSQHTTPError(
                f"GET http://{address}/nodes did not answer within {self.timeout:g}s", address=address
            ) from None

    async def poll(self) -> list[str]:
        """One round over every lookupd: the nsqd addresses not seen before (also remembered).

        Raises ``NSQLookupdError`` when no lookupd answered; a lookupd that fails while another
        answers is only logged.
        """
        results = await asyncio.gather(*(self._ask(a) for a in self.lookupd), return_exceptions=True)
        errors: dict[str, Exception] = {}
        new: list[str] = []
        for address, result in zip(self.lookupd, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception) or not isinstance(result, NSQError | OSError):
                    raise result
                errors[address] = result
                if address not in self._failing:
                    self._failing.add(address)
                    logger.warning("nsqlookupd at %s: %s; still asking every %gs", address, result, self.interval)
                else:
                    logger.debug("nsqlookupd at %s still failing: %s", address, result)
                continue
            if address in self._failing:
                self._failing.discard(address)
                logger.info("nsqlookupd at %s answers again", address)
            for nsqd in result:
                if nsqd not in self._known:
                    self._known[nsqd] = None
                    new.append(nsqd)
        if len(errors) == len(self.lookupd):
            raise NSQLookupdError(errors)
        return new

    def start(self) -> None:
        """Poll in the background, a round every ``interval`` seconds (the first after one interval)."""
        if self._closed:
            raise RuntimeError("the lookupd poller is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"nsqlookupd poller ({', '.join(self.lookupd)})"
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                new = await self.poll()
            except NSQLookupdError:
                continue  # each lookupd's failure is already logged, once per streak
            except Exception:
                logger.exception("polling nsqlookupd %s failed", ", ".join(self.lookupd))
                continue
            if new:
                logger.info("nsqlookupd lists new nsqd: %s", ", ".join(new))
                if self.on_new is not None:
                    try:
                        self.on_new(new)
                    except Exception:
                        logger.exception("handling the new nsqd %s failed", ", ".join(new))

    async def close(self) -> None:
        """Stop polling; returns once the polling task has ended. Safe to call twice."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
