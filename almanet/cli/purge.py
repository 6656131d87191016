"""``almanet purge URI`` / ``almanet purge --stale``: drop invocations nobody will answer in time.

``--stale`` also deletes reply topics that hold replies nobody reads (a gone caller's: ours
with no channel, 0.7.0's with a channel no client is on) and an unread cancel topic.
Through nsqd's HTTP API, on every nsqd (nsq.nsqd_http, or those nsqlookupd lists): a topic with no
subscriber on an nsqd is deleted there (with any channel a gone 0.7.0 instance left); on a topic
that is served, the waiting invocations are emptied out of it and its live channels, and channels
nobody listens to are deleted. It shows the plan and asks first, unless ``--yes``.
"""

from __future__ import annotations

import sys
import urllib.parse
from typing import Annotated, Any

import typer

from ._common import ConfigOption, Exit, JsonOption, NsqdOption, check_uri, exit_on_errors, fail, load, print_json, run
from ._output import Output, OutputOption, set_output, wants_json
from ._usage import hinted, text_argument


def register(app: typer.Typer) -> None:
    app.command(
        "purge",
        short_help="Drop the invocations waiting for a procedure (or for every unserved one).",
        help=(
            "Drop what waits in nsqd for URI (or, with --stale, for every RPC topic that has a backlog and no"
            " subscriber, and reply topics whose caller has gone), through nsqd's HTTP API on every nsqd:"
            " a topic nobody subscribes to is deleted, a"
            " served one is emptied. Shows the plan and asks first unless --yes."
            " Exit codes: 0 done (or nothing to do, or declined), 2 bad input or no answer to the question,"
            " 4 an nsqd HTTP API unavailable."
        ),
        **hinted(),
    )(purge)


def _plan_topic(entry: dict[str, Any], stale_only: bool) -> list[tuple[str, str | None, int]]:
    """(action, channel, messages) for one topic on one nsqd: delete it, or empty/delete channels."""
    channels = entry.get("channels") or []
    waiting = int(entry.get("depth") or 0) + sum(int(c.get("depth") or 0) for c in channels)
    served = any(int(c.get("client_count") or 0) for c in channels)
    if not served:
        return [("delete topic", None, waiting)] if waiting or not stale_only else []
    if stale_only:
        return []
    steps: list[tuple[str, str | None, int]] = []
    if int(entry.get("depth") or 0):
        steps.append(("empty topic", None, int(entry.get("depth") or 0)))
    for channel in channels:
        name, depth = channel.get("channel_name") or "", int(channel.get("depth") or 0)
        if not int(channel.get("client_count") or 0):
            steps.append(("delete channel", name, depth))
        elif depth:
            steps.append(("empty channel", name, depth))
    return steps


async def _plan(settings: Any, uri: str | None) -> tuple[list[tuple[str, str, str, str | None, int]], list[str]]:
    """Every step on every nsqd: (nsqd http, topic, action, channel, messages dropped), and errors."""
    from almanet._nsq.http import request_json
    from almanet._wire.protocol import CANCEL_TOPIC, REPLY_PREFIX, RPC_PREFIX, is_internal_topic

    _LEFTOVERS = (REPLY_PREFIX, CANCEL_TOPIC)

    from .services import nsqd_http_addresses, read_every

    http, errors = await nsqd_http_addresses(settings)
    query = {"format": "json", "include_mem": "false", "include_clients": "false"}
    if uri is not None:
        query["topic"] = RPC_PREFIX + uri
    path = "/stats?" + urllib.parse.urlencode(query)
    found = await read_every(http, lambda a: request_json(a, path, timeout=settings.connect_timeout), errors)
    steps = []
    for address, result in found.items():
        for entry in result.get("topics") or []:
            topic = entry.get("topic_name") or ""
            if not topic.startswith(RPC_PREFIX):
                continue
            # --stale also takes replies nobody will read (a gone caller's reply topic) and cancels
            # no service reads; discovery topics, and internal topics named as a URI, are never purged
            if is_internal_topic(topic) and (uri is not None or not topic.startswith(_LEFTOVERS)):
                continue
            if uri is not None and topic != RPC_PREFIX + uri:
                continue
            for action, channel, count in _plan_topic(entry, stale_only=uri is None):
                steps.append((address, topic, action, channel, count))
    return steps, errors


async def _apply(settings: Any, steps: list[tuple[str, str, str, str | None, int]]) -> list[str | None]:
    """Each step in order; its error, or None when nsqd did it."""
    from almanet._nsq.http import NSQHTTPError, request_json

    paths = {
        "delete topic": "/topic/delete",
        "empty topic": "/topic/empty",
        "delete channel": "/channel/delete",
        "empty channel": "/channel/empty",
    }
    errors: list[str | None] = []
    for address, topic, action, channel, _ in steps:
        query = {"topic": topic} if channel is None else {"topic": topic, "channel": channel}
        path = f"{paths[action]}?{urllib.parse.urlencode(query)}"
        try:
            await request_json(address, path, method="POST", timeout=settings.connect_timeout)
        except NSQHTTPError as exc:
            errors.append(str(exc))
        else:
            errors.append(None)
    return errors


def _as_dict(step: tuple[str, str, str, str | None, int]) -> dict[str, Any]:
    address, topic, action, channel, count = step
    return {"nsqd": address, "topic": topic, "action": action, "channel": channel, "waiting": count}


def _describe(step: tuple[str, str, str, str | None, int]) -> str:
    address, topic, action, channel, count = step
    what = f"{topic}" if channel is None else f"{topic}/{channel}"
    noun = "invocation" if count == 1 else "invocations"
    return f"{action} {what} on {address} ({count} {noun} waiting)"


def _warn(console: Any, label: str, text: str) -> None:
    """A warning or failed step on stderr: one JSON object each with ``-o json``, as every error."""
    from rich.markup import escape

    from ._output import error_json, json_errors

    if json_errors():
        error_json(label, text, int(Exit.BROKER))
    else:
        console.print(f"[bold red]{label}:[/bold red] {escape(text)}", soft_wrap=True)


def purge(
    uri: Annotated[str | None, text_argument("[URI]", "The procedure whose waiting invocations to drop.")] = None,
    stale: Annotated[
        bool, typer.Option("--stale", help="Every RPC topic with a backlog and no subscriber, instead of URI.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
    output: OutputOption = Output.auto,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:

    from ._common import stderr_console

    set_output(output, legacy_json=as_json)
    if (uri is None) == (not stale):
        fail("give a URI, or --stale for every RPC topic with a backlog and no subscriber (not both)", Exit.BAD_INPUT)
    if uri is not None:
        check_uri(uri)
    settings = load(config, nsqd)
    console = stderr_console()
    with exit_on_errors():
        steps, errors = run(_plan(settings, uri))
    for error in errors:
        _warn(console, "warning", error)
    as_json = wants_json()
    if not steps:
        if as_json:
            print_json({"steps": [], "dropped": 0})
        elif uri:
            print(f"nothing to purge (_rpc_.{uri} holds nothing on the nsqd read)")
        else:
            print("nothing to purge: no RPC topic has a backlog without a subscriber")
        raise typer.Exit(int(Exit.BROKER) if errors else 0)
    if not as_json:
        for step in steps:
            print(_describe(step))
    if not yes:
        sys.stderr.write("purge? [y/N] ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            fail("no answer on stdin: pass --yes to purge without asking", Exit.BAD_INPUT)
        if line.strip().lower() not in ("y", "yes"):
            if as_json:
                print_json({"steps": [_as_dict(s) for s in steps], "dropped": 0, "declined": True})
            else:
                print("nothing purged")
            return
    with exit_on_errors():
        outcome = run(_apply(settings, steps))
    failed = [e for e in outcome if e is not None]
    dropped = sum(s[4] for s, e in zip(steps, outcome, strict=True) if e is None)
    if as_json:
        done = [{**_as_dict(s), "error": e} for s, e in zip(steps, outcome, strict=True)]
        print_json({"steps": done, "dropped": dropped})
    else:
        print(f"purged: {len(steps) - len(failed)} of {len(steps)} steps done, {dropped} invocations dropped")
    for error in failed:
        _warn(console, "error", error)
    if failed or errors:
        raise typer.Exit(int(Exit.BROKER))
