"""``call``/``multicall`` ``--explain`` (what would go on the wire) and ``-v`` (what did, and when).

``--explain`` builds the topic, body and reply topic with the very functions the session uses
(``almanet._wire``), so what it prints is what a call sends, and the commands it prints replay it
with NSQ's own tools.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

__all__ = ["Timeline", "explain", "print_explain", "print_trace", "run_traced", "show_explain", "timeline"]


def subscribers(topic: str, settings: Any) -> tuple[str, bool]:
    """Who reads ``topic`` now, from nsqd's ``/stats`` (HTTP only, nothing published), and whether
    the invocation would carry the deadline: only when every subscriber announced it, as a call
    decides. ``unknown`` (no ``/stats`` answered within a second) and ``none`` get the plain body."""
    import asyncio

    from almanet._broker.stats import Snapshot, StatsReader

    async def read() -> Snapshot:
        reader = StatsReader(lambda: settings.nsqd, settings.nsqd_http, settings.lookupd_http)
        async with asyncio.timeout(1.0):
            return await reader.snapshot(topic)

    try:
        snapshot = asyncio.run(read())
    except TimeoutError:
        return "unknown", False
    facts = snapshot.topics.get(topic)
    if facts is not None and facts.served:
        return ("deadline-aware" if facts.capable else "0.7.0-compatible only"), facts.capable
    return ("none" if snapshot.complete else "unknown"), False


def explain(uri: str, payload: Any, settings: Any, *, multi: bool, timeout: float) -> dict[str, Any]:
    """The exact invocation a call would publish, with a fresh session and call id; nothing is sent."""
    from almanet._wire import protocol as _wire

    from ._common import Exit, fail

    session_id = _wire.new_id()
    call_id = _wire.IdSequence().next()
    reply_topic = _wire.reply_topic(session_id)
    topic = _wire.rpc_topic(uri)
    readers, deadline = subscribers(topic, settings)
    timeout_ms = int(timeout * 1000) if deadline else None
    try:
        body = _wire.encode_invocation(call_id, session_id, payload, reply_topic, timeout_ms).decode()
    except _wire.WireError as exc:
        fail(str(exc), Exit.BAD_INPUT)
    tcp = settings.nsqd[0] if settings.nsqd else "NSQD_HOST:4150"
    http = settings.nsqd_http[0] if settings.nsqd_http else "NSQD_HOST:4151"
    tail = ["nsq_tail", f"--nsqd-tcp-address={tcp}", f"--topic={reply_topic}", f"--channel={_wire.REPLY_CHANNEL}"]
    if not multi:
        tail += ["-n", "1"]
    q = shlex.quote
    return {
        "uri": uri,
        "topic": topic,
        "channel": _wire.channel_name(_wire.DEFAULT_CHANNEL),
        "body": body,
        "subscribers": readers,
        "timeout_ms": timeout_ms,
        "reply_topic": reply_topic,
        "reply_channel": _wire.REPLY_CHANNEL,
        "call_id": call_id,
        "caller_id": session_id,
        "nsqd": list(settings.nsqd),
        "lookupd": list(settings.lookupd_http),
        "commands": {
            "nsq_tail": " ".join(q(a) for a in tail),
            "to_nsq": f"echo {q(body)} | to_nsq --nsqd-tcp-address={q(tcp)} --topic={q(topic)}",
            "curl": f"curl -sS -d {q(body)} {q(f'http://{http}/pub?topic={topic}')}",
        },
        "sent": False,
    }


def show_explain(uri: str, payload: Any, settings: Any, *, multi: bool, timeout: float) -> None:
    """``--explain``: the plan as JSON (piped, ``-o json``) or as lines to read."""
    from ._common import print_json
    from ._output import wants_json

    plan = explain(uri, payload, settings, multi=multi, timeout=timeout)
    if wants_json():
        print_json(plan)
    else:
        print_explain(plan)


def print_explain(plan: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(soft_wrap=True, highlight=False)
    for key, label in (
        ("topic", "topic"),
        ("channel", "channel"),
        ("body", "body"),
        ("subscribers", "subscribers"),
        ("reply_topic", "reply topic"),
        ("reply_channel", "reply channel"),
    ):
        console.print(Text.assemble((f"{label:<14}", "bold"), plan[key]))
    console.print(
        "Nothing was sent (nsqd's /stats was read for who subscribes: the body carries the deadline"
        " only when every subscriber announced it, as a call's does). Services read the topic on channel"
        " RPC#ephemeral (or their own channel); every channel"
        " gets a copy. The same call by hand, nsq_tail first (it prints the reply):",
        markup=False,
    )
    for command in plan["commands"].values():
        console.print(Text("  " + command))


class Timeline:
    """Monotonic marks the CLI takes around the session, joined with the session's CallTrace."""

    def __init__(self) -> None:
        import time

        from almanet._calling.trace import CallTrace

        self.start = time.monotonic()
        self.joined: float | None = None
        self.trace = CallTrace()

    def joined_now(self) -> Any:
        """Mark the session joined; the CallTrace to hand to the call."""
        import time

        self.joined = time.monotonic()
        return self.trace


def timeline(verbose: bool) -> Timeline | None:
    return Timeline() if verbose else None


def _ms(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else round((later - earlier) * 1000, 3)


def print_trace(timeline: Timeline, addresses: tuple[str, ...], *, as_json: bool) -> None:
    """``-v``: on stderr, whether the call succeeded or not (it matters most when it did not)."""
    trace = timeline.trace
    via = sorted({address for _, address in trace.replies})
    record: dict[str, Any] = {
        "nsqd": via or list(addresses),
        "topic": trace.topic,
        "reply_topic": trace.reply_topic,
        "call_id": trace.call_id,
        "join_ms": _ms(timeline.joined, timeline.start),
        "reply_subscription_ms": _ms(trace.sent, timeline.joined),
        "publish_ms": _ms(trace.published, trace.sent),
        "reply_ms": [_ms(at, trace.sent) for at, _ in trace.replies],
    }
    if as_json:
        import orjson

        sys.stderr.write(orjson.dumps({"verbose": record}).decode() + "\n")
        sys.stderr.flush()
        return
    from ._common import stderr_console

    def ms(value: float | None, what: str) -> str:
        return f"{value:.1f} ms {what}" if value is not None else "-"

    if via:
        nsqd = f"{', '.join(via)} (the reply came through it)"
    else:
        nsqd = ", ".join(addresses) or "the nsqd registered with nsqlookupd"
    replies = record["reply_ms"]
    if not replies:
        answer = "none"
    elif len(replies) == 1:
        answer = ms(replies[0], "after publishing began")
    else:
        answer = f"{len(replies)} replies, first {replies[0]:.1f} ms, last {replies[-1]:.1f} ms after publishing began"
    lines = [
        ("nsqd", nsqd),
        ("topic", trace.topic or "-"),
        ("reply topic", trace.reply_topic or "-"),
        ("call id", trace.call_id or "-"),
        ("joined", ms(record["join_ms"], "(TCP connect and IDENTIFY)")),
        ("subscribed", ms(record["reply_subscription_ms"], "(reply topic SUB, then the call)")),
        ("published", ms(record["publish_ms"], "(until nsqd's OK)")),
        ("reply", answer),
    ]
    from rich.markup import escape

    console = stderr_console()
    for label, value in lines:
        console.print(f"[dim]*[/dim] {label:<12} {escape(value)}", markup=True, highlight=False, soft_wrap=True)


def run_traced(coroutine: Any, timeline: Timeline | None, settings: Any) -> Any:
    """Run the command; with ``-v``, the trace goes out first, before any result or error line."""
    from ._common import run
    from ._output import json_errors

    try:
        return run(coroutine)
    finally:
        if timeline is not None:
            print_trace(timeline, tuple(settings.nsqd), as_json=json_errors())
