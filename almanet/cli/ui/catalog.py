"""What the page shows: the live instances and procedures, joined with every nsqd's /stats.

One function reads the bus, on the session the server keeps open; the numbers come from the same
report as ``almanet services`` (``build_report``), the descriptions and schemas from the decoded
discovery replies (``_wire.Instance``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .._common import discover
from ..services import build_report, nsqd_stats

DISCOVERY_TIMEOUT = 1.0  # as `almanet services`: replies of local services come within milliseconds
_SCHEMAS = ("payload_json_schema", "return_json_schema")


async def read_catalog(session: Any, settings: Any, timeout: float = DISCOVERY_TIMEOUT) -> dict[str, Any]:
    """Instances, procedures (with description, tags, schemas, per-nsqd numbers) and unserved RPC topics."""
    instances, (stats, errors) = await asyncio.gather(discover(session, timeout), nsqd_stats(settings))
    report = build_report(instances, stats, errors)
    described: dict[tuple[str, str], Any] = {}
    for instance in instances:  # _wire.Instance; a 0.7.0 service describes nothing: no schemas
        for procedure in instance.procedures:
            described.setdefault((procedure.uri, procedure.channel), procedure)
    served: list[dict[str, Any]] = []
    unserved: list[dict[str, Any]] = []
    for entry in report["procedures"]:
        procedure = described.get((entry["uri"], entry["channel"]))
        document = procedure.document if procedure is not None else {}
        entry["description"] = procedure.description if procedure is not None else None
        entry["tags"] = list(procedure.tags) if procedure is not None else []
        entry.update({key: document.get(key) for key in _SCHEMAS})
        for node in entry["nsqd"]:
            # invocations that wait on an nsqd where nobody reads them: they run late, or never
            node["stale"] = node["depth"] if node["subscribers"] == 0 else 0
        entry["stale"] = sum(node["stale"] for node in entry["nsqd"])
        (served if entry["instances"] else unserved).append(entry)
    report["procedures"] = served
    report["unserved"] = unserved
    report["read_at"] = time.time()
    return report


class CatalogCache:
    """One bus read at a time, shared by every page that asks while it runs, reused for ``max_age``."""

    def __init__(self, session: Any, settings: Any, max_age: float = 1.0) -> None:
        self._session = session
        self._settings = settings
        self._max_age = max_age
        self._running: asyncio.Future[dict[str, Any]] | None = None
        self._last: tuple[float, dict[str, Any]] | None = None

    async def get(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if self._last is not None and loop.time() - self._last[0] < self._max_age:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.ensure_future(read_catalog(self._session, self._settings))
            self._running.add_done_callback(self._done)
        # shield: one page going away must not cancel the read the others wait for
        return await asyncio.shield(self._running)

    def _done(self, future: asyncio.Future[dict[str, Any]]) -> None:
        self._running = None
        if not future.cancelled() and future.exception() is None:
            self._last = (asyncio.get_running_loop().time(), future.result())
