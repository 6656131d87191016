"""``almanet call URI [PAYLOAD]``: call a procedure once and print its result."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._common import (
    ConfigOption,
    Exit,
    JsonOption,
    NsqdOption,
    TimeoutOption,
    check_uri,
    exit_on_errors,
    fail,
    load,
    open_session,
    positive,
    print_json,
    read_payload,
)
from ._complete import UriArgument
from ._output import Output, OutputOption, set_output
from ._usage import hinted, text_argument

PAYLOAD_HELP = "JSON payload, @file.json, or - for stdin (read from stdin too when omitted and stdin is piped)."
PayloadArgument = Annotated[str | None, text_argument("[PAYLOAD]", PAYLOAD_HELP)]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="On stderr: the nsqd used, topic, reply topic, time to publish and to the reply."
    ),
]
ExplainOption = Annotated[
    bool,
    typer.Option(
        "--explain",
        help="Dry run: print the topic, channel, body and reply topic, and the same call as nsq_tail/to_nsq/curl"
        " commands; nothing is sent.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command(
        "call",
        short_help="Call a procedure and print its result.",
        help=(
            "Call a procedure and print its result as JSON. PAYLOAD is JSON text, @file.json, or - for stdin;"
            " omitted, it is read from a piped stdin (empty: null)."
            " A call nothing serves fails at once (rpc.fail_fast in almanet.toml); a timeout says why."
            " Exit codes: 0 ok, 1 remote error, 2 bad input, 3 timeout (reason unknown), 4 broker unavailable,"
            " 5 timeout: nothing serves URI, 6 timeout: queued behind other invocations, 7 timeout: delivered and"
            " still running, 8 timeout: handled but the reply was lost or late."
        ),
        **hinted(),
    )(call)


async def _call(settings: Any, uri: str, payload: Any, timeout: float, timeline: Any) -> Any:
    session = await open_session(settings)
    async with session:
        trace = timeline.joined_now() if timeline is not None else None
        return (await session.call(uri, payload, timeout=timeout, trace=trace)).payload


def call(
    uri: UriArgument,
    payload: PayloadArgument = None,
    timeout: TimeoutOption = None,
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

    seconds = timeout or settings.call_timeout
    if explain:
        show_explain(uri, value, settings, multi=False, timeout=seconds)
        return
    from almanet._wire.errors import rpc_error

    marks = timeline(verbose)
    with exit_on_errors(timeout_message=f"no service answered {uri} within {seconds:g}s (is one serving it?)", uri=uri):
        try:
            result = run_traced(_call(settings, uri, value, seconds, marks), marks, settings)
        except rpc_error as exc:
            args = ", ".join(repr(a) for a in exc.args)
            fail(
                f"{uri} raised {exc.name}({args})",
                Exit.REMOTE_ERROR,
                label="remote error",
                name=exc.name,
                args=list(exc.args),
                uri=uri,
            )
    print_json(result)
