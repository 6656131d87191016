"""Where almanet's settings come from: one TOML file, a few environment variables, CLI arguments.

Priority, highest first: argument > environment > file > default. Every value remembers its
source, so ``almanet config`` can answer "why does it connect there?". Everything is checked
here, once: the layers below receive valid values, and each mistake becomes one
``config_error`` that names the file, the line and the key to change.

Pure on purpose (no asyncio, no sockets): the only I/O is reading the one file and checking
that the TLS files named in it exist.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from almanet._nsq.address import Address, split_address
from almanet._settings.toml import CONFIG_FILE_NAME, Raw, did_you_mean, find_config_file, read_file
from almanet._wire.checks import MAX_TIMEOUT
from almanet._wire.errors import config_error

__all__ = [
    "CONFIG_FILE_NAME",
    "ENV_VARS",
    "KEYS",
    "LOG_FORMATS",
    "TABLE",
    "Key",
    "Settings",
    "TLSSettings",
    "find_config_file",
    "load_settings",
    "split_address",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Key:
    """One setting: everything parsing, defaults, provenance and ``almanet config`` need to know.

    ``field`` is where ``Settings`` keeps it (``"call_timeout"``, ``"tls.ca_file"``). Adding a
    setting is a row here and a field in ``Settings`` (or ``TLSSettings``).
    """

    name: str  # dotted: section.key, as written in almanet.toml
    kind: str  # addresses | address | seconds | bool | path | secret | log_format
    default: Any
    field: str
    help: str
    env: str | None = None  # addresses differ between machines; liveness between networks

    @property
    def section(self) -> str:
        return self.name.partition(".")[0]

    @property
    def short(self) -> str:
        return self.name.partition(".")[2]


# The order is the order `almanet config` prints.
TABLE: tuple[Key, ...] = (
    # localhost:4150 is filled in later, unless lookupd is configured (_fill_addresses)
    Key("nsq.nsqd", "addresses", (), "nsqd", "nsqd TCP addresses", "ALMANET_NSQD"),
    # derived from nsq.nsqd (TCP port + 1) when not given
    Key("nsq.nsqd_http", "addresses", (), "nsqd_http", "nsqd HTTP addresses (stats)", "ALMANET_NSQD_HTTP"),
    Key("nsq.lookupd_http", "addresses", (), "lookupd_http", "nsqlookupd HTTP addresses", "ALMANET_LOOKUPD"),
    Key("timeouts.call", "seconds", 60.0, "call_timeout", "default RPC timeout, seconds"),
    Key("timeouts.connect", "seconds", 5.0, "connect_timeout", "seconds allowed to connect to nsqd"),
    Key("tls.enabled", "bool", False, "tls.enabled", "use TLS towards nsqd"),
    Key("tls.ca_file", "path", None, "tls.ca_file", "CA bundle that verifies nsqd's certificate"),
    Key("tls.cert_file", "path", None, "tls.cert_file", "client certificate"),
    Key("tls.key_file", "path", None, "tls.key_file", "client certificate's key"),
    Key("tls.verify", "bool", True, "tls.verify", "check nsqd's certificate and host name"),
    Key("auth.secret", "secret", None, "auth_secret", "secret sent with AUTH"),
    Key("rpc.fail_fast", "bool", True, "fail_fast", "a call nothing serves fails at once"),
    Key("serve.http", "address", None, "serve_http", "health and metrics endpoint of `almanet serve` (off: none)"),
    Key("log.format", "log_format", "text", "log_format", "log lines of `almanet serve`: text or json"),
    # liveness (docs/reliability.md): how fast a frozen or unreachable nsqd is left
    Key(
        "liveness.heartbeat",
        "seconds",
        30.0,
        "heartbeat",
        "seconds between nsqd's heartbeats (1-60)",
        "ALMANET_HEARTBEAT",
    ),
    Key(
        "liveness.silent_after",
        "seconds",
        None,
        "silent_after",
        "seconds of silence after which an nsqd connection is dropped (default: 2 heartbeats + 1)",
        "ALMANET_SILENT_AFTER",
    ),
    Key(
        "liveness.ack_timeout",
        "seconds",
        1.0,
        "ack_timeout",
        "seconds a publish may wait for nsqd's OK before it goes to another nsqd",
        "ALMANET_ACK_TIMEOUT",
    ),
)
_BY_NAME: dict[str, Key] = {key.name: key for key in TABLE}
KEYS: tuple[str, ...] = tuple(_BY_NAME)
_SECTIONS: dict[str, tuple[str, ...]] = {
    section: tuple(k.short for k in TABLE if k.section == section)
    for section in dict.fromkeys(k.section for k in TABLE)
}
ENV_VARS: Mapping[str, str] = MappingProxyType({k.env: k.name for k in TABLE if k.env})

_DEFAULT_NSQD = ("localhost:4150",)


@dataclasses.dataclass(frozen=True, slots=True)
class TLSSettings:
    """TLS towards nsqd; files are absolute paths that existed when the settings were loaded."""

    enabled: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings. Equal when they connect the same way, wherever the values came from."""

    nsqd: tuple[str, ...]
    nsqd_http: tuple[str, ...]
    lookupd_http: tuple[str, ...]
    call_timeout: float
    connect_timeout: float
    tls: TLSSettings
    auth_secret: str | None = dataclasses.field(default=None, repr=False)  # never in logs
    fail_fast: bool = True  # refuse at once a call nothing serves (almanet.new_session's fail_fast)
    serve_http: str | None = None  # host:port of /healthz, /readyz, /metrics (almanet serve --http)
    log_format: str = "text"  # text | json (almanet serve --log-format)
    heartbeat: float = 30.0  # liveness.*: ConnectionOptions' heartbeat_interval_ms, silent_after, ack_timeout
    silent_after: float | None = None
    ack_timeout: float = 1.0
    config_file: Path | None = dataclasses.field(default=None, compare=False)
    sources: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}), compare=False, hash=False
    )

    def value(self, key: str) -> Any:
        """The value of a dotted key (``"timeouts.call"``), as stored here."""
        spec = _BY_NAME.get(key)
        if spec is None:
            raise KeyError(f"unknown setting {key!r}{did_you_mean(key, KEYS)}")
        value: Any = self
        for part in spec.field.split("."):
            value = getattr(value, part)
        return value

    def as_rows(self, *, reveal_secrets: bool = False) -> tuple[tuple[str, Any, str], ...]:
        """(key, value, source) for each key, with JSON-friendly values and the secret masked."""
        rows = []
        for spec in TABLE:
            value = self.value(spec.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Path):
                value = str(value)
            elif spec.kind == "secret" and value is not None and not reveal_secrets:
                value = "***"
            rows.append((spec.name, value, self.sources.get(spec.name, "default")))
        return tuple(rows)


def _build(values: Mapping[str, Any], **extra: Any) -> Settings:
    """``Settings`` from checked values by dotted key, each put where its ``Key.field`` says."""
    top: dict[str, Any] = {}
    tls: dict[str, Any] = {}
    for spec in TABLE:
        group, _, name = spec.field.rpartition(".")
        (tls if group == "tls" else top)[name] = values[spec.name]
    return Settings(**top, tls=TLSSettings(**tls), **extra)


# --------------------------------------------------------------------------- addresses


def _join_address(host: str, port: int) -> str:
    return str(Address(host, port))


# --------------------------------------------------------------------------- checking values


def _addresses(value: Any, raw: Raw, key: str) -> tuple[str, ...]:
    # Strings are comma-separated (environment, CLI); the file normally holds a list.
    if isinstance(value, str):
        items = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise config_error(f'{raw.where}: {key} must be a list of "host:port" strings, got {value!r}')
    found: list[str] = []
    for item in items:
        try:
            address = _join_address(*split_address(item))
        except ValueError as exc:
            raise config_error(f"{raw.where}: {key}: {exc}") from None
        if address not in found:
            found.append(address)
    return tuple(found)


def _seconds(value: Any, raw: Raw, key: str) -> float:
    if isinstance(value, str) and raw.source.startswith("env:"):  # the environment has only strings
        try:
            value = float(value)
        except ValueError:
            raise config_error(f"{raw.where}: {key} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise config_error(f"{raw.where}: {key} must be a number of seconds, got {value!r}")
    if not 0 < value <= MAX_TIMEOUT:
        raise config_error(
            f"{raw.where}: {key} must be a positive number of seconds, at most {MAX_TIMEOUT:g} (one day), got {value!r}"
        )
    return float(value)


def _bool(value: Any, raw: Raw, key: str) -> bool:
    if not isinstance(value, bool):
        raise config_error(f"{raw.where}: {key} must be true or false, got {value!r}")
    return value


def _path(value: Any, raw: Raw, key: str, env: Mapping[str, str]) -> Path | None:
    """An existing file; relative to the config file's directory when it comes from the file."""
    if value is None or value == "":
        return None
    if not isinstance(value, str | os.PathLike):
        raise config_error(f"{raw.where}: {key} must be a file path string, got {value!r}")
    text = os.fspath(value)
    if (text == "~" or text.startswith("~/")) and env.get("HOME"):
        text = env["HOME"] + text[1:]
    path = raw.base / text
    if not path.is_file():
        raise config_error(f"{raw.where}: {key}: file {path} does not exist; fix the path or remove {key}")
    return path


def _secret(value: Any, raw: Raw, key: str) -> str | None:
    if not isinstance(value, str):
        raise config_error(f"{raw.where}: {key} must be a string, got {type(value).__name__}")
    return value or None


def _address(value: Any, raw: Raw, key: str) -> str | None:
    """One ``host:port`` to listen on; "" means off."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise config_error(f'{raw.where}: {key} must be a "host:port" string, got {value!r}')
    try:
        return _join_address(*split_address(value))
    except ValueError as exc:
        raise config_error(f"{raw.where}: {key}: {exc}") from None


LOG_FORMATS = ("text", "json")


def _log_format(value: Any, raw: Raw, key: str) -> str:
    if value not in LOG_FORMATS:
        raise config_error(f'{raw.where}: {key} must be "text" or "json", got {value!r}')
    return str(value)


_CHECKS: dict[str, Callable[[Any, Raw, str], Any]] = {
    "addresses": _addresses,
    "address": _address,
    "log_format": _log_format,
    "seconds": _seconds,
    "bool": _bool,
    "secret": _secret,
}


# --------------------------------------------------------------------------- entry point


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Find, read, merge and check the settings; raise ``config_error`` on the first mistake.

    `overrides` are CLI arguments keyed by dotted key (``{"nsq.nsqd": ["h:4150"]}``); a None
    value means "not given", so a CLI can pass its options through unconditionally.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    config_file, _ = find_config_file(config_path, env, cwd)

    raws: dict[str, Raw] = {}
    if config_file is not None:
        config_file = config_file.absolute()
        raws.update(read_file(config_file, _SECTIONS))
    for var, key in ENV_VARS.items():
        if env.get(var, "").strip():
            raws[key] = Raw(env[var], f"env:{var}", f"${var}", cwd)
    for key, value in (overrides or {}).items():
        if key not in _BY_NAME:
            raise config_error(f"unknown setting {key!r}{did_you_mean(key, KEYS)}")
        if value is not None:
            raws[key] = Raw(value, "argument", "argument", cwd)

    values: dict[str, Any] = {spec.name: spec.default for spec in TABLE}
    sources = dict.fromkeys(KEYS, "default")
    for key, raw in raws.items():
        kind = _BY_NAME[key].kind
        if kind == "path":
            values[key] = _path(raw.value, raw, key, env)
        else:
            values[key] = _CHECKS[kind](raw.value, raw, key)
        sources[key] = raw.source

    _fill_addresses(values, sources, raws)
    _check_liveness(values, raws)
    if values["tls.key_file"] is not None and values["tls.cert_file"] is None:
        raise config_error(f"{raws['tls.key_file'].where}: tls.key_file needs tls.cert_file; set both")
    return _build(values, config_file=config_file, sources=MappingProxyType(sources))


def _check_liveness(values: Mapping[str, Any], raws: Mapping[str, Raw]) -> None:
    """What nsqd accepts, and a silence bound an idle but healthy connection cannot reach."""
    heartbeat, silent_after = values["liveness.heartbeat"], values["liveness.silent_after"]
    if not 1 <= heartbeat <= 60:
        where = raws["liveness.heartbeat"].where
        raise config_error(
            f"{where}: liveness.heartbeat must be between 1 and 60 seconds (nsqd's --max-heartbeat-interval),"
            f" got {heartbeat:g}"
        )
    if silent_after is not None and silent_after <= heartbeat:
        where = raws["liveness.silent_after"].where
        raise config_error(
            f"{where}: liveness.silent_after ({silent_after:g} s) must be longer than liveness.heartbeat"
            f" ({heartbeat:g} s), or an idle connection is dropped between two heartbeats"
        )


def _fill_addresses(values: dict[str, Any], sources: dict[str, str], raws: Mapping[str, Raw]) -> None:
    """Default nsqd, derive nsqd_http, and refuse a configuration with nowhere to connect.

    nsqd defaults to localhost:4150 only when no address at all is configured: with lookupd
    configured, a silent local nsqd would only produce confusing "connection refused" errors.
    """
    if "nsq.nsqd" not in raws and "nsq.lookupd_http" not in raws:
        values["nsq.nsqd"] = _DEFAULT_NSQD
    if not values["nsq.nsqd"] and not values["nsq.lookupd_http"]:
        raise config_error(
            "no NSQ address configured: set nsq.nsqd (or $ALMANET_NSQD) or nsq.lookupd_http (or $ALMANET_LOOKUPD)"
        )
    if "nsq.nsqd_http" not in raws:
        derived = []
        for address in values["nsq.nsqd"]:
            host, port = split_address(address)
            if port == 65535:
                raise config_error(
                    f"cannot derive nsq.nsqd_http from {address} (TCP port + 1 > 65535); set nsq.nsqd_http"
                )
            derived.append(_join_address(host, port + 1))
        values["nsq.nsqd_http"] = tuple(derived)
        sources["nsq.nsqd_http"] = "derived:nsq.nsqd"
