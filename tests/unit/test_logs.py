"""``--log-format json``: the formatter, record by record (no sockets)."""

from __future__ import annotations

import json
import logging
import sys
from types import SimpleNamespace

import pytest

import almanet
from almanet._serving.logs import JsonFormatter


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("almanet.test").makeRecord(
        "almanet.test", logging.WARNING, "f.py", 1, message, args or ("x",), None
    )
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_record_is_one_json_line_with_level_message_logger() -> None:
    line = JsonFormatter().format(record())
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "warning" and data["message"] == "hello x" and data["logger"] == "almanet.test"
    assert data["time"].endswith("Z") and "invocation_id" not in data


def test_the_services_own_fields_and_a_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        made = record(invocation_id="abc", uri="net.x")
        made.exc_info = sys.exc_info()
    data = json.loads(JsonFormatter().format(made))
    assert data["invocation_id"] == "abc" and data["uri"] == "net.x"
    assert data["exception"].startswith("Traceback") and "ValueError: boom" in data["exception"]


def test_the_call_context_is_read_when_the_public_api_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    call = SimpleNamespace(id="c1", uri="net.y", traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    monkeypatch.setattr(almanet, "current_call", lambda: call, raising=False)
    data = json.loads(JsonFormatter().format(record()))
    assert (data["invocation_id"], data["uri"], data["trace_id"]) == ("c1", "net.y", "4bf92f3577b34da6a3ce929d0e0e4736")
    monkeypatch.setattr(almanet, "current_call", lambda: None, raising=False)
    assert "uri" not in json.loads(JsonFormatter().format(record()))

    def broken() -> None:
        raise RuntimeError("no context here")

    monkeypatch.setattr(almanet, "current_call", broken, raising=False)
    assert json.loads(JsonFormatter().format(record()))["message"] == "hello x"  # a log line never fails
