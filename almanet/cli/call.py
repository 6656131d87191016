"""``almanet call URI [PAYLOAD]``: call a procedure once and print its result."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._common import (
    ConfigOption,
    Exit,
    NsqdOption,
    TimeoutOption,
    check_uri,
    exit_on_errors,
    fail,
    load,
    open_session,
    parse_json_argument,
    positive,
    print_json,
    run,
)
from ._complete import UriArgument


def register(app: typer.Typer) -> None:
    app.command(
        "call",
        short_help="Call a procedure and print its result.",
        help=(
            "Call a procedure and print its result as JSON. PAYLOAD is JSON text, @file.json, or - for stdin."
            " A call nothing serves fails at once (rpc.fail_fast in almanet.toml); a timeout says why."
            " Exit codes: 0 ok, 1 remote error, 2 bad input, 3 timeout (reason unknown), 4 broker unavailable,"
            " 5 timeout: nothing serves URI, 6 timeout: queued behind other invocations, 7 timeout: delivered and"
            " still running, 8 timeout: handled but the reply was lost or late."
        ),
    )(call)


async def _call(settings: Any, uri: str, payload: Any, timeout: float) -> Any:
    session = await open_session(settings)
    async with session:
        return (await session.call(uri, payload, timeout=timeout)).payload


def call(
    uri: UriArgument,
    payload: Annotated[str | None, typer.Argument(help="JSON payload, @file.json, or - for stdin.")] = None,
    timeout: TimeoutOption = None,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    check_uri(uri)
    positive(timeout, "--timeout")
    value = parse_json_argument(payload) if payload is not None else None
    settings = load(config, nsqd)
    seconds = timeout or settings.call_timeout
    from almanet._errors import rpc_error

    with exit_on_errors(timeout_message=f"no service answered {uri} within {seconds:g}s (is one serving it?)"):
        try:
            result = run(_call(settings, uri, value, seconds))
        except rpc_error as exc:
            args = ", ".join(repr(a) for a in exc.args)
            fail(f"{uri} raised {exc.name}({args})", Exit.REMOTE_ERROR, label="remote error")
    print_json(result)
