"""The one output switch (``-o auto|json|table``) and machine-readable errors.

``auto`` is the human form on a terminal and JSON when stdout is piped. With ``-o json`` given,
an error is one JSON object on stderr too (like grpcurl's ``-format-error``), so a script reads
both results and failures without parsing prose. Kept light: no almanet core, no rich at import.
"""

from __future__ import annotations

import enum
import sys
from typing import Annotated, Any

import typer

__all__ = ["Output", "OutputOption", "error_json", "json_errors", "set_output", "wants_json", "wants_json_args"]


class Output(enum.StrEnum):
    auto = "auto"
    json = "json"
    table = "table"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        metavar="auto|json|table",
        help="auto: tables/pretty on a terminal, JSON when piped; json: always JSON (errors too, on stderr).",
    ),
]

_mode: Output = Output.auto


def set_output(mode: Output | str, *, legacy_json: bool = False) -> Output:
    """Record the command's output mode (``--json`` is the old spelling of ``-o json``)."""
    global _mode
    _mode = Output.json if legacy_json else Output(mode)
    return _mode


def wants_json() -> bool:
    """True when results go out as JSON: ``-o json``, or ``auto`` with stdout piped."""
    return _mode is Output.json or (_mode is Output.auto and not sys.stdout.isatty())


def json_errors() -> bool:
    """Errors as JSON objects only when asked for explicitly: a piped stdout still has a human on stderr."""
    return _mode is Output.json


def wants_json_args(args: list[str]) -> bool:
    """``-o json`` in raw arguments: usage errors happen before the option is parsed."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--json" or arg in ("--output=json", "-ojson"):
            return True
        if arg in ("-o", "--output") and i + 1 < len(args) and args[i + 1].lower() == "json":
            return True
    return False


def error_json(label: str, message: str, code: int, **fields: Any) -> None:
    """One JSON object on stderr: ``{"error", "message", "exit_code", ...}``."""
    import orjson

    record = {"error": label, "message": message, "exit_code": code, **fields}
    sys.stderr.write(orjson.dumps(record, default=str).decode() + "\n")
    sys.stderr.flush()
