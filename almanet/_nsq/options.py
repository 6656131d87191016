"""Connection settings: small frozen values, checked once when made."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

__all__ = ["DEFAULT_USER_AGENT", "ConnectionOptions", "TLSOptions"]

DEFAULT_USER_AGENT = "asyncio-nsq/0.8"


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """TLS towards nsqd, asked for in IDENTIFY (nsqd needs --tls-cert and --tls-key).

    ``ca_file`` verifies nsqd's certificate (default: the system's CAs); ``cert_file`` and
    ``key_file`` are the client certificate nsqd's --tls-client-auth-policy asks for (a
    ``cert_file`` alone may hold the key too); ``verify=False`` skips checking nsqd's certificate.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True

    def __post_init__(self) -> None:
        if self.key_file and not self.cert_file:
            raise ValueError("TLS key_file needs cert_file (the client certificate): set both")


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """What one connection asks of nsqd in IDENTIFY, plus client-side timeouts.

    ``output_buffer_size=-1`` turns off nsqd's output buffering: every message is written at once,
    which is what a latency-bound subscription (RPC) wants; bulk consumers keep the default.
    """

    client_id: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    hostname: str = field(default_factory=socket.gethostname)
    user_agent: str = DEFAULT_USER_AGENT  # an application sets its own
    heartbeat_interval_ms: int = 30_000
    output_buffer_size: int | None = None
    output_buffer_timeout_ms: int | None = None
    msg_timeout_ms: int | None = None
    connect_timeout: float = 5.0
    command_timeout: float = 10.0
    tls: TLSOptions | None = None
    auth_secret: str | None = field(default=None, repr=False)  # a password: never in logs
    max_frame_size: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.heartbeat_interval_ms != -1 and self.heartbeat_interval_ms < 1000:
            raise ValueError("heartbeat_interval_ms must be -1 (off) or at least 1000")
        if self.connect_timeout <= 0 or self.command_timeout <= 0:
            raise ValueError("timeouts must be positive")

    def identify_body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "client_id": self.client_id,
            "hostname": self.hostname,
            "user_agent": self.user_agent,
            "feature_negotiation": True,
            "heartbeat_interval": self.heartbeat_interval_ms,
            "tls_v1": self.tls is not None,
        }
        if self.output_buffer_size is not None:
            body["output_buffer_size"] = self.output_buffer_size
        if self.output_buffer_timeout_ms is not None:
            body["output_buffer_timeout"] = self.output_buffer_timeout_ms
        if self.msg_timeout_ms is not None:
            body["msg_timeout"] = self.msg_timeout_ms
        return body

    @property
    def read_timeout(self) -> float | None:
        """Silence longer than this means the peer is gone (two missed heartbeats)."""
        if self.heartbeat_interval_ms == -1:
            return None
        return 2 * self.heartbeat_interval_ms / 1000 + 1
