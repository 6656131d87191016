"""Shell completion: live procedure URIs for ``call``/``describe``, topic names for ``produce``/``consume``."""

from __future__ import annotations

from typing import Annotated

import typer

from ._usage import TEXT

__all__ = ["COMPLETION_BUDGET", "TopicArgument", "TopicsArgument", "UriArgument", "complete_topic", "complete_uri"]

COMPLETION_BUDGET = 1.0  # seconds: a shell waiting for <TAB> must not hang on a dead broker


def complete_uri(incomplete: str) -> list[str]:
    """URIs served right now (discovery multicall) that start with ``incomplete``.

    Every failure yields no completions, silently: this runs inside the user's shell on <TAB>,
    where an error line or a traceback would be printed into the command line being edited.
    It is the one place the CLI swallows errors.
    """
    try:
        import asyncio

        return asyncio.run(asyncio.wait_for(_live_uris(incomplete), COMPLETION_BUDGET))
    except BaseException:  # see the docstring: completion never fails loudly
        return []


async def _live_uris(incomplete: str) -> list[str]:
    import dataclasses

    from almanet._config import load_settings

    from ._common import discover, open_session

    settings = load_settings()
    settings = dataclasses.replace(settings, connect_timeout=min(settings.connect_timeout, COMPLETION_BUDGET / 2))
    session = await open_session(settings)
    async with session:
        instances = await discover(session, timeout=COMPLETION_BUDGET / 2)
    uris: set[str] = set().union(*(instance.uris for instance in instances))
    return sorted(u for u in uris if u.startswith(incomplete))


# The URI argument of call, multicall and describe, completed with the live procedures.
UriArgument = Annotated[
    str,
    typer.Argument(
        metavar="URI",
        click_type=TEXT,
        help="Procedure URI, e.g. net.example.greeting.",
        autocompletion=complete_uri,
        show_default=False,
    ),
]


def complete_topic(incomplete: str) -> list[str]:
    """Topic names nsqd knows (``/stats`` of every nsqd) that start with ``incomplete``; silent on failure.

    Reply topics (``_rpc_._reply_.*``) never are; other RPC topics only once ``_`` is typed.
    """
    try:
        import asyncio

        return asyncio.run(asyncio.wait_for(_topics(incomplete), COMPLETION_BUDGET))
    except BaseException:  # as complete_uri: completion never fails loudly
        return []


async def _topics(incomplete: str) -> list[str]:
    import asyncio
    import dataclasses

    from almanet._config import load_settings
    from almanet._nsq.http import NsqdHTTPClient

    from .services import nsqd_http_addresses

    settings = load_settings()
    settings = dataclasses.replace(settings, connect_timeout=min(settings.connect_timeout, COMPLETION_BUDGET / 2))
    addresses, _ = await nsqd_http_addresses(settings)
    found = await asyncio.gather(
        *(NsqdHTTPClient(a, timeout=COMPLETION_BUDGET / 2).stats() for a in addresses), return_exceptions=True
    )
    names = {
        str(t.get("topic_name"))
        for stats in found
        if isinstance(stats, dict)
        for t in stats.get("topics") or []
        if isinstance(t, dict) and t.get("topic_name")
    }
    from almanet._wire import REPLY_PREFIX

    hidden = (REPLY_PREFIX,) if incomplete.startswith("_") else ("_",)
    return sorted(n for n in names if n.startswith(incomplete) and not n.startswith(hidden))


# produce's TOPIC and consume's TOPIC..., completed with the topics nsqd has.
TopicArgument = Annotated[
    str, typer.Argument(
        metavar="TOPIC", click_type=TEXT, help="NSQ topic name.", autocompletion=complete_topic, show_default=False
    )
]
TopicsArgument = Annotated[
    list[str],
    typer.Argument(
        metavar="TOPIC...",
        click_type=TEXT,
        help="One or more NSQ topic names.",
        autocompletion=complete_topic,
        show_default=False,
    ),
]
