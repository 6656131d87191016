"""``almanet call URI [PAYLOAD]``: call a procedure once and print its result."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._common import ConfigOption, Exit, NsqdOption, fail, load, parse_json_argument, print_json, run


def register(app: typer.Typer) -> None:
    app.command(
        "call",
        help=(
            "Call a procedure and print its result as JSON. PAYLOAD is JSON text, @file.json, or - for stdin."
            " Exit codes: 0 ok, 1 remote error, 2 bad input, 3 timeout, 4 broker unavailable."
        ),
    )(call)


async def _call(addresses: tuple[str, ...], uri: str, payload: Any, timeout: float, connect_timeout: float) -> Any:
    import almanet
    from almanet._nsq.options import ConnectionOptions

    session = almanet.new_session(*addresses, options=ConnectionOptions(connect_timeout=connect_timeout))
    async with session:
        return (await session.call(uri, payload, timeout=timeout)).payload


def call(
    uri: Annotated[str, typer.Argument(help="Procedure URI, e.g. net.example.greeting.")],
    payload: Annotated[str | None, typer.Argument(help="JSON payload, @file.json, or - for stdin.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", "-t", help="Seconds to wait for the reply.")] = None,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    from almanet._wire import check_uri

    try:
        check_uri(uri)
    except ValueError as exc:
        fail(str(exc), Exit.BAD_INPUT)
    value = parse_json_argument(payload) if payload is not None else None
    settings = load(config, nsqd)
    if not settings.nsqd:
        fail("no nsqd address configured: set nsq.nsqd in almanet.toml or ALMANET_NSQD", Exit.BAD_INPUT)
    if timeout is not None and timeout <= 0:
        fail("--timeout must be positive", Exit.BAD_INPUT)
    from almanet._errors import broker_error, invalid_argument, rpc_error

    try:
        result = run(_call(settings.nsqd, uri, value, timeout or settings.call_timeout, settings.connect_timeout))
    except rpc_error as exc:
        args = ", ".join(repr(a) for a in exc.args)
        fail(f"{uri} raised {exc.name}({args})", Exit.REMOTE_ERROR, label="remote error")
    except TimeoutError:
        fail(
            f"no service answered {uri} within {timeout or settings.call_timeout:g}s (is one serving it?)",
            Exit.TIMEOUT,
            label="timeout",
        )
    except invalid_argument as exc:
        fail(str(exc), Exit.BAD_INPUT)
    except broker_error as exc:
        fail(str(exc), Exit.BROKER, label="broker unavailable")
    print_json(result)
