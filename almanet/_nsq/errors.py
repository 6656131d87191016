"""Errors of the NSQ client, independent of almanet.

::

    NSQError
    ├── ProtocolError          the bytes from nsqd do not parse (the connection is unusable)
    ├── NSQConnectionError     connecting failed, or the connection was lost / closed
    │   └── NSQHandshakeError  nsqd is there but TLS or AUTH failed; the message names the fix
    ├── NSQErrorResponse       nsqd answered a command with an error frame (``code``, ``text``)
    ├── NSQHTTPError           (http.py) an nsqd/nsqlookupd HTTP request failed
    └── NSQLookupdError        (discovery.py) no nsqlookupd answered ``/nodes``
"""

from __future__ import annotations

__all__ = [
    "FATAL_ERROR_CODES",
    "NON_FATAL_ERROR_CODES",
    "NSQConnectionError",
    "NSQError",
    "NSQErrorResponse",
    "NSQHandshakeError",
    "ProtocolError",
]

# nsqd closes the connection after these.
FATAL_ERROR_CODES = frozenset(
    {
        "E_INVALID",
        "E_BAD_BODY",
        "E_BAD_TOPIC",
        "E_BAD_CHANNEL",
        "E_BAD_MESSAGE",
        "E_AUTH_FAILED",
        "E_UNAUTHORIZED",
    }
)

# Failures of commands that get no reply on success: never matched to a pending command.
NON_FATAL_ERROR_CODES = frozenset({"E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED"})


class NSQError(Exception):
    """Base of the NSQ client's errors."""


class ProtocolError(NSQError):
    """nsqd sent bytes that are not NSQ V2 frames."""


class NSQConnectionError(NSQError, ConnectionError):
    """The connection could not be made, or is gone."""


class NSQHandshakeError(NSQConnectionError):
    """nsqd answers, but the connection's TLS or AUTH failed: a setting to change, not an outage."""


class NSQErrorResponse(NSQError):
    """nsqd answered a command with an error frame."""

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(f"{code} {text}".strip())
        self.code = code
        self.text = text

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_ERROR_CODES

    @classmethod
    def from_frame(cls, data: bytes) -> NSQErrorResponse:
        code, _, text = data.decode("utf-8", "replace").partition(" ")
        return cls(code, text)
