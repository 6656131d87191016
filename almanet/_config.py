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
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from almanet._errors import config_error

__all__ = [
    "CONFIG_FILE_NAME",
    "ENV_VARS",
    "KEYS",
    "Settings",
    "TLSSettings",
    "find_config_file",
    "load_settings",
    "split_address",
]

CONFIG_FILE_NAME = "almanet.toml"

# Dotted key -> kind of value. The order is the order `almanet config` prints.
_SCHEMA: dict[str, str] = {
    "nsq.nsqd": "addresses",
    "nsq.nsqd_http": "addresses",
    "nsq.lookupd_http": "addresses",
    "timeouts.call": "seconds",
    "timeouts.connect": "seconds",
    "tls.enabled": "bool",
    "tls.ca_file": "path",
    "tls.cert_file": "path",
    "tls.key_file": "path",
    "tls.verify": "bool",
    "auth.secret": "secret",
    "rpc.fail_fast": "bool",
}
KEYS: tuple[str, ...] = tuple(_SCHEMA)
_SECTIONS: dict[str, tuple[str, ...]] = {
    section: tuple(k.split(".")[1] for k in KEYS if k.startswith(section + "."))
    for section in dict.fromkeys(k.split(".")[0] for k in KEYS)
}

# Only addresses differ between machines of one deployment, so only they have variables.
ENV_VARS: Mapping[str, str] = MappingProxyType(
    {"ALMANET_NSQD": "nsq.nsqd", "ALMANET_NSQD_HTTP": "nsq.nsqd_http", "ALMANET_LOOKUPD": "nsq.lookupd_http"}
)

_DEFAULT_NSQD = ("localhost:4150",)
_DEFAULTS: dict[str, Any] = {
    "nsq.nsqd": (),  # localhost:4150 is filled in later, unless lookupd is configured
    "nsq.nsqd_http": (),  # derived from nsq.nsqd when not given
    "nsq.lookupd_http": (),
    "timeouts.call": 60.0,
    "timeouts.connect": 5.0,
    "tls.enabled": False,
    "tls.ca_file": None,
    "tls.cert_file": None,
    "tls.key_file": None,
    "tls.verify": True,
    "auth.secret": None,
    "rpc.fail_fast": True,
}


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
    fail_fast: bool = True  # refuse at once a call nothing serves (see almanet.new_session)
    config_file: Path | None = dataclasses.field(default=None, compare=False)
    sources: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}), compare=False, hash=False
    )

    def value(self, key: str) -> Any:
        """The value of a dotted key (``"timeouts.call"``), as stored here."""
        getter = _GETTERS.get(key)
        if getter is None:
            raise KeyError(f"unknown setting {key!r}{_did_you_mean(key, KEYS)}")
        return getter(self)

    def as_rows(self, *, reveal_secrets: bool = False) -> tuple[tuple[str, Any, str], ...]:
        """(key, value, source) for each key, with JSON-friendly values and the secret masked."""
        rows = []
        for key in KEYS:
            value = self.value(key)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Path):
                value = str(value)
            elif key == "auth.secret" and value is not None and not reveal_secrets:
                value = "***"
            rows.append((key, value, self.sources.get(key, "default")))
        return tuple(rows)


_GETTERS: dict[str, Callable[[Settings], Any]] = {
    "nsq.nsqd": lambda s: s.nsqd,
    "nsq.nsqd_http": lambda s: s.nsqd_http,
    "nsq.lookupd_http": lambda s: s.lookupd_http,
    "timeouts.call": lambda s: s.call_timeout,
    "timeouts.connect": lambda s: s.connect_timeout,
    "tls.enabled": lambda s: s.tls.enabled,
    "tls.ca_file": lambda s: s.tls.ca_file,
    "tls.cert_file": lambda s: s.tls.cert_file,
    "tls.key_file": lambda s: s.tls.key_file,
    "tls.verify": lambda s: s.tls.verify,
    "auth.secret": lambda s: s.auth_secret,
    "rpc.fail_fast": lambda s: s.fail_fast,
}

# --------------------------------------------------------------------------- addresses

_HOST_RE = re.compile(r"[A-Za-z0-9_.-]+")


def split_address(text: str) -> tuple[str, int]:
    """``"host:port"`` -> ``(host, port)``; IPv6 goes in brackets (``[::1]:4150``).

    Raises ValueError with a message that shows the expected form, so callers can add
    their own context (a key, a file) and pass it on.
    """
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


def _join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------- file lookup


def find_config_file(
    config_path: str | os.PathLike[str] | None, env: Mapping[str, str], cwd: Path
) -> tuple[Path | None, str]:
    """The file to read and how it was found: argument, $ALMANET_CONFIG, ./almanet.toml, user dir.

    A file asked for by name (argument or variable) must exist: silently falling back to
    defaults would connect somewhere the user did not mean.
    """
    if config_path is not None and str(config_path) != "":
        return _must_exist(cwd / Path(config_path), "the --config argument"), "argument"
    named = env.get("ALMANET_CONFIG", "")
    if named:
        return _must_exist(cwd / Path(named), "$ALMANET_CONFIG"), "env:ALMANET_CONFIG"
    local = cwd / CONFIG_FILE_NAME
    if local.is_file():
        return local, "cwd"
    user_dir = _user_config_dir(env)
    if user_dir is not None and (user_dir / CONFIG_FILE_NAME).is_file():
        return user_dir / CONFIG_FILE_NAME, "user"
    return None, "none"


def _must_exist(path: Path, named_by: str) -> Path:
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise config_error(f"config file {path} (named by {named_by}) {what}")
    return path


def _user_config_dir(env: Mapping[str, str]) -> Path | None:
    """XDG rules, read from `env` only (so tests never see the real home); relative XDG is ignored."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "almanet"
    home = env.get("HOME", "")
    return Path(home) / ".config" / "almanet" if home else None


# --------------------------------------------------------------------------- reading the file


@dataclasses.dataclass(frozen=True, slots=True)
class _Raw:
    """One value before checking, with what a message needs to point at it."""

    value: Any
    source: str  # provenance shown to the user
    where: str  # message prefix: "file:line", "$VAR" or "argument"
    base: Path  # relative paths are resolved against this directory


def _read_file(path: Path) -> dict[str, _Raw]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise config_error(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise config_error(f"{path}: not UTF-8 text; save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _decode_error(path, text, exc) from None
    lines = text.splitlines()
    raws: dict[str, _Raw] = {}
    for section, table in data.items():
        if section not in _SECTIONS:
            line = _find_line(lines, section, None)
            raise config_error(f"{_at(path, line)}: unknown section [{section}]{_suggest_section(section)}")
        if not isinstance(table, dict):
            line = _find_line(lines, section, None)
            raise config_error(f"{_at(path, line)}: `{section}` must be a table: write [{section}]")
        for name, value in table.items():
            line = _find_line(lines, section, name)
            if name not in _SECTIONS[section]:
                hint = _suggest_key(section, name)
                raise config_error(f"{_at(path, line)}: unknown key `{name}` in [{section}]{hint}")
            raws[f"{section}.{name}"] = _Raw(value, f"file:{path}", _at(path, line), path.parent)
    return raws


def _decode_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> config_error:
    """Point at file:line:column; tomllib has attributes only since 3.14, so parse the message."""
    message = str(getattr(exc, "msg", "") or exc)
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        line, column = int(match[1]), int(match[2])
        message = message[: match.start()]
    elif message.endswith("(at end of document)"):
        line = max(1, len(text.splitlines()))
        message = message.removesuffix("(at end of document)").rstrip() + " at end of file"
    where = f"{path}:{line}:{column}" if line and column else _at(path, line)
    return config_error(f"{where}: invalid TOML: {message}")


def _at(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def _find_line(lines: list[str], section: str, name: str | None) -> int | None:
    """1-based line where `section` (or `name` inside it) is written, or None.

    tomllib keeps no positions, so scan the text for the usual spellings: a ``[section]``
    header followed by ``name = ...``, or a dotted ``section.name = ...``.
    """

    def quoted(word: str) -> str:
        return rf"""["']?{re.escape(word)}["']?"""

    header = re.compile(rf"^\s*\[\[?\s*{quoted(section)}\s*[\].]")
    if name is None:
        patterns = [header, re.compile(rf"^\s*{quoted(section)}\s*[=.]")]
        return next((i + 1 for p in patterns for i, ln in enumerate(lines) if p.match(ln)), None)
    key = re.compile(rf"^\s*{quoted(name)}\s*[=.]")
    start = next((i for i, ln in enumerate(lines) if header.match(ln)), None)
    if start is not None:
        for i in range(start + 1, len(lines)):
            if re.match(r"^\s*\[", lines[i]):
                break
            if key.match(lines[i]):
                return i + 1
    anywhere = re.compile(rf"""(^|[\s.\[{{,]){quoted(name)}\s*[=.\]]""")
    return next((i + 1 for i, ln in enumerate(lines) if anywhere.search(ln)), None if start is None else start + 1)


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def _suggest_section(section: str) -> str:
    owners = [s for s, names in _SECTIONS.items() if section in names]
    if owners:
        return f"; `{section}` is a key: put it under [{owners[0]}]"
    return _did_you_mean(section, list(_SECTIONS)) or f"; valid sections: {', '.join(_SECTIONS)}"


def _suggest_key(section: str, name: str) -> str:
    owners = [s for s, names in _SECTIONS.items() if name in names]
    if owners:
        return f"; `{name}` belongs under [{owners[0]}]"
    return _did_you_mean(name, list(_SECTIONS[section])) or (f"; valid keys: {', '.join(_SECTIONS[section])}")


# --------------------------------------------------------------------------- checking values


def _addresses(value: Any, raw: _Raw, key: str) -> tuple[str, ...]:
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


def _seconds(value: Any, raw: _Raw, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise config_error(f"{raw.where}: {key} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise config_error(f"{raw.where}: {key} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _bool(value: Any, raw: _Raw, key: str) -> bool:
    if not isinstance(value, bool):
        raise config_error(f"{raw.where}: {key} must be true or false, got {value!r}")
    return value


def _path(value: Any, raw: _Raw, key: str, env: Mapping[str, str]) -> Path | None:
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


def _secret(value: Any, raw: _Raw, key: str) -> str | None:
    if not isinstance(value, str):
        raise config_error(f"{raw.where}: {key} must be a string, got {type(value).__name__}")
    return value or None


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

    raws: dict[str, _Raw] = {}
    if config_file is not None:
        config_file = config_file.absolute()
        raws.update(_read_file(config_file))
    for var, key in ENV_VARS.items():
        if env.get(var, "").strip():
            raws[key] = _Raw(env[var], f"env:{var}", f"${var}", cwd)
    for key, value in (overrides or {}).items():
        if key not in _SCHEMA:
            raise config_error(f"unknown setting {key!r}{_did_you_mean(key, KEYS)}")
        if value is not None:
            raws[key] = _Raw(value, "argument", "argument", cwd)

    values: dict[str, Any] = dict(_DEFAULTS)
    sources = dict.fromkeys(KEYS, "default")
    for key, raw in raws.items():
        kind = _SCHEMA[key]
        if kind == "path":
            values[key] = _path(raw.value, raw, key, env)
        else:
            check = {"addresses": _addresses, "seconds": _seconds, "bool": _bool, "secret": _secret}[kind]
            values[key] = check(raw.value, raw, key)
        sources[key] = raw.source

    _fill_addresses(values, sources, raws)
    if values["tls.key_file"] is not None and values["tls.cert_file"] is None:
        raise config_error(f"{raws['tls.key_file'].where}: tls.key_file needs tls.cert_file; set both")

    return Settings(
        nsqd=values["nsq.nsqd"],
        nsqd_http=values["nsq.nsqd_http"],
        lookupd_http=values["nsq.lookupd_http"],
        call_timeout=values["timeouts.call"],
        connect_timeout=values["timeouts.connect"],
        tls=TLSSettings(
            enabled=values["tls.enabled"],
            ca_file=values["tls.ca_file"],
            cert_file=values["tls.cert_file"],
            key_file=values["tls.key_file"],
            verify=values["tls.verify"],
        ),
        auth_secret=values["auth.secret"],
        fail_fast=values["rpc.fail_fast"],
        config_file=config_file,
        sources=MappingProxyType(sources),
    )


def _fill_addresses(values: dict[str, Any], sources: dict[str, str], raws: Mapping[str, _Raw]) -> None:
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
