"""``almanet describe URI``: a procedure's description and its payload/return JSON schemas."""

from __future__ import annotations

import difflib
from typing import Any

import typer

from ._common import (
    ConfigOption,
    DiscoveryTimeoutOption,
    Exit,
    JsonOption,
    NsqdOption,
    check_uri,
    discover,
    exit_on_errors,
    fail,
    load,
    open_session,
    positive,
    print_json,
    run,
)
from ._complete import UriArgument
from ._output import Output, OutputOption, set_output, wants_json
from ._usage import hinted

DEFAULT_DISCOVERY_TIMEOUT = 1.0


def register(app: typer.Typer) -> None:
    app.command(
        "describe",
        short_help="Show a procedure's description and JSON schemas.",
        help=(
            "Print a live procedure's description and its payload and return JSON schemas (JSON when piped or"
            " with -o json). Exit codes: 0 ok, 2 invalid URI, 3 no live service serves URI, 4 broker unavailable."
        ),
        **hinted(),
    )(describe)


class NotServed(Exception):
    def __init__(self, known: list[str]) -> None:
        self.known = known


async def _describe(settings: Any, uri: str, timeout: float) -> list[dict[str, Any]]:
    """One description per (channel, schema) serving ``uri``."""
    from almanet._wire.protocol import describe_uri

    session = await open_session(settings)
    async with session:
        instances = await discover(session, timeout)
        found: list[dict[str, Any]] = []
        known: set[str] = set()
        legacy_channels: list[str] = []
        for instance in instances:
            known |= instance.uris
            found.extend(p.document for p in instance.procedures if p.uri == uri)
            if not instance.procedures:  # almanet 0.7.0: only "uri/channel" routes; ask the per-procedure topic
                for route_uri, channel in instance.routes:
                    if route_uri == uri and channel not in legacy_channels:
                        legacy_channels.append(channel)
        for channel in legacy_channels:
            try:
                found.append((await session.call(describe_uri(uri, channel), None, timeout=timeout)).payload)
            except (TimeoutError, ValueError):
                continue
    if not found:
        raise NotServed(sorted(known))
    import orjson

    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for procedure in found:
        procedure = {k: v for k, v in procedure.items() if k not in ("client", "version")}
        key = (str(procedure.get("channel")), orjson.dumps(procedure, option=orjson.OPT_SORT_KEYS).decode())
        unique.setdefault(key, procedure)
    return list(unique.values())


def render(procedures: list[dict[str, Any]]) -> None:
    import orjson
    from rich.console import Console
    from rich.json import JSON
    from rich.markup import escape
    from rich.panel import Panel

    console = Console()
    for procedure in procedures:
        tags = ", ".join(procedure.get("tags") or []) or "-"
        head = f"[bold]{escape(str(procedure.get('uri')))}[/bold]  channel {escape(str(procedure.get('channel')))}"
        head += f"  tags {escape(tags)}"
        console.print(head)
        console.print(procedure.get("description") or "(no description)", markup=False)
        for key, title in (("payload_json_schema", "payload"), ("return_json_schema", "returns")):
            schema = procedure.get(key)
            console.print(Panel(JSON(orjson.dumps(schema).decode()), title=title, title_align="left", expand=False))


def describe(
    uri: UriArgument,
    output: OutputOption = Output.auto,
    as_json: JsonOption = False,
    timeout: DiscoveryTimeoutOption = DEFAULT_DISCOVERY_TIMEOUT,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    set_output(output, legacy_json=as_json)
    check_uri(uri)
    positive(timeout, "--timeout")
    settings = load(config, nsqd)
    try:
        with exit_on_errors(uri=uri):
            procedures = run(_describe(settings, uri, timeout))
    except NotServed as exc:
        close = difflib.get_close_matches(uri, exc.known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ("" if exc.known else "; no service answered discovery")
        fail(f"no live service serves {uri}{hint}", Exit.TIMEOUT, label="not found", uri=uri)
    if wants_json():
        print_json(procedures[0] if len(procedures) == 1 else procedures)
    else:
        render(procedures)
