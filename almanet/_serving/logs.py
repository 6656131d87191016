"""``--log-format json`` (``log.format``): one JSON object a line, for log collectors.

Each line has ``time``, ``level``, ``logger`` and ``message``; where there is one, the
invocation's ``invocation_id`` and ``uri`` (given by the service's own log calls as record
attributes, or read from ``almanet.current_call()`` when the procedure logs) and its
``trace_id``; a traceback as ``exception``. The text format stays what it was.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

__all__ = ["TEXT_FORMAT", "JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_FIELDS = ("invocation_id", "uri", "trace_id")


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON (orjson: a dependency already)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if "invocation_id" not in line:
            line.update(_current_call())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


def _current_call() -> dict[str, Any]:
    """The invocation a procedure is serving, when the public API offers ``current_call()``.

    Read defensively: the call context is another part of almanet, and a log line must never
    fail because of it.
    """
    almanet = sys.modules.get("almanet")
    current = getattr(almanet, "current_call", None) if almanet is not None else None
    if current is None:
        return {}
    try:
        call = current()
    except Exception:
        return {}
    if call is None:
        return {}
    found: dict[str, Any] = {}
    for field, names in (("invocation_id", ("id", "invocation_id")), ("uri", ("uri",)), ("trace_id", ("trace_id",))):
        for name in names:
            value = getattr(call, name, None)
            if isinstance(value, str) and value:
                found[field] = value
                break
    if "trace_id" not in found:
        parent = getattr(call, "traceparent", None) or getattr(call, "trace_context", None)
        if isinstance(parent, dict):
            parent = parent.get("traceparent")
        if isinstance(parent, str) and parent.count("-") == 3:  # W3C: version-traceid-spanid-flags
            found["trace_id"] = parent.split("-")[1]
    return found


def configure_logging(level: int, log_format: str) -> None:
    """The root logger on stderr, in ``text`` (the default) or ``json``; replaces its handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
