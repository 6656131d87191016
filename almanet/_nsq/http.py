"""Small asyncio-friendly clients for the HTTP APIs of nsqd (``/stats``) and nsqlookupd (``/nodes``).

The standard library's ``urllib.request`` runs in a worker thread (``asyncio.to_thread``) with a
timeout, imported on first request: importing this module costs nothing (no gevent, no
third-party HTTP client, not even urllib's ~9 ms with http.client and ssl). Every
failure (refused, timeout, HTTP error status, a reply that is not JSON) becomes one
``NSQHTTPError`` whose message names the address.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

from .address import Address
from .errors import NSQHTTPError

__all__ = [
    "DEFAULT_HTTP_TIMEOUT",
    "LookupdHTTPClient",
    "NSQHTTPError",
    "NsqdHTTPClient",
    "get_json",
    "producer_address",
    "request_json",
]

DEFAULT_HTTP_TIMEOUT = 2.0


def _get_json_sync(address: str, path: str, timeout: float) -> Any:
    import urllib.error
    import urllib.request

    url = f"http://{address}{path}"
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.nsq; version=1.0"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            detail = json.loads(exc.read() or b"{}").get("message", "")
        except (ValueError, AttributeError, OSError):
            pass
        raise NSQHTTPError(
            f"GET {url} answered {exc.code} {detail or exc.reason}", address=address, status=exc.code
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise NSQHTTPError(f"GET {url} did not answer within {timeout:g}s", address=address) from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise NSQHTTPError(f"cannot reach {url}: {text}", address=address) from None
    except TimeoutError:
        raise NSQHTTPError(f"GET {url} did not answer within {timeout:g}s", address=address) from None
    except OSError as exc:
        raise NSQHTTPError(f"GET {url} failed: {exc.strerror or exc}", address=address) from None
    try:
        value = json.loads(data)
    except ValueError:
        raise NSQHTTPError(
            f"GET {url} did not return JSON (is {address} an NSQ HTTP address?)", address=address
        ) from None
    # NSQ < 1.0 wrapped every reply in {"status_code": 200, "data": {...}}; accept both shapes.
    if isinstance(value, dict) and "status_code" in value and "data" in value:
        value = value["data"]
    return value


async def get_json(address: str, path: str, *, timeout: float = DEFAULT_HTTP_TIMEOUT) -> Any:
    """``GET http://<address><path>`` decoded as JSON, or ``NSQHTTPError``."""
    return await asyncio.to_thread(_get_json_sync, address, path, timeout)


def _expect_dict(value: Any, address: str, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise NSQHTTPError(
            f"GET http://{address}{path} returned {type(value).__name__}, expected an object", address=address
        )
    return value


class NsqdHTTPClient:
    """nsqd's HTTP API at ``host:port`` (the TCP port + 1 by default)."""

    def __init__(self, address: str, *, timeout: float = DEFAULT_HTTP_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout

    async def stats(self, topic: str | None = None) -> dict[str, Any]:
        """``/stats?format=json`` (only ``topic`` when given): topics → channels → clients, depths."""
        query = {"format": "json"}
        if topic is not None:
            query["topic"] = topic
        path = "/stats?" + urllib.parse.urlencode(query)
        return _expect_dict(await get_json(self.address, path, timeout=self.timeout), self.address, path)

    def __repr__(self) -> str:
        return f"NsqdHTTPClient({self.address!r})"


class LookupdHTTPClient:
    """nsqlookupd's HTTP API at ``host:port`` (4161 by default)."""

    def __init__(self, address: str, *, timeout: float = DEFAULT_HTTP_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout

    async def nodes(self) -> list[dict[str, Any]]:
        """The nsqd registered with this lookupd (``/nodes`` producers)."""
        value = _expect_dict(await get_json(self.address, "/nodes", timeout=self.timeout), self.address, "/nodes")
        return list(value.get("producers") or [])

    def __repr__(self) -> str:
        return f"LookupdHTTPClient({self.address!r})"


def producer_address(producer: dict[str, Any], kind: str = "http") -> str:
    """``broadcast_address:http_port`` (or ``tcp_port``) of a lookupd producer entry."""
    address = Address.of_node(producer, kind)
    if address is None:
        raise NSQHTTPError(f"lookupd listed an nsqd without a usable {kind} address: {producer!r}", address="?")
    return str(address)


async def request_json(address: str, path: str, *, method: str = "GET", timeout: float = DEFAULT_HTTP_TIMEOUT) -> Any:
    """One HTTP/1.0 request on asyncio streams (no thread, no urllib), decoded as JSON.

    For what runs inside a caller (the fail-fast check, timeout forensics, purge): it costs no
    import and no worker thread. nsqd's replies are small JSON documents, read to EOF.
    """
    url = f"http://{address}{path}"
    host, port = Address.parse(address)
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(
                    f"{method} {path} HTTP/1.0\r\nHost: {address}\r\n"
                    "Accept: application/vnd.nsq; version=1.0\r\nContent-Length: 0\r\n\r\n".encode()
                )
                data = await reader.read()
            finally:
                writer.close()
    except TimeoutError:
        raise NSQHTTPError(f"{method} {url} did not answer within {timeout:g}s", address=address) from None
    except OSError as exc:
        raise NSQHTTPError(f"cannot reach {url}: {exc.strerror or exc}", address=address) from None
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise NSQHTTPError(f"{method} {url} did not answer HTTP (is {address} an NSQ HTTP address?)", address=address)
    status = int(status_line[1])
    try:
        value = json.loads(body) if body.strip() else None
    except ValueError:
        raise NSQHTTPError(
            f"{method} {url} did not return JSON (is {address} an NSQ HTTP address?)", address=address, status=status
        ) from None
    if status >= 400:
        detail = value.get("message", "") if isinstance(value, dict) else ""
        raise NSQHTTPError(f"{method} {url} answered {status} {detail}".rstrip(), address=address, status=status)
    if isinstance(value, dict) and "status_code" in value and "data" in value:
        value = value["data"]
    return value
