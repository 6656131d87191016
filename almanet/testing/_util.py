"""Small helpers shared by the test tooling: names, ports, deadlines, nsqd's HTTP API."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["HOST", "free_port", "http_get", "http_json", "http_post", "new_name", "wait_until"]

HOST = "127.0.0.1"
HTTP_TIMEOUT = 2.0

T = TypeVar("T")


def free_port() -> int:
    """A TCP port that was free a moment ago (racy by nature: prefer port 0 where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def new_name(prefix: str = "t") -> str:
    """A unique, NSQ-valid topic/channel name, so tests sharing one nsqd never collide."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.02,
    message: str = "condition not met",
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Exceptions from the predicate count as "not yet" (a daemon that is still starting refuses
    connections), but the last one is chained to the AssertionError raised at the deadline.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = predicate()
        except Exception as exc:
            last_exc = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (after {timeout:g}s)") from last_exc
        time.sleep(interval)


def http_get(address: str, path: str, timeout: float = HTTP_TIMEOUT) -> bytes:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


def http_json(address: str, path: str, timeout: float = HTTP_TIMEOUT) -> dict[str, Any]:
    data = json.loads(http_get(address, path, timeout))
    # NSQ < 1.0 wrapped replies as {"status_code": 200, "data": {...}}; accept both shapes.
    if isinstance(data, dict) and "status_code" in data and "data" in data:
        data = data["data"]
    if not isinstance(data, dict):
        raise ValueError(f"http://{address}{path} answered {type(data).__name__}, not a JSON object")
    return data


def http_post(address: str, path: str, timeout: float = HTTP_TIMEOUT) -> bytes:
    request = urllib.request.Request(f"http://{address}{path}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body
