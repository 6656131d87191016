"""``almanet multicall URI [PAYLOAD]``: call every channel serving a procedure, print every reply."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._common import (
    ConfigOption,
    NsqdOption,
    check_uri,
    exit_on_errors,
    load,
    open_session,
    parse_json_argument,
    positive,
    print_json,
    run,
)
from ._complete import UriArgument

DEFAULT_MULTICALL_TIMEOUT = 3.0


def register(app: typer.Typer) -> None:
    app.command(
        "multicall",
        short_help="Call every channel serving a procedure; print all replies.",
        help=(
            "Call a procedure on every channel serving it and print the list of replies, collected until"
            ' --timeout; a remote error is an item {"error": name, "args": [...]}.'
            " Exit codes: 0 at least one reply, 2 bad input, 3 no reply, 4 broker unavailable."
        ),
    )(multicall)


def reply_item(reply: Any) -> Any:
    """A successful reply's payload, or ``{"error": name, "args": [...]}``."""
    from almanet._errors import rpc_error

    if isinstance(reply, rpc_error):
        return {"error": reply.name, "args": list(reply.args)}
    return reply.payload


async def _multicall(settings: Any, uri: str, payload: Any, timeout: float) -> list[Any]:
    session = await open_session(settings)
    async with session:
        replies = await session.multicall(uri, payload, timeout=timeout)
    if not replies:
        raise TimeoutError
    return [reply_item(r) for r in replies]


def multicall(
    uri: UriArgument,
    payload: Annotated[str | None, typer.Argument(help="JSON payload, @file.json, or - for stdin.")] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", "-t", help="Seconds to collect replies (the command always waits this long).")
    ] = DEFAULT_MULTICALL_TIMEOUT,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    check_uri(uri)
    positive(timeout, "--timeout")
    value = parse_json_argument(payload) if payload is not None else None
    settings = load(config, nsqd)
    with exit_on_errors(timeout_message=f"no service answered {uri} within {timeout:g}s (is one serving it?)"):
        replies = run(_multicall(settings, uri, value, timeout))
    print_json(replies)
