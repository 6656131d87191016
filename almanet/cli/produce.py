"""``almanet produce TOPIC [MESSAGE]``: publish one JSON message, or one per line (MPUB batches)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import ConfigOption, Exit, NsqdOption, exit_on_errors, fail, load, open_session, parse_json_argument, run

PROGRESS_THRESHOLD = 1000  # more messages than this, on a terminal: a progress bar on stderr


def register(app: typer.Typer) -> None:
    app.command(
        "produce",
        short_help="Publish JSON messages to a topic (one, or one per line).",
        help=(
            "Publish JSON messages to TOPIC: MESSAGE (JSON text or @file.json), or one message per line from"
            " stdin (MESSAGE '-' or omitted) or --file. Every line is checked before anything is sent; blank"
            " lines are skipped. Exit codes: 0 sent, 2 bad input (nothing sent), 4 broker unavailable."
        ),
    )(produce)


def read_lines(data: bytes, source: str) -> list[bytes]:
    """The non-blank lines, each valid JSON; the first bad one exits 2 naming its line number."""
    import orjson

    bodies: list[bytes] = []
    for number, line in enumerate(data.splitlines(), start=1):
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


async def _produce(settings: Any, topic: str, bodies: list[bytes], delay: float | None) -> int:
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
            return await session.produce_many(topic, bodies, raw=True, progress=progress)


def produce(
    topic: Annotated[str, typer.Argument(help="NSQ topic name.")],
    message: Annotated[
        str | None, typer.Argument(help="One JSON message, @file.json, or - (one message per line from stdin).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read one JSON message per line from this file.")
    ] = None,
    delay: Annotated[
        float | None, typer.Option("--delay", help="Deliver the messages after SECONDS (deferred publish).")
    ] = None,
    config: ConfigOption = None,
    nsqd: NsqdOption = None,
) -> None:
    import orjson

    from almanet._nsq.names import check_name

    try:
        check_name(topic, "topic")
    except ValueError as exc:
        fail(str(exc), Exit.BAD_INPUT)
    if delay is not None and not 0 <= delay <= 3600:
        fail("--delay must be between 0 and 3600 seconds (nsqd's default --max-req-timeout is 1h)", Exit.BAD_INPUT)
    if file is not None and message is not None:
        fail("give MESSAGE or --file, not both", Exit.BAD_INPUT)
    if file is not None:
        try:
            bodies = read_lines(file.read_bytes(), str(file))
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror or exc}", Exit.BAD_INPUT)
    elif message == "-" or (message is None and not sys.stdin.isatty()):
        bodies = read_lines(sys.stdin.buffer.read(), "stdin")
    elif message is None:
        fail("give a MESSAGE, '-' to read one message per line from stdin, or --file", Exit.BAD_INPUT)
    else:
        bodies = [orjson.dumps(parse_json_argument(message, "message"))]
    if not bodies:
        fail("no message to send (the input has only blank lines)", Exit.BAD_INPUT)
    settings = load(config, nsqd)
    with exit_on_errors():
        sent = run(_produce(settings, topic, bodies, delay))
    later = f", delivered in {delay:g}s" if delay else ""
    plural = "" if sent == 1 else "s"
    from ._common import stderr_console

    stderr_console().print(f"produced {sent} message{plural} to {topic}{later}")
