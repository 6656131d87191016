"""``almanet services``: the live service instances, joined with nsqd's /stats for each procedure."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import typer

from ._common import (
    ConfigOption,
    DiscoveryTimeoutOption,
    Exit,
    JsonOption,
    NsqdOption,
    discover,
    exit_on_errors,
    fail,
    load,
    open_session,
    run,
)
from ._output import Output, OutputOption, set_output, wants_json
from ._usage import hinted

DEFAULT_DISCOVERY_TIMEOUT = 1.0


def register(app: typer.Typer) -> None:
    app.command(
        "services",
        short_help="List live services with nsqd stats per procedure.",
        help=(
            "List the live service instances (discovery multicall) and, for each procedure, nsqd's subscribers,"
            " depth and in-flight count on every nsqd (found through nsqlookupd when configured). A procedure"
            " with no subscriber (red) or a backlog (yellow) stands out; RPC topics nobody serves are listed too"
            " (`almanet purge` drops their backlog). 'stale' counts invocations dropped unrun because their"
            " caller had given up (deadline or stale_after)."
            " Exit codes: 0 ok, 3 no service answered, 4 a broker or its HTTP API unavailable."
        ),
        **hinted(),
    )(services)


async def nsqd_http_addresses(settings: Any) -> tuple[list[str], list[str]]:
    """nsqd HTTP addresses to ask for /stats (from lookupd /nodes when configured), and errors."""
    from almanet._nsq.http import LookupdHTTPClient, NSQHTTPError, producer_address

    if not settings.lookupd_http:
        return list(settings.nsqd_http), []
    found: list[str] = []
    errors: list[str] = []
    for address in settings.lookupd_http:
        try:
            nodes = await LookupdHTTPClient(address, timeout=settings.connect_timeout).nodes()
        except NSQHTTPError as exc:
            errors.append(str(exc))
            continue
        found.extend(a for a in (producer_address(n) for n in nodes) if a not in found)
    if settings.sources.get("nsq.nsqd_http", "default") not in ("default", "derived:nsq.nsqd"):
        found.extend(a for a in settings.nsqd_http if a not in found)
    return found, errors


async def read_every(addresses: list[str], read: Callable[[str], Awaitable[Any]], errors: list[str]) -> dict[str, Any]:
    """``read(address)`` for every nsqd at once: what each answered; an HTTP failure goes to ``errors``."""
    import asyncio

    from almanet._nsq.http import NSQHTTPError

    results = await asyncio.gather(*(read(a) for a in addresses), return_exceptions=True)
    found: dict[str, Any] = {}
    for address, result in zip(addresses, results, strict=True):
        if isinstance(result, NSQHTTPError):
            errors.append(str(result))
        elif isinstance(result, BaseException):
            raise result
        else:
            found[address] = result
    return found


async def _gather(settings: Any, timeout: float) -> dict[str, Any]:
    session = await open_session(settings)
    async with session:
        instances = await discover(session, timeout)
    stats, errors = await nsqd_stats(settings)
    return build_report(instances, stats, errors)


async def nsqd_stats(settings: Any) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """/stats of every nsqd (by HTTP address), and one error line per nsqd or lookupd that failed."""
    from almanet._nsq.http import NsqdHTTPClient

    http, errors = await nsqd_http_addresses(settings)
    stats = await read_every(http, lambda a: NsqdHTTPClient(a, timeout=settings.connect_timeout).stats(), errors)
    return stats, errors


def _topic_stats(stats: dict[str, Any], topic: str, channels: set[str] | None) -> dict[str, Any]:
    """Sums over ``channels`` of ``topic`` (all of them when None) on one nsqd.

    A logical channel ``RPC`` is two NSQ channels: ``RPC#ephemeral`` (ours) and ``RPC`` (0.7.0's).
    """
    for entry in stats.get("topics") or []:
        if entry.get("topic_name") != topic:
            continue
        found = [c for c in entry.get("channels") or [] if channels is None or c.get("channel_name") in channels]
        if not found:
            # No such channel: invocations wait in the topic until a subscriber comes.
            return {"topic": True, "subscribers": 0, "depth": int(entry.get("depth") or 0), "in_flight": 0}
        return {
            "topic": True,
            "subscribers": sum(int(c.get("client_count") or len(c.get("clients") or [])) for c in found),
            "depth": sum(int(c.get("depth") or 0) for c in found),
            "in_flight": sum(int(c.get("in_flight_count") or 0) for c in found),
        }
    return {"topic": False, "subscribers": 0, "depth": 0, "in_flight": 0}


def build_report(instances: list[Any], stats: dict[str, dict[str, Any]], errors: list[str]) -> dict[str, Any]:
    """Instances (``_wire.Instance``) + per-procedure nsqd numbers; pure, so it is tested without processes."""
    from almanet._wire.protocol import DEFAULT_CHANNEL, RPC_PREFIX, channel_name, is_internal_topic

    now = time.time()
    procedures: dict[tuple[str, str], dict[str, Any]] = {}
    rows = []
    for instance in instances:
        uris = []
        for uri, channel in instance.served:
            uris.append(uri)
            entry = procedures.setdefault((uri, channel), {"uri": uri, "channel": channel, "instances": [], "stale": 0})
            entry["instances"].append(instance.client)
            entry["stale"] += instance.stale.get(uri, 0)
        started = instance.started_at
        rows.append(
            {
                "instance": instance.client,
                "prepath": instance.prepath,
                "host": instance.host,
                "pid": instance.pid,
                "started_at": started,
                "uptime": max(0.0, now - started) if started is not None else None,
                "procedures": uris,
            }
        )
    # RPC topics that nsqd knows but no live instance serves: callers of these wait for nothing.
    served_topics = {RPC_PREFIX + uri for uri, _ in procedures}
    for node in stats.values():
        for entry in node.get("topics") or []:
            name = entry.get("topic_name") or ""
            if name.startswith(RPC_PREFIX) and not is_internal_topic(name) and name not in served_topics:
                served_topics.add(name)
                uri = name[len(RPC_PREFIX) :]
                procedures[(uri, DEFAULT_CHANNEL)] = {
                    "uri": uri,
                    "channel": DEFAULT_CHANNEL,
                    "instances": [],
                    "stale": 0,
                    "orphan": True,
                }
    for (uri, channel), entry in procedures.items():
        topic = RPC_PREFIX + uri
        names: set[str] | None = None  # an orphan topic: whatever listens on any channel counts
        if not entry.pop("orphan", False):
            names = {channel}
            try:
                names.add(channel_name(channel))
            except ValueError:
                pass
        per_nsqd = [{"nsqd": address, **_topic_stats(node, topic, names)} for address, node in stats.items()]
        entry["nsqd"] = per_nsqd
        if not stats:  # no /stats could be read: unknown, not zero
            entry.update(subscribers=None, depth=None, in_flight=None, problems=["nsqd stats unknown"])
            if entry["stale"]:
                entry["problems"].append(f"{entry['stale']} stale invocations dropped unrun")
            continue
        entry["subscribers"] = sum(n["subscribers"] for n in per_nsqd)
        entry["depth"] = sum(n["depth"] for n in per_nsqd)
        entry["in_flight"] = sum(n["in_flight"] for n in per_nsqd)
        problems = []
        if stats and any(n["subscribers"] == 0 for n in per_nsqd):
            where = [n["nsqd"] for n in per_nsqd if n["subscribers"] == 0]
            problems.append(f"no subscriber on {', '.join(where)}")
        if entry["depth"] > 0:
            problems.append(f"{entry['depth']} invocations waiting")
            if entry["subscribers"] == 0:
                problems.append(f"`almanet purge {uri}` drops them")
        if entry["stale"]:
            problems.append(f"{entry['stale']} stale invocations dropped unrun")
        entry["problems"] = problems
    ordered = sorted(procedures.values(), key=lambda p: (p["uri"], p["channel"]))
    return {"instances": rows, "procedures": ordered, "nsqd": sorted(stats), "errors": errors}


def uptime(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _style(entry: dict[str, Any]) -> str | None:
    if any(n["subscribers"] == 0 for n in entry["nsqd"]):
        return "red"
    return "yellow" if entry["depth"] else None


def _print_narrow(console: Any, title: Any, entries: list[dict[str, Any]]) -> None:
    """A terminal too narrow for the table: each URI whole on its own line (a user copies it), its
    figures on the next, rather than a URI cut or folded inside a cell."""
    from rich.text import Text

    console.print(Text(str(title), style="italic"))
    for entry in entries:
        style = _style(entry) or ""
        console.print(Text(entry["uri"], style=f"bold {style}".strip()), soft_wrap=True)
        figures = [f"channel {entry['channel']}", f"instances {len(entry['instances'])}"]
        for key, label in (
            ("subscribers", "subscribers"),
            ("depth", "depth"),
            ("in_flight", "in-flight"),
            ("stale", "stale"),
        ):
            figures.append(f"{label} {'unknown' if entry[key] is None else entry[key]}")
        console.print(Text("  " + " · ".join(figures), style=style), soft_wrap=True)


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = Console()
    table = Table(title="live service instances", title_justify="left")
    for column in ("prepath", "instance", "host", "pid", "uptime", "procedures"):
        table.add_column(column, overflow="fold")
    for row in report["instances"]:
        table.add_row(
            Text(row["prepath"] or "-"),
            row["instance"][:8],
            Text(str(row["host"] or "?")),
            str(row["pid"] or "?"),
            uptime(row["uptime"]),
            str(len(row["procedures"])),
        )
    console.print(table)
    where = ", ".join(report["nsqd"]) or "(stats unknown)"
    procedures = Table(title=f"procedures on nsqd {where}", title_justify="left")
    for column in ("procedure", "channel", "instances", "subscribers", "depth", "in-flight", "stale"):
        procedures.add_column(column, justify="right" if column not in ("procedure", "channel") else "left")
    for entry in report["procedures"]:
        style = _style(entry)
        procedures.add_row(
            entry["uri"],
            entry["channel"],
            str(len(entry["instances"])),
            *("unknown" if entry[k] is None else str(entry[k]) for k in ("subscribers", "depth", "in_flight", "stale")),
            style=style,
        )
    if console.measure(procedures, options=console.options.update_width(100_000)).maximum <= console.width:
        console.print(procedures)
    else:
        _print_narrow(console, procedures.title, report["procedures"])
    for entry in report["procedures"]:
        if entry["problems"]:
            color = "red" if any("no subscriber" in p for p in entry["problems"]) else "yellow"
            text = escape(f"{entry['uri']}: {'; '.join(entry['problems'])}")
            console.print(f"[{color}]{text}[/{color}]", soft_wrap=True)


def services(
    output: OutputOption = Output.auto,
    as_json: JsonOption = False,
    timeout: DiscoveryTimeoutOption = DEFAULT_DISCOVERY_TIMEOUT,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    from rich.markup import escape

    from ._common import positive, print_json, stderr_console

    set_output(output, legacy_json=as_json)
    positive(timeout, "--timeout")
    settings = load(config, nsqd)
    with exit_on_errors():
        report = run(_gather(settings, timeout))
    if wants_json():
        print_json(report)
    else:
        render(report)
    from ._output import error_json, json_errors

    for error in report["errors"]:
        if json_errors():
            error_json("warning", error, int(Exit.BROKER))
        else:
            stderr_console().print(f"[bold red]warning:[/bold red] {escape(error)}", soft_wrap=True)
    if report["errors"]:
        raise typer.Exit(int(Exit.BROKER))
    if not report["instances"]:
        fail(f"no service answered discovery within {timeout:g}s", Exit.TIMEOUT, label="timeout")
