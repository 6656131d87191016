"""Settings (almanet.toml, environment) turned into what a session or a served service is given.

Shared by the CLI and ``Service.serve()``, so that ``python -m my_service`` connects where
``almanet serve my_service:svc`` would, with the same TLS, AUTH and timeouts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._nsq.options import ConnectionOptions, TLSOptions
from .config import Settings

__all__ = ["connection_options", "serve_addresses", "session_options"]


def connection_options(settings: Settings) -> ConnectionOptions:
    """The one place settings become connection options: timeouts, liveness, TLS and AUTH."""
    tls = None
    if settings.tls.enabled:

        def text(path: Path | None) -> str | None:
            return str(path) if path is not None else None

        tls = TLSOptions(
            ca_file=text(settings.tls.ca_file),
            cert_file=text(settings.tls.cert_file),
            key_file=text(settings.tls.key_file),
            verify=settings.tls.verify,
        )
    return ConnectionOptions(
        connect_timeout=settings.connect_timeout,
        tls=tls,
        auth_secret=settings.auth_secret,
        heartbeat_interval_ms=round(settings.heartbeat * 1000),
        silent_after=settings.silent_after,
        ack_timeout=settings.ack_timeout,
    )


def session_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``almanet.new_session`` / ``Service.start`` from the settings.

    With ``nsq.lookupd_http`` set, the session finds its nsqd there (at join, then every
    15 s), in addition to any ``nsq.nsqd`` given.
    """
    options: dict[str, Any] = {"options": connection_options(settings), "default_timeout": settings.call_timeout}
    # /stats is read for fail-fast and timeout reasons: the nsqd HTTP addresses, and the switch
    options["nsqd_http"] = tuple(settings.nsqd_http)
    options["fail_fast"] = settings.fail_fast
    if settings.lookupd_http:
        options["lookupd"] = tuple(settings.lookupd_http)
    return options


def serve_addresses(settings: Settings, options: dict[str, Any]) -> tuple[str, ...] | None:
    """The nsqd to serve on: the configured ones, or None (the service's own) when none is configured.

    The configuration (file, environment, ``--nsqd``) wins over the addresses written in the
    service's code; with no address configured at all, the code's addresses are used. ``options``
    (from ``session_options``) loses its lookupd then, so that the service's own lookupd apply.
    """
    configured = any(settings.sources.get(key, "default") != "default" for key in ("nsq.nsqd", "nsq.lookupd_http"))
    if not configured:
        options.pop("lookupd", None)
        return None
    options["lookupd"] = tuple(settings.lookupd_http)
    return tuple(settings.nsqd)
