"""``almanet multicall URI [PAYLOAD]``: call every channel serving a procedure, print every reply."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._common import (
    ConfigOption,
    JsonOption,
    NsqdOption,
    check_uri,
    exit_on_errors,
    load,
    open_session,
    positive,
    print_json,
    read_payload,
)
from ._complete import UriArgument
from ._output import Output, OutputOption, set_output
from ._usage import hinted
from .call import ExplainOption, PayloadArgument, VerboseOption

DEFAULT_MULTICALL_TIMEOUT = 3.0


def register(app: typer.Typer) -> None:
    app.command(
        "multicall",
        short_help="Call every channel serving a procedure; print all replies.",
        help=(
            "Call a procedure on every channel serving it and print the list of replies, collected until"
            ' --timeout; a remote error is an item {"error": name, "args": [...]}. PAYLOAD as for call.'
            " Exit codes: 0 at least one reply, 2 bad input, 3 no reply, 4 broker unavailable, 5 nothing serves URI."
        ),
        **hinted(),
    )(multicall)


def reply_item(reply: Any) -> Any:
    """A successful reply's payload, or ``{"error": name, "args": [...]}``."""
    from almanet._wire.errors import rpc_error

    if isinstance(reply, rpc_error):
        return {"error": reply.name, "args": list(reply.args)}
    return reply.payload


async def _multicall(settings: Any, uri: str, payload: Any, timeout: float, timeline: Any) -> list[Any]:
    session = await open_session(settings)
    async with session:
        trace = timeline.joined_now() if timeline is not None else None
        replies = await session.multicall(uri, payload, timeout=timeout, trace=trace)
        if not replies:
            await _refuse_unserved(session, settings, uri)
            raise TimeoutError
    return [reply_item(r) for r in replies]


async def _refuse_unserved(session: Any, settings: Any, uri: str) -> None:
    """No reply: when no nsqd has a subscriber for ``uri``, say so with call's exit 5 (not served).

    The library's multicall returns ``[]`` for an unserved URI (nothing could answer); the CLI
    tells that apart from "served, but no reply in time" (exit 3) with one more ``/stats`` read.
    """
    if not settings.fail_fast:
        return
    from almanet._broker.stats import StatsReader
    from almanet._calling.liveness import not_served_error
    from almanet._wire.protocol import rpc_topic

    broker = session.broker
    reader = StatsReader(lambda: broker.addresses, settings.nsqd_http, broker.lookupd)
    topic = rpc_topic(uri)
    snapshot = await reader.snapshot(topic)
    facts = snapshot.topics.get(topic)
    if snapshot.complete and (facts is None or not facts.served):
        raise not_served_error(uri, await reader.snapshot(clients=False))


def multicall(
    uri: UriArgument,
    payload: PayloadArgument = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            "-t",
            metavar="SECONDS",
            help="Seconds to collect replies (the command always waits this long).",
        ),
    ] = DEFAULT_MULTICALL_TIMEOUT,
    output: OutputOption = Output.auto,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
    explain: ExplainOption = False,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    set_output(output, legacy_json=as_json)
    check_uri(uri)
    positive(timeout, "--timeout")
    value = read_payload(payload)
    settings = load(config, nsqd)
    from ._explain import run_traced, show_explain, timeline

    if explain:
        show_explain(uri, value, settings, multi=True, timeout=timeout)
        return
    marks = timeline(verbose)
    with exit_on_errors(timeout_message=f"no service answered {uri} within {timeout:g}s (is one serving it?)", uri=uri):
        replies = run_traced(_multicall(settings, uri, value, timeout, marks), marks, settings)
    print_json(replies)
