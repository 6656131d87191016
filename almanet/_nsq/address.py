"""``Address``: one nsqd or nsqlookupd address, ``host:port`` (IPv6 in brackets), parsed in one place.

Every layer that takes an address as text (connections, the lookupd poller, the HTTP clients,
the configuration) goes through ``Address.parse``, so each accepts the same forms and rejects a
bad one with the same message, which shows the form expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["Address", "split_address"]

_HOST_RE = re.compile(r"[A-Za-z0-9_.-]+")


class Address(NamedTuple):
    host: str  # without brackets
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """``"host:port"`` or ``"[v6]:port"``; ValueError says what is wrong and shows the form."""
        return cls(*split_address(text))

    @classmethod
    def of_node(cls, node: Any, kind: str = "tcp") -> Address | None:
        """The address of an nsqd in a lookupd ``/nodes`` entry (``broadcast_address:<kind>_port``), or None."""
        if not isinstance(node, Mapping):
            return None
        host = node.get("broadcast_address") or node.get("hostname")
        port = node.get(f"{kind}_port")
        if not isinstance(host, str) or not host or isinstance(port, bool) or not isinstance(port, int):
            return None
        if not 0 < port < 65536:
            return None
        return cls(host.removeprefix("[").removesuffix("]"), port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def split_address(text: str) -> tuple[str, int]:
    """``"host:port"`` -> ``(host, port)``; IPv6 goes in brackets (``[::1]:4150``).

    Raises ValueError with a message that shows the expected form, so callers can add
    their own context (a key, a file) and pass it on.
    """
    if not isinstance(text, str):
        raise ValueError(f"address {text!r} is not a string; write host:port, e.g. localhost:4150")
    text = text.strip()
    if not text:
        raise ValueError("empty address; write host:port, e.g. localhost:4150")
    if "://" in text:
        bare = text.split("://", 1)[1].rstrip("/")
        raise ValueError(f"{text!r} has a scheme; write host:port without it, e.g. {bare}")
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{text!r} is not [ipv6]:port, e.g. [::1]:4150")
        try:
            import ipaddress  # rare (IPv6 literals): not worth its import at start-up

            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    else:
        if text.count(":") > 1:
            raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:4150")
        host, sep, port_text = text.partition(":")
        if not sep:
            raise ValueError(f"{text!r} has no port; write host:port, e.g. {text}:4150")
        if not host:
            raise ValueError(f"{text!r} has no host; write host:port, e.g. localhost{text}")
        if not _HOST_RE.fullmatch(host):
            raise ValueError(f"{text!r}: {host!r} is not a host name or IP address")
    if not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"{text!r}: port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is outside 1..65535")
    return host, port
