"""What every command shares: settings, exit codes, error lines, JSON output.

Kept light (typer and rich only): the almanet core is imported inside command bodies.
"""

from __future__ import annotations

import contextlib
import enum
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

__all__ = [
    "ConfigOption",
    "DiscoveryTimeoutOption",
    "Exit",
    "JsonOption",
    "NsqdOption",
    "TimeoutOption",
    "check_uri",
    "discover",
    "exit_on_errors",
    "fail",
    "load",
    "need_extra",
    "open_session",
    "parse_json_argument",
    "positive",
    "print_json",
    "quoting_hint",
    "read_payload",
    "run",
    "session_options",
    "stderr_console",
]


class Exit(enum.IntEnum):
    OK = 0
    REMOTE_ERROR = 1
    BAD_INPUT = 2
    TIMEOUT = 3
    BROKER = 4
    # a timeout whose reason is known (almanet.timeout_error.reason); 3 stays "reason unknown"
    NOT_SERVED = 5
    QUEUED = 6
    RUNNING = 7
    REPLY_LOST = 8
    EXPIRED = 9
    # contracts: `asyncapi --check` found a breaking change (or `--drift` differing instances);
    # `fuzz` found an input that fails
    CONTRACT_BROKEN = 10
    FUZZ_FAILED = 11
    INTERRUPTED = 130


_TIMEOUT_EXITS = {
    "not_served": Exit.NOT_SERVED,
    "queued": Exit.QUEUED,
    "running": Exit.RUNNING,
    "reply_lost": Exit.REPLY_LOST,
    "expired": Exit.EXPIRED,
}


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="PATH",
        help="almanet.toml to use (default: $ALMANET_CONFIG, ./almanet.toml, ~/.config/almanet/).",
        show_default=False,
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", "-t", metavar="SECONDS", help="Seconds to wait for replies.", show_default=False),
]
DiscoveryTimeoutOption = Annotated[
    float,
    typer.Option("--timeout", "-t", metavar="SECONDS", help="Seconds to wait for discovery replies."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="The same as -o json.")]
NsqdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--nsqd",
        metavar="HOST:PORT",
        help="nsqd TCP address (repeatable); overrides the config.",
        show_default=False,
    ),
]


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def fail(message: str, code: Exit, *, label: str = "error", **fields: Any) -> NoReturn:
    """One styled line on stderr (one JSON object with ``-o json``) and the documented exit code."""
    from ._output import error_json, json_errors

    if json_errors():
        error_json(label, message, int(code), **fields)
        raise typer.Exit(int(code))
    from rich.markup import escape

    # escape: messages quote user text and TOML ("[nsq]"), which rich would take for markup
    stderr_console().print(f"[bold red]{label}:[/bold red] {escape(message)}", markup=True, soft_wrap=True)
    raise typer.Exit(int(code))


def load(config: Path | None, nsqd: list[str] | None = None) -> Any:
    """The settings in effect, or exit 2 with the config error."""
    from almanet._settings.config import load_settings
    from almanet._wire.errors import config_error

    try:
        return load_settings(config, overrides={"nsq.nsqd": nsqd or None})
    except config_error as exc:
        fail(str(exc), Exit.BAD_INPUT, label="config error")


def need_extra(module: str, what: str, extra: str) -> None:
    """``what`` needs ``module`` from the ``extra`` extra: without it, exit 2 naming the install."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        fail(f"{what} needs {module}, which is not installed: pip install 'almanet[{extra}]'", Exit.BAD_INPUT)


def check_uri(uri: str) -> str:
    """A procedure URI, or exit 2 before anything is sent."""
    from almanet._wire.protocol import check_uri as _check

    try:
        return _check(uri)
    except ValueError as exc:
        fail(str(exc), Exit.BAD_INPUT)


def positive(value: float | None, option: str) -> float | None:
    """A timeout option: positive and at most a day (``_wire.checks.MAX_TIMEOUT``), else exit 2."""
    from almanet._wire.checks import MAX_TIMEOUT, timeout_message

    if value is not None and not 0 < value <= MAX_TIMEOUT:
        fail(timeout_message(option, value), Exit.BAD_INPUT)
    return value


def session_options(settings: Any) -> dict[str, Any]:
    """Keyword arguments for ``almanet.new_session`` / ``Service.start`` from the settings."""
    from almanet._settings.configure import session_options as options

    return options(settings)


async def open_session(settings: Any) -> Any:
    """A session (not joined yet) on the nsqd of the settings (and their nsqlookupd), with their options."""
    import almanet

    return almanet.new_session(*settings.nsqd, **session_options(settings))


async def discover(session: Any, timeout: float) -> list[Any]:
    """The live service instances (``_wire.Instance``), from the ``_api_schema_.client`` multicall."""
    from almanet._wire.protocol import CLIENT_DISCOVERY_URI, decode_discovery

    replies = await session.multicall(CLIENT_DISCOVERY_URI, None, timeout=timeout)
    found = [i for i in (decode_discovery(getattr(r, "payload", None)) for r in replies) if i is not None]
    found.sort(key=lambda i: (i.prepath or "", i.host or "", i.pid or 0))
    return found


@contextlib.contextmanager
def exit_on_errors(*, timeout_message: str = "no service answered within the timeout", **fields: Any) -> Iterator[None]:
    """Domain errors → one line on stderr and the documented exit code (``fields`` go into JSON errors)."""
    from almanet._nsq.errors import NSQHTTPError  # defined with the other client errors: no HTTP import
    from almanet._wire.errors import almanet_error, broker_error, config_error, invalid_argument

    try:
        yield
    except TimeoutError as exc:
        reason = getattr(exc, "reason", None)  # almanet.timeout_error: why, with an exit code each
        if reason is None:
            fail(timeout_message, Exit.TIMEOUT, label="timeout", **fields)
        from ._output import json_errors

        # JSON keeps the label of every timeout ("timeout") and adds the reason as its own field
        label = "timeout" if json_errors() else f"timeout ({reason.replace('_', ' ')})"
        fail(str(exc), _TIMEOUT_EXITS.get(reason, Exit.TIMEOUT), label=label, reason=reason, **fields)
    except (invalid_argument, config_error) as exc:
        fail(str(exc), Exit.BAD_INPUT, **fields)
    except broker_error as exc:
        fail(str(exc), Exit.BROKER, label="broker unavailable", **fields)
    except almanet_error as exc:
        fail(str(exc), Exit.BROKER, label="error", **fields)
    except NSQHTTPError as exc:
        fail(str(exc), Exit.BROKER, label="broker unavailable", **fields)


def parse_json_argument(text: str, what: str = "payload") -> Any:
    """A JSON argument, ``@file.json``, or ``-`` for stdin; bad JSON exits 2 before anything is sent."""
    if text == "-":
        data = sys.stdin.buffer.read()
        return _decode(data, f"{what} from stdin", data.decode("utf-8", "replace").strip())
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail(f"cannot read {what} file {path}: {exc.strerror}", Exit.BAD_INPUT)
        return _decode(data, f"{what} file {path}", "")
    return _decode(text.encode(), what, text)


def read_payload(payload: str | None) -> Any:
    """PAYLOAD as given; omitted with stdin piped: stdin's JSON (empty stdin: null), as produce does."""
    if payload is not None:
        return parse_json_argument(payload)
    if sys.stdin is None or sys.stdin.isatty():
        return None
    data = sys.stdin.buffer.read()
    if not data.strip():
        return None
    return _decode(data, "payload from stdin", data.decode("utf-8", "replace").strip())


def _decode(data: bytes, source: str, typed: str) -> Any:
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        fail(f"{source} is not valid JSON: {exc}{quoting_hint(typed)}", Exit.BAD_INPUT)


def quoting_hint(text: str) -> str:
    """For a bare word meant as a string: the shell quoting that sends it, built from what was typed."""
    import shlex

    if not text or "\n" in text or text[:1] in '{["-@0123456789' or text in ("true", "false", "null"):
        return ""
    import orjson

    return f" (strings need JSON quotes: {shlex.quote(orjson.dumps(text).decode())})"


def print_json(value: Any) -> None:
    """Pretty and highlighted on a terminal (or with ``-o table``), compact with JSON output."""
    import orjson

    from ._output import wants_json

    if not wants_json():
        from rich.console import Console
        from rich.json import JSON

        Console().print(JSON(orjson.dumps(value, default=str).decode()))
    else:
        sys.stdout.write(orjson.dumps(value, default=str).decode() + "\n")
        sys.stdout.flush()


def run(coroutine: Any) -> Any:
    """Run the command's coroutine; Ctrl-C exits 130 without a traceback."""
    import asyncio

    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        fail("interrupted", Exit.INTERRUPTED, label="stopped")
