"""``almanet consume TOPIC...``: print messages as they arrive, on an ephemeral channel by default.

Like nsq_tail when asked: several topics at once, ``--print-topic``, ``--max-in-flight``, and
``--raw`` (bodies byte for byte, not re-encoded).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ._common import ConfigOption, Exit, JsonOption, NsqdOption, exit_on_errors, fail, load, open_session, run
from ._complete import TopicsArgument
from ._output import Output, OutputOption, set_output
from ._usage import hinted

DEFAULT_MAX_IN_FLIGHT = 100


def register(app: typer.Typer) -> None:
    app.command(
        "consume",
        short_help="Print the messages of one or more topics as they arrive.",
        help=(
            "Print the messages of each TOPIC as they arrive (JSON bodies decoded, others as text), one per line."
            " Without --channel it reads on a channel of its own, almanet-cli-<hex8>#ephemeral, which nsqd"
            " deletes when the command ends. Each printed message is finished (FIN). -o json: one object per"
            ' message {"topic", "id", "timestamp", "attempts", "body" or "raw"}.'
            " Exit codes: 0 after -n messages or when stdout is closed (`| head -1`: the messages not"
            " printed go back to nsqd at once), 130 on Ctrl-C/SIGTERM (clean: nothing left in nsqd),"
            " 2 bad input, 4 broker unavailable."
        ),
        **hinted(),
    )(consume)


def ephemeral_channel() -> str:
    import uuid

    return f"almanet-cli-{uuid.uuid4().hex[:8]}#ephemeral"


def message_line(message: Any, as_json: bool, topic: str | None = None, raw: bool = False) -> bytes:
    """One output line (no newline). ``topic`` set: in the record, or as nsq_tail's ``topic | `` prefix."""
    import orjson

    is_json = not isinstance(message.body, bytes)
    if as_json:
        record: dict[str, Any] = {"id": message.id, "timestamp": message.timestamp, "attempts": message.attempts}
        if topic is not None:
            record = {"topic": topic, **record}
        if is_json and not raw:
            record["body"] = message.body
        else:
            record["raw"] = message.raw.decode("utf-8", "replace")
        return orjson.dumps(record)
    line: bytes
    if raw or not is_json:
        line = message.raw
    else:
        line = orjson.dumps(message.body)
    return (topic.encode() + b" | " + line) if topic is not None else line


async def _consume(
    settings: Any,
    topics: list[str],
    channel: str,
    count: int | None,
    as_json: bool,
    *,
    print_topic: bool,
    max_in_flight: int,
    raw: bool,
    max_attempts: int | None = None,
    dead_letter_topic: str | None = None,
) -> tuple[int, bool]:
    """Print until ``count`` messages or a signal; returns (printed, interrupted)."""
    import asyncio
    import contextlib
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    printed = 0
    console: Any = None
    if sys.stdout.isatty() and not raw and not as_json:
        from rich.console import Console

        console = Console(highlight=True, soft_wrap=True)
    out = sys.stdout.buffer
    arrived: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def pump(topic: str, subscription: Any) -> None:
        async for message in subscription:
            await arrived.put((topic, message))

    session = await open_session(settings)
    async with session, contextlib.AsyncExitStack() as stack:
        share = max(1, max_in_flight // len(topics))
        pumps = []
        for topic in topics:
            subscription = await stack.enter_async_context(
                session.consume(
                    topic, channel, max_in_flight=share, max_attempts=max_attempts, dead_letter_topic=dead_letter_topic
                )
            )
            pumps.append(asyncio.ensure_future(pump(topic, subscription)))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while count is None or printed < count:
                receiving = asyncio.ensure_future(arrived.get())
                await asyncio.wait({receiving, stopping, *pumps}, return_when=asyncio.FIRST_COMPLETED)
                if not receiving.done():
                    receiving.cancel()
                    for done in pumps:
                        if done.done() and not done.cancelled() and done.exception() is not None:
                            raise done.exception()  # type: ignore[misc]
                    if stop.is_set() or all(p.done() for p in pumps):
                        break
                    continue
                topic, message = receiving.result()
                line = message_line(message, as_json, topic if print_topic or as_json else None, raw)
                try:
                    if console is not None:
                        console.print(line.decode("utf-8", "replace"), markup=False)
                    else:
                        out.write(line + b"\n")
                        out.flush()
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
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            # what arrived but was not printed goes back to nsqd now, not after its timeout
            while not arrived.empty():
                await arrived.get_nowait()[1].rollback()
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
    topics: TopicsArgument,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel", metavar="CHANNEL", help="Channel to read on (a durable one keeps messages between runs)."
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option("-n", "--count", metavar="COUNT", help="Stop after COUNT messages (all topics).")
    ] = None,
    print_topic: Annotated[
        bool, typer.Option("--print-topic", help="Start each line with its topic: 'TOPIC | BODY' (as nsq_tail).")
    ] = False,
    max_in_flight: Annotated[
        int | None,
        typer.Option(
            "--max-in-flight",
            metavar="N",
            help=f"Messages nsqd may send ahead, shared by the topics (default {DEFAULT_MAX_IN_FLIGHT}; 1 with -n 1).",
            show_default=False,
        ),
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Bodies exactly as they are, not decoded and re-encoded.")] = False,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts", metavar="N", help="A message delivered more than N times is not printed again.", min=1
        ),
    ] = None,
    dead_letter_topic: Annotated[
        str | None,
        typer.Option(
            "--dead-letter-topic",
            metavar="TOPIC",
            help="With --max-attempts: such a message is published to TOPIC (with its attempts), then finished.",
        ),
    ] = None,
    output: OutputOption = Output.auto,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    from almanet._nsq.names import check_name

    mode = set_output(output, legacy_json=as_json)
    try:
        for topic in topics:
            check_name(topic, "topic")
        if channel is not None:
            check_name(channel, "channel")
        if dead_letter_topic is not None:
            check_name(dead_letter_topic, "topic")
    except ValueError as exc:
        fail(str(exc), Exit.BAD_INPUT)
    if dead_letter_topic is not None and max_attempts is None:
        fail(
            "--dead-letter-topic needs --max-attempts N (after how many deliveries a message goes there)",
            Exit.BAD_INPUT,
        )
    if count is not None and count < 1:
        fail("-n must be at least 1", Exit.BAD_INPUT)
    if max_in_flight is not None and not 1 <= max_in_flight <= 2500:
        fail("--max-in-flight must be between 1 and 2500 (nsqd's default --max-rdy-count)", Exit.BAD_INPUT)
    topics = list(dict.fromkeys(topics))
    if max_in_flight is None:
        max_in_flight = 1 if count == 1 else DEFAULT_MAX_IN_FLIGHT
    if max_in_flight < len(topics):
        max_in_flight = len(topics)
    settings = load(config, nsqd)
    with exit_on_errors():
        printed, interrupted = run(
            _consume(
                settings,
                topics,
                channel or ephemeral_channel(),
                count,
                mode is Output.json,
                print_topic=print_topic,
                max_in_flight=max_in_flight,
                raw=raw,
                max_attempts=max_attempts,
                dead_letter_topic=dead_letter_topic,
            )
        )
    if interrupted:
        fail(f"{printed} message{'' if printed == 1 else 's'} received", Exit.INTERRUPTED, label="stopped")
