"""``almanet consume TOPIC``: print messages as they arrive, on an ephemeral channel by default."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ._common import ConfigOption, Exit, NsqdOption, exit_on_errors, fail, load, open_session, run


def register(app: typer.Typer) -> None:
    app.command(
        "consume",
        short_help="Print a topic's messages as they arrive.",
        help=(
            "Print the messages of TOPIC as they arrive (JSON bodies decoded, others as text), one per line."
            " Without --channel it reads on a channel of its own, almanet-cli-<hex8>#ephemeral, which nsqd"
            " deletes when the command ends. Each printed message is finished (FIN)."
            " Exit codes: 0 after -n messages or when stdout is closed (`| head -1`: the messages not"
            " printed go back to nsqd at once), 130 on Ctrl-C/SIGTERM (clean: nothing left in nsqd),"
            " 2 bad input, 4 broker unavailable."
        ),
    )(consume)


def ephemeral_channel() -> str:
    import uuid

    return f"almanet-cli-{uuid.uuid4().hex[:8]}#ephemeral"


def message_line(message: Any, as_json: bool) -> str:
    import orjson

    is_json = not isinstance(message.body, bytes)
    if as_json:
        record: dict[str, Any] = {"id": message.id, "timestamp": message.timestamp, "attempts": message.attempts}
        if is_json:
            record["body"] = message.body
        else:
            record["raw"] = message.raw.decode("utf-8", "replace")
        return orjson.dumps(record).decode()
    if is_json:
        return orjson.dumps(message.body).decode()
    return message.raw.decode("utf-8", "replace")


async def _consume(settings: Any, topic: str, channel: str, count: int | None, as_json: bool) -> tuple[int, bool]:
    """Print until ``count`` messages or a signal; returns (printed, interrupted)."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    printed = 0
    highlight = sys.stdout.isatty()
    console: Any = None
    if highlight:
        from rich.console import Console

        console = Console(highlight=True, soft_wrap=True)
    session = await open_session(settings)
    async with session:
        subscription = session.consume(topic, channel, max_in_flight=1 if count == 1 else 100)
        async with subscription:
            messages = aiter(subscription)
            stopping = asyncio.ensure_future(stop.wait())
            try:
                while count is None or printed < count:
                    receiving = asyncio.ensure_future(anext(messages))
                    await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if not receiving.done():
                        receiving.cancel()
                        break
                    try:
                        message = receiving.result()
                    except StopAsyncIteration:
                        break
                    line = message_line(message, as_json)
                    try:
                        if console is not None:
                            console.print(line, markup=False)
                        else:
                            sys.stdout.write(line + "\n")
                            sys.stdout.flush()
                    except BrokenPipeError:
                        # the reader is gone (`| head -1`): a normal end. This message and those
                        # received after it go back to nsqd now, not after its msg-timeout.
                        await message.rollback()
                        _detach_stdout()
                        break
                    await message.commit()
                    printed += 1
            finally:
                stopping.cancel()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    return printed, stop.is_set()


def _detach_stdout() -> None:
    """Point stdout at /dev/null: Python's final flush would report the broken pipe otherwise."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def consume(
    topic: Annotated[str, typer.Argument(help="NSQ topic name.")],
    channel: Annotated[
        str | None,
        typer.Option("--channel", help="Channel to read on (a durable one keeps messages between runs)."),
    ] = None,
    count: Annotated[int | None, typer.Option("-n", "--count", help="Stop after COUNT messages.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='One JSON object per message: {"id", "timestamp", "attempts", "body"}.')
    ] = False,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    from almanet._nsq.names import check_name

    try:
        check_name(topic, "topic")
        if channel is not None:
            check_name(channel, "channel")
    except ValueError as exc:
        fail(str(exc), Exit.BAD_INPUT)
    if count is not None and count < 1:
        fail("-n must be at least 1", Exit.BAD_INPUT)
    settings = load(config, nsqd)
    with exit_on_errors():
        printed, interrupted = run(_consume(settings, topic, channel or ephemeral_channel(), count, as_json))
    if interrupted:
        fail(f"{printed} message{'' if printed == 1 else 's'} received", Exit.INTERRUPTED, label="stopped")
