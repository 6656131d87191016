"""``almanet config``: the settings in effect and where each value came from."""

from __future__ import annotations

from typing import Any

import typer

from ._common import ConfigOption, JsonOption, NsqdOption, load, print_json
from ._output import Output, OutputOption, set_output, wants_json
from ._usage import hinted


def register(app: typer.Typer) -> None:
    app.command(
        "config",
        short_help="Show the configuration in effect and where each value came from.",
        help=(
            "Show the configuration in effect: each key, its value and its source (argument, env:VAR,"
            " file:PATH, derived or default). The auth secret is masked. Exit codes: 0 ok, 2 bad configuration."
        ),
        **hinted(),
    )(config_command)


def config_command(
    output: OutputOption = Output.auto,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    set_output(output, legacy_json=as_json)
    settings = load(config, nsqd)
    rows = settings.as_rows()
    file = str(settings.config_file) if settings.config_file is not None else None
    if wants_json():
        print_json({"config_file": file, "settings": [{"key": k, "value": v, "source": s} for k, v, s in rows]})
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"config file: {file or 'none (defaults and environment)'}", title_justify="left")
    table.add_column("key")
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for key, value, source in rows:
        table.add_row(key, Text(_show(value)), Text(source))
    Console().print(table)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(value) if value else "[]"
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
