"""``almanet asyncapi [TARGET]``: the AsyncAPI 3 document of a module's services or of the live bus;
``--check SAVED`` names the changes that break its callers, ``--drift`` the differences between
live instances of one service (what a rolling deploy leaves behind).
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    ConfigOption,
    DiscoveryTimeoutOption,
    Exit,
    NsqdOption,
    exit_on_errors,
    fail,
    load,
    need_extra,
    positive,
    run,
    stderr_console,
)
from ._output import set_output
from ._usage import hinted, text_argument

DEFAULT_DISCOVERY_TIMEOUT = 1.0


class Format(enum.StrEnum):
    auto = "auto"
    json = "json"
    yaml = "yaml"
    table = "table"  # the human form anyway: highlighted JSON, the --check report as lines


def register(app: typer.Typer) -> None:
    app.command(
        "asyncapi",
        short_help="Print the AsyncAPI 3 document of a module's services or of the live bus; check it.",
        help=(
            "Print the AsyncAPI 3.0.0 document of TARGET's services (MODULE:ATTR, imported as serve does, no"
            " broker needed) or, without TARGET, of every live service found by discovery: one operation per"
            " procedure on its _rpc_.<uri> channel, with its reply. JSON (pretty on a terminal); -o yaml for YAML."
            " --check SAVED compares with a saved document and names every breaking change; --drift compares"
            " the live instances of each service with each other. Exit codes: 0 ok (compatible), 2 bad input,"
            " 3 no live service answered, 4 broker unavailable, 10 breaking changes (--check) or instances"
            " that differ (--drift)."
        ),
        **hinted(),
    )(asyncapi)


def _document(services: list[Any], title: str | None, version: str) -> dict[str, Any]:
    from almanet._contracts.asyncapi import build_document

    prepaths = sorted({s.prepath for s in services if s.prepath})
    name = title or (prepaths[0] if len(prepaths) == 1 else "almanet bus")
    text = "almanet procedures over NSQ: " + (", ".join(prepaths) if prepaths else "no prepath")
    return build_document(services, title=name, version=version, description=text)


def _emit(document: dict[str, Any], form: Format) -> None:
    if form is Format.yaml:
        need_extra("yaml", "-o yaml", "contracts")
        import yaml

        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        return
    import orjson

    if form is Format.table or (form is Format.auto and sys.stdout.isatty()):
        from rich.console import Console
        from rich.json import JSON

        Console().print(JSON(orjson.dumps(document).decode()))
        return
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")


def _report(changes: list[Any], form: Format, *, what: str, label: str = "breaking") -> int:
    """Print the changes (breaking first); the exit code: 10 when any breaks callers."""
    breaking = [c for c in changes if c.breaking]
    compatible = [c for c in changes if not c.breaking]
    if form is Format.json or (form is Format.auto and not sys.stdout.isatty()):
        import orjson

        record = {
            "compatible": not breaking,
            "breaking": [{"procedure": c.key, "change": c.text} for c in breaking],
            "changes": [{"procedure": c.key, "change": c.text} for c in compatible],
        }
        sys.stdout.write(orjson.dumps(record).decode() + "\n")
    else:
        from rich.console import Console
        from rich.markup import escape

        console = Console(highlight=False)
        for change in breaking:
            console.print(f"[bold red]{label}:[/bold red] {escape(str(change))}", soft_wrap=True)
        for change in compatible:
            console.print(f"[green]compatible:[/green] {escape(str(change))}", soft_wrap=True)
        if breaking:
            console.print(
                f"{len(breaking)} {'breaking change' if label == 'breaking' else 'difference'}(s) {what}",
                soft_wrap=True,
            )
        else:
            verdict = "compatible" if label == "breaking" else "no difference"
            console.print(f"{verdict} {what}" + (f" ({len(compatible)} change(s))" if compatible else ": no change"))
    return int(Exit.CONTRACT_BROKEN) if breaking else 0


def _drift(services: list[Any], form: Format) -> int:
    """Each live instance against the first of its prepath: every difference counts (a rolling deploy)."""
    from almanet._contracts.compat import Change, compare

    groups: dict[str, list[Any]] = {}
    for service in services:
        groups.setdefault(service.prepath or "(no prepath)", []).append(service)
    changes: list[Change] = []
    for _, members in sorted(groups.items()):
        first = members[0]
        base = _document([first], None, "0")
        for other in members[1:]:
            for change in compare(base, _document([other], None, "0")):
                where = f"{_instance(other)} vs {_instance(first)}"
                changes.append(Change(True, change.key, f"{where}: {change.text}"))
    counted = sum(len(m) for m in groups.values())
    return _report(
        changes, form, what=f"between {counted} live instance(s) of {len(groups)} service(s)", label="differs"
    )


def _instance(service: Any) -> str:
    extras = service.extras
    return f"{extras.get('host') or '?'} pid {extras.get('pid') or '?'}"


def asyncapi(
    target: Annotated[
        str | None, text_argument("[TARGET]", "MODULE:ATTR of the services; omitted: the live bus.")
    ] = None,
    output: Annotated[
        Format,
        typer.Option(
            "--output",
            "-o",
            case_sensitive=False,
            metavar="auto|json|yaml|table",
            help="auto: highlighted JSON on a terminal, JSON when piped; yaml; table: the human form anyway.",
        ),
    ] = Format.auto,
    check: Annotated[
        Path | None,
        typer.Option(
            "--check",
            metavar="SAVED",
            help="A saved document: name what changed, exit 10 on a breaking change.",
            show_default=False,
        ),
    ] = None,
    drift: Annotated[
        bool, typer.Option("--drift", help="Compare the live instances of each service with each other.")
    ] = False,
    title: Annotated[
        str | None,
        typer.Option("--title", metavar="TEXT", help="info.title (default: the prepath).", show_default=False),
    ] = None,
    version: Annotated[
        str, typer.Option("--doc-version", metavar="TEXT", help="info.version of the document.")
    ] = "0.0.0",
    timeout: DiscoveryTimeoutOption = DEFAULT_DISCOVERY_TIMEOUT,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    set_output("json" if output is Format.json else "auto")
    positive(timeout, "--timeout")
    if drift and (target is not None or check is not None):
        fail("--drift compares live instances: give it no TARGET and no --check", Exit.BAD_INPUT)
    saved = None
    if check is not None:
        from ._contracts import load_document

        saved = load_document(check)
    if target is not None:
        from ._contracts import described_target

        services = described_target(target)
    else:
        from ._contracts import described_live

        settings = load(config, nsqd)
        with exit_on_errors():
            services = run(described_live(settings, timeout))
        if not services:
            fail(
                f"no live service answered discovery within {timeout:g} s on {', '.join(settings.nsqd)}"
                " (serve one, or pass a MODULE:ATTR target)",
                Exit.TIMEOUT,
                label="not found",
            )
    if drift:
        raise typer.Exit(_drift(services, output))
    document = _document(services, title, version)
    if saved is None:
        _emit(document, output)
        return
    from almanet._contracts.compat import compare

    try:
        changes = compare(saved, document)
    except ValueError as exc:
        fail(f"{check}: {exc}", Exit.BAD_INPUT)
    source = target or "the live bus"
    code = _report(changes, output, what=f"from {check} to {source}")
    if code:
        stderr_console().print(f"{check} no longer describes {source}: callers built on it may break", soft_wrap=True)
    raise typer.Exit(code)
