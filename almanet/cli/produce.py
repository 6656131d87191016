"""``almanet produce TOPIC [MESSAGE]``: publish one JSON message, or one per line (MPUB batches).

Like to_nsq when asked: ``--raw`` sends each line as bytes, ``--delimiter`` splits on another
byte, ``--rate`` paces the messages per second. The JSON check and the progress bar are the default.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    ConfigOption,
    Exit,
    JsonOption,
    NsqdOption,
    exit_on_errors,
    fail,
    load,
    open_session,
    parse_json_argument,
    run,
)
from ._complete import TopicArgument
from ._output import Output, OutputOption, set_output
from ._usage import hinted, text_argument

PROGRESS_THRESHOLD = 1000  # more messages than this, on a terminal: a progress bar on stderr


def register(app: typer.Typer) -> None:
    app.command(
        "produce",
        short_help="Publish JSON messages to a topic (one, or one per line).",
        help=(
            "Publish JSON messages to TOPIC: MESSAGE (JSON text or @file.json), or one message per line from"
            " stdin (MESSAGE '-' or omitted) or --file. Every line is checked before anything is sent; blank"
            " lines are skipped. From a pipe, lines are published as they arrive (`consume a | produce b -`"
            " is a live bridge) and a bad line stops the stream (what was sent before it stays sent)."
            " --raw sends each line as it is (no JSON check), split on --delimiter, and"
            " MESSAGE @FILE as the file's bytes (one message);"
            " --rate N sends N messages per second. Exit codes: 0 sent, 2 bad input (nothing sent),"
            " 4 broker unavailable."
        ),
        **hinted(),
    )(produce)


def read_lines(data: bytes, source: str, delimiter: bytes | None = None, raw: bool = False) -> list[bytes]:
    """The non-blank lines, each valid JSON; the first bad one exits 2 naming its line number.

    Raw: split on ``delimiter`` (newline by default), empty pieces skipped, the rest sent as it is.
    """
    import orjson

    if raw:
        pieces = data.split(delimiter or b"\n")
        if delimiter is None or delimiter == b"\n":
            pieces = [p[:-1] if p.endswith(b"\r") else p for p in pieces]
        return [p for p in pieces if p]
    bodies: list[bytes] = []
    lines = data.split(delimiter) if delimiter not in (None, b"\n") else data.splitlines()
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            fail(f"line {number} of {source} is not valid JSON: {exc}; nothing was sent", Exit.BAD_INPUT)
        bodies.append(line)
    return bodies


class _Progress:
    """A rich progress bar on stderr, only when there are many messages and stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.bar: Any = None
        self.task: Any = None
        if total > PROGRESS_THRESHOLD and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from ._common import stderr_console

            self.bar = Progress(
                TextColumn("producing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=True,
            )
            self.task = self.bar.add_task("produce", total=total)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, count: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, count)


async def _produce(
    settings: Any, topic: str, bodies: list[bytes], delay: float | None, rate: float | None = None
) -> int:
    import orjson

    session = await open_session(settings)
    async with session:
        with _Progress(len(bodies)) as progress:
            if delay:
                # Deferred publish (DPUB) takes one message at a time.
                for body in bodies:
                    await session.produce(topic, orjson.loads(body), delay=delay)
                    progress(1)
                return len(bodies)
            if rate:
                return await _paced(session, topic, bodies, rate, progress)
            sent: int = await session.produce_many(topic, bodies, raw=True, progress=progress)
            return sent


async def _paced(session: Any, topic: str, bodies: list[bytes], rate: float, progress: Any) -> int:
    """``--rate``: message i leaves at start + i/rate; what falls due together goes as one batch."""
    import asyncio

    from almanet._wire.errors import invalid_argument

    limit = session.max_message_size
    for number, body in enumerate(bodies):  # all checked before the first is sent, as produce_many does
        if len(body) > limit:
            raise invalid_argument(f"message {number} is {len(body)} bytes; nsqd accepts at most {limit}; nothing sent")
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    while sent < len(bodies):
        due = min(len(bodies), int((loop.time() - start) * rate) + 1)
        if due > sent:
            await session.produce_many(topic, bodies[sent:due], raw=True)
            progress(due - sent)
            sent = due
        wait = start + sent / rate - loop.time()
        if wait > 0 and sent < len(bodies):
            await asyncio.sleep(wait)  # pacing the output, as to_nsq --rate does
    return sent


def _stream_stdin(settings: Any, topic: str, split: bytes | None, raw: bool, output: Output) -> None:
    """``produce TOPIC -`` on a pipe: lines published as they arrive (``_stream.py``)."""
    from ._stream import stream

    with exit_on_errors(topic=topic):
        sent, stopped = run(stream(settings, topic, split, raw))
    plural = "" if sent == 1 else "s"
    if stopped:
        fail(f"{sent} message{plural} sent to {topic}", Exit.INTERRUPTED, label="stopped")
    if output is Output.json:
        from ._common import print_json

        print_json({"produced": sent, "topic": topic, "delay": None})
        return
    from ._common import stderr_console

    stderr_console().print(f"produced {sent} message{plural} to {topic}")


def _read_file(path: Path) -> bytes:
    """``--raw @FILE``: the file's bytes, unchanged, as one message."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read message file {path}: {exc.strerror or exc}", Exit.BAD_INPUT)
    if not data:
        fail(f"message file {path} is empty; nsqd refuses an empty message", Exit.BAD_INPUT)
    return data


def parse_delimiter(text: str) -> bytes:
    """One byte, given as itself or as an escape (\\n, \\t, \\r, \\0), as to_nsq's --delimiter."""
    escapes = {"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\0": "\0"}
    value = escapes.get(text, text).encode()
    if len(value) != 1:
        fail(f"--delimiter {text!r} must be one byte: a character like ',' or \\n \\t \\r \\0", Exit.BAD_INPUT)
    return value


def produce(
    topic: TopicArgument,
    message: Annotated[
        str | None, text_argument("[MESSAGE]", "One JSON message, @file.json, or - (one message per line from stdin).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", metavar="PATH", help="Read one message per line from this file."),
    ] = None,
    delay: Annotated[
        float | None,
        typer.Option("--delay", metavar="SECONDS", help="Deliver the messages after SECONDS (deferred publish)."),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option("--raw", help="Send each line (or @FILE whole) as bytes, as it is: no JSON check (like to_nsq)."),
    ] = False,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            "-d",
            metavar="CHAR",
            help="Split the input on CHAR instead of newlines (one byte, or \\n \\t \\r \\0).",
            show_default=False,
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option("--rate", metavar="N", help="Send N messages per second (default: as fast as nsqd takes them)."),
    ] = None,
    output: OutputOption = Output.auto,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    import orjson

    from almanet._nsq.names import check_name

    output = set_output(output, legacy_json=as_json)
    try:
        check_name(topic, "topic")
    except ValueError as exc:
        fail(str(exc), Exit.BAD_INPUT)
    if delay is not None and not 0 <= delay <= 3600:
        fail("--delay must be between 0 and 3600 seconds (nsqd's default --max-req-timeout is 1h)", Exit.BAD_INPUT)
    if rate is not None and not (rate > 0 and rate != float("inf")):
        fail("--rate must be a positive number of messages per second", Exit.BAD_INPUT)
    if delay and (raw or rate):
        fail("--delay sends JSON messages one by one; leave out --raw and --rate with it", Exit.BAD_INPUT)
    if file is not None and message is not None:
        fail("give MESSAGE or --file, not both", Exit.BAD_INPUT)
    split = parse_delimiter(delimiter) if delimiter is not None else None
    if file is not None:
        try:
            bodies = read_lines(file.read_bytes(), str(file), split, raw)
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror or exc}", Exit.BAD_INPUT)
    elif message == "-" or (message is None and not sys.stdin.isatty()):
        from ._stream import is_pipe

        if is_pipe(sys.stdin) and delay is None and rate is None:
            _stream_stdin(load(config, nsqd), topic, split, raw, output)
            return
        bodies = read_lines(sys.stdin.buffer.read(), "stdin", split, raw)
    elif message is None:
        fail("give a MESSAGE, '-' to read one message per line from stdin, or --file", Exit.BAD_INPUT)
    elif raw and message.startswith("@"):
        bodies = [_read_file(Path(message[1:]))]  # the file's bytes as one message, as without --raw
    elif raw:
        bodies = [message.encode()]
    else:
        bodies = [orjson.dumps(parse_json_argument(message, "message"))]
    if not bodies:
        fail("no message to send (the input has only blank lines)", Exit.BAD_INPUT)
    settings = load(config, nsqd)
    with exit_on_errors(topic=topic):
        sent = run(_produce(settings, topic, bodies, delay, rate))
    if output is Output.json:
        from ._common import print_json

        print_json({"produced": sent, "topic": topic, "delay": delay})
        return
    later = f", delivered in {delay:g}s" if delay else ""
    plural = "" if sent == 1 else "s"
    from ._common import stderr_console

    stderr_console().print(f"produced {sent} message{plural} to {topic}{later}")
