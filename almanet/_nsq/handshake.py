"""Opening a connection's conversation with nsqd: magic, IDENTIFY, then TLS and AUTH when asked.

Kept out of ``connection.py``, whose code runs for every frame: this runs once per connection.
A failure that one of the client's options fixes raises ``NSQSettingError`` naming that option
(``setting``); the program that configured the option words the fix in its own terms.
OpenSSL's failures are told apart by their type and verify code, not by their text.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Protocol

import orjson

from . import codec
from .address import Address
from .errors import NSQErrorResponse, NSQHandshakeError, NSQSettingError, ProtocolError, template_text
from .options import ConnectionOptions, TLSOptions

if TYPE_CHECKING:
    import ssl

__all__ = ["HandshakeStream", "handshake", "not_nsq_error", "tls_required_error"]


class HandshakeStream(Protocol):
    """What the handshake needs of a connection; ``connection.Connection`` is one.

    Owned here, below the connection, so that the connection imports the handshake and not the
    other way round.
    """

    address: str
    options: ConnectionOptions
    server_settings: dict[str, object]

    def send_raw(self, data: bytes) -> None: ...

    def request(self, command: bytes) -> asyncio.Future[bytes]: ...

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None: ...


logger = logging.getLogger(__name__)

# X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH: the certificate is fine, the name is not
_NAME_MISMATCH = frozenset({62, 64})
# alerts nsqd's TLS stack sends when --tls-client-auth-policy wants a certificate we did not give
_CLIENT_CERT_ALERTS = frozenset(
    {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_HANDSHAKE_FAILURE", "SSLV3_ALERT_BAD_CERTIFICATE"}
)


async def handshake(connection: HandshakeStream) -> None:
    """Identify, upgrade to TLS and authenticate, in the order nsqd expects; bounded by the caller."""
    options = connection.options
    connection.send_raw(codec.MAGIC_V2)
    reply = await connection.request(codec.identify(options.identify_body()))
    if reply != b"OK":
        try:
            connection.server_settings = orjson.loads(reply)
        except orjson.JSONDecodeError:
            raise ProtocolError(f"IDENTIFY answered with {reply[:80]!r}") from None
    address = template_text(connection.address)
    if options.tls is not None:
        if not connection.server_settings.get("tls_v1"):
            # never fall back to plaintext when TLS was asked for
            raise NSQSettingError(
                f"nsqd at {address} does not offer TLS: start it with --tls-cert and --tls-key,"
                " or set {tls} = false{where} to connect without TLS",
                setting="tls",
            )
        await _upgrade(connection, options.tls)
    if connection.server_settings.get("auth_required"):
        await _authenticate(connection)
    elif options.auth_secret:
        logger.warning("nsqd at %s does not ask for AUTH; the configured secret is not sent", connection.address)


async def _authenticate(connection: HandshakeStream) -> None:
    """AUTH with the configured secret; nsqd asks its --auth-http-address server about it."""
    secret = connection.options.auth_secret
    address = template_text(connection.address)
    if not secret:
        raise NSQSettingError(
            f"nsqd at {address} requires AUTH (it runs with --auth-http-address): set {{auth_secret}}{{where}}",
            setting="auth_secret",
        )
    try:
        reply = await connection.request(codec.auth(secret.encode()))
    except NSQErrorResponse as exc:
        if exc.code == "E_AUTH_FAILED":
            hint = "nsqd's auth server refused the secret (or could not be reached by nsqd)"
        elif exc.code == "E_UNAUTHORIZED":
            hint = "nsqd's auth server accepted the secret but grants it no permissions"
        else:
            hint = "nsqd refused the AUTH command"
        raise NSQSettingError(
            f"AUTH with nsqd at {address} failed ({template_text(exc)}): {hint}; check {{auth_secret}}{{where}}",
            setting="auth_secret",
        ) from None
    with contextlib.suppress(orjson.JSONDecodeError):
        logger.debug("nsqd at %s: AUTH as %s", connection.address, orjson.loads(reply))


async def _upgrade(connection: HandshakeStream, tls: TLSOptions) -> None:
    import ssl

    context = _tls_context(tls, connection.address)
    try:
        await connection.start_tls(context, Address.parse(connection.address).host)
    except ssl.SSLCertVerificationError as exc:
        raise _verify_failure(connection.address, exc, tls) from None
    except (ssl.SSLError, OSError) as exc:
        # OSError covers NSQConnectionError: the OK's waiter failed as the connection went; what
        # OpenSSL said, if anything, is its cause
        raise _tls_failure(connection.address, exc, tls) from None


def _verify_failure(address: str, exc: ssl.SSLCertVerificationError, tls: TLSOptions) -> NSQHandshakeError:
    text = f"TLS with nsqd at {address} failed: nsqd's certificate did not verify ({exc.verify_message})"
    if exc.verify_code in _NAME_MISMATCH:
        return NSQHandshakeError(f"{text}; connect by a name or address listed in nsqd's certificate (subjectAltName)")
    if tls.ca_file:
        where = f"{{ca_file}} ({template_text(tls.ca_file)}) is not"
    else:
        where = "without {ca_file}, the system CAs lack"
    return NSQSettingError(
        f"{template_text(text)}; {where} the CA that signed nsqd's certificate: set {{ca_file}}{{where}}"
        " to that CA (or {verify} = false to skip the check)",
        setting="ca_file",
    )


def _tls_failure(address: str, exc: BaseException, tls: TLSOptions) -> NSQHandshakeError:
    import ssl

    cause = exc.__cause__ if isinstance(exc.__cause__, BaseException) else exc
    reason = getattr(cause, "reason", None) if isinstance(cause, ssl.SSLError) else None
    detail = str(cause) or type(cause).__name__
    text = template_text(f"TLS with nsqd at {address} failed: {detail}")
    dropped = isinstance(cause, ssl.SSLEOFError | ConnectionError)  # nsqd hung up: how a refused client cert shows
    if not tls.cert_file and (reason in _CLIENT_CERT_ALERTS or (reason is None and dropped)):
        return NSQSettingError(
            f"{text}; if nsqd runs with --tls-client-auth-policy it needs a client certificate:"
            " set {cert_file} and {key_file}{where}",
            setting="cert_file",
        )
    return NSQSettingError(
        f"{text}; check {{tls}}{{where}} against nsqd's --tls-* flags (e.g. --tls-min-version)", setting="tls"
    )


def tls_required_error(address: str, response: NSQErrorResponse) -> NSQSettingError:
    """nsqd --tls-required answers the first command after a plaintext IDENTIFY so."""
    return NSQSettingError(
        f"nsqd at {template_text(address)} requires TLS ({template_text(response)}): set {{tls}} = true{{where}},"
        " with {ca_file} naming the CA that signed nsqd's certificate",
        setting="tls",
    )


@functools.lru_cache(maxsize=16)
def _tls_context(tls: TLSOptions, address: str) -> ssl.SSLContext:
    """The client SSL context for these settings (made once: loading a CA file costs ~ms)."""
    import ssl

    what, setting = "{ca_file}", "ca_file"
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
        if not tls.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if tls.cert_file:
            what, setting = "{cert_file}/{key_file}", "cert_file"
            context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise NSQSettingError(
            f"TLS with nsqd at {template_text(address)}: cannot load {what} ({template_text(detail)}):"
            f" set {what}{{where}} to readable PEM files",
            setting=setting,
        ) from None
    return context


def not_nsq_error(address: str, data: bytes) -> NSQSettingError | None:
    """Name the likely mistake when the peer is an HTTP server (nsqd's HTTP port, say), not nsqd's TCP port.

    Here rather than in the connection: it reads the first bytes a peer sends, once.
    """
    if not data.startswith(b"HTTP/"):
        return None
    parsed = Address.parse(address)
    below = Address(parsed.host, parsed.port - 1)
    guess = f"usually the HTTP port - 1, here {below}; " if parsed.port > 1 else ""
    return NSQSettingError(
        f"{template_text(address)} answers HTTP: it is an HTTP port, not nsqd's TCP port"
        f" ({template_text(guess)}4150 by default): fix {{address}}{{where}}",
        setting="address",
    )
