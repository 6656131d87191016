"""Errors of the NSQ client, independent of any application built on it.

::

    NSQError
    ├── ProtocolError          the bytes from nsqd do not parse (the connection is unusable)
    ├── NSQConnectionError     connecting failed, or the connection was lost / closed
    │   └── NSQHandshakeError  nsqd is there but TLS or AUTH failed; the message names the fix
    │       └── NSQSettingError    ... and ``setting`` names the option that fixes it
    ├── NSQErrorResponse       nsqd answered a command with an error frame (``code``, ``text``)
    ├── NSQHTTPError           an nsqd/nsqlookupd HTTP request failed (raised by http.py)
    └── NSQLookupdError        (discovery.py) no nsqlookupd answered ``/nodes``
"""

from __future__ import annotations

__all__ = [
    "FATAL_ERROR_CODES",
    "NON_FATAL_ERROR_CODES",
    "NSQConnectionError",
    "NSQError",
    "NSQErrorResponse",
    "NSQHTTPError",
    "NSQHandshakeError",
    "NSQSettingError",
    "ProtocolError",
    "template_text",
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


class NSQSettingError(NSQHandshakeError):
    """A handshake failure that one of the client's options fixes; ``setting`` names it.

    The message is a template: ``{tls}``, ``{ca_file}``, ``{cert_file}``, ``{key_file}``,
    ``{verify}``, ``{auth_secret}`` stand for option names and ``{where}`` for where they are set,
    so that a program configuring the client its own way words the fix in its own terms
    (``render``). ``str()`` uses the client's own names (``TLSOptions.ca_file``).
    """

    NAMES = {
        "tls": "ConnectionOptions.tls",
        "ca_file": "TLSOptions.ca_file",
        "cert_file": "TLSOptions.cert_file",
        "key_file": "TLSOptions.key_file",
        "verify": "TLSOptions.verify",
        "auth_secret": "ConnectionOptions.auth_secret",
        "address": "the nsqd address",
    }

    def __init__(self, template: str, *, setting: str) -> None:
        self.template = template
        self.setting = setting
        super().__init__(self.render(self.NAMES))

    def render(self, names: dict[str, str], where: str = "") -> str:
        """The message with each option spelled as ``names`` says and ``where`` after the fix."""
        return self.template.format_map({**self.NAMES, **names, "where": where})


def template_text(text: object) -> str:
    """``text`` made safe to put in an ``NSQSettingError`` template (its braces doubled)."""
    return str(text).replace("{", "{{").replace("}", "}}")


class NSQHTTPError(NSQError):
    """An nsqd or nsqlookupd HTTP request failed; ``address`` and ``status`` (when there was one) tell where.

    Defined here, not in http.py, so that catching it costs no import of the HTTP client.
    """

    def __init__(self, message: str, *, address: str, status: int | None = None) -> None:
        super().__init__(message)
        self.address = address
        self.status = status


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
