"""Connection settings: small frozen values, checked once when made."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

__all__ = ["DEFAULT_ACK_TIMEOUT", "DEFAULT_USER_AGENT", "MAX_HEARTBEAT_MS", "ConnectionOptions", "TLSOptions"]

DEFAULT_USER_AGENT = "asyncio-nsq/0.8"
# nsqd answers a PUB within milliseconds; a node silent this long while another answers is dropped
DEFAULT_ACK_TIMEOUT = 1.0
# nsqd refuses an IDENTIFY asking for more (its --max-heartbeat-interval, 60 s by default)
MAX_HEARTBEAT_MS = 60_000


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
    # liveness (docs/reliability.md): a publish unanswered this long moves to another live nsqd
    ack_timeout: float = DEFAULT_ACK_TIMEOUT
    # a connection silent this long is dead (a frozen host); None: two missed heartbeats + 1 s
    silent_after: float | None = None

    def __post_init__(self) -> None:
        if self.heartbeat_interval_ms != -1 and not 1000 <= self.heartbeat_interval_ms <= MAX_HEARTBEAT_MS:
            raise ValueError(
                f"heartbeat_interval_ms must be -1 (off) or between 1000 and {MAX_HEARTBEAT_MS}"
                " (nsqd's default --max-heartbeat-interval)"
            )
        if not (self.connect_timeout > 0 and self.command_timeout > 0 and self.ack_timeout > 0):
            raise ValueError("timeouts must be positive")
        if self.silent_after is not None:
            if not self.silent_after > 0:
                raise ValueError("silent_after must be positive")
            if self.heartbeat_interval_ms != -1 and self.silent_after <= self.heartbeat_interval_ms / 1000:
                raise ValueError(
                    f"silent_after ({self.silent_after:g} s) must be longer than the heartbeat interval"
                    f" ({self.heartbeat_interval_ms / 1000:g} s): an idle connection would be dropped between"
                    " two heartbeats"
                )

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
        """Silence longer than this means the peer is gone (by default two missed heartbeats)."""
        if self.silent_after is not None:
            return self.silent_after
        if self.heartbeat_interval_ms == -1:
            return None
        return 2 * self.heartbeat_interval_ms / 1000 + 1
