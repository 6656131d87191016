"""What every command shares: settings, exit codes, error lines, JSON output.

Kept light (typer and rich only): the almanet core is imported inside command bodies.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer


class Exit(enum.IntEnum):
    OK = 0
    REMOTE_ERROR = 1
    BAD_INPUT = 2
    TIMEOUT = 3
    BROKER = 4
    INTERRUPTED = 130


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="almanet.toml to use (default: $ALMANET_CONFIG, ./almanet.toml, ~/.config/almanet/).",
        show_default=False,
    ),
]
NsqdOption = Annotated[
    list[str] | None,
    typer.Option("--nsqd", help="nsqd TCP address host:port (repeatable); overrides the config.", show_default=False),
]


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def fail(message: str, code: Exit, *, label: str = "error") -> NoReturn:
    """One styled line on stderr and the documented exit code: no traceback."""
    stderr_console().print(f"[bold red]{label}:[/bold red] {message}", markup=True, soft_wrap=True)
    raise typer.Exit(int(code))


def load(config: Path | None, nsqd: list[str] | None = None) -> Any:
    """The settings in effect, or exit 2 with the config error."""
    from almanet._config import load_settings
    from almanet._errors import config_error

    try:
        return load_settings(config, overrides={"nsq.nsqd": nsqd or None})
    except config_error as exc:
        fail(str(exc), Exit.BAD_INPUT, label="config error")


def parse_json_argument(text: str, what: str = "payload") -> Any:
    """A JSON argument, ``@file.json``, or ``-`` for stdin; bad JSON exits 2 before anything is sent."""
    import orjson

    source = what
    if text == "-":
        data: bytes = sys.stdin.buffer.read()
        source = f"{what} from stdin"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail(f"cannot read {what} file {path}: {exc.strerror}", Exit.BAD_INPUT)
        source = f"{what} file {path}"
    else:
        data = text.encode()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        hint = " (strings need JSON quotes: '\"Aidar\"')" if text and text[:1] not in '{["-@0123456789tfn' else ""
        fail(f"{source} is not valid JSON: {exc}{hint}", Exit.BAD_INPUT)


def print_json(value: Any) -> None:
    """Pretty and highlighted on a terminal, compact when piped."""
    import orjson

    if sys.stdout.isatty():
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
