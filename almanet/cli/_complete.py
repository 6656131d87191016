"""Shell completion: live procedure URIs for ``call``/``describe``, topic names for ``produce``/``consume``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

from ._usage import text_argument

if TYPE_CHECKING:
    from almanet._settings.config import Settings

__all__ = ["COMPLETION_BUDGET", "TopicArgument", "TopicsArgument", "UriArgument", "complete_topic", "complete_uri"]

COMPLETION_BUDGET = 1.0  # seconds: a shell waiting for <TAB> must not hang on a dead broker


def complete_uri(incomplete: str) -> list[str]:
    """URIs served right now (discovery multicall) that start with ``incomplete``."""
    return _silently(_live_uris, incomplete)


def _silently(find: Callable[[str], Coroutine[Any, Any, list[str]]], incomplete: str) -> list[str]:
    """``find(incomplete)`` within the budget; every failure yields no completions, silently.

    This runs inside the user's shell on <TAB>, where an error line or a traceback would be
    printed into the command line being edited. It is the one place the CLI swallows errors.
    """
    try:
        import asyncio

        return asyncio.run(asyncio.wait_for(find(incomplete), COMPLETION_BUDGET))
    except BaseException:  # see the docstring: completion never fails loudly
        return []


def _settings() -> Settings:
    """The user's settings, with half the budget at most to connect."""
    import dataclasses

    from almanet._settings.config import load_settings

    settings = load_settings()
    return dataclasses.replace(settings, connect_timeout=min(settings.connect_timeout, COMPLETION_BUDGET / 2))


async def _live_uris(incomplete: str) -> list[str]:
    from ._common import discover, open_session

    session = await open_session(_settings())
    async with session:
        instances = await discover(session, timeout=COMPLETION_BUDGET / 2)
    uris: set[str] = set().union(*(instance.uris for instance in instances))
    return sorted(u for u in uris if u.startswith(incomplete))


# The URI argument of call, multicall and describe, completed with the live procedures.
UriArgument = Annotated[str, text_argument("URI", "Procedure URI, e.g. net.example.greeting.", complete_uri)]


def complete_topic(incomplete: str) -> list[str]:
    """Topic names nsqd knows (``/stats`` of every nsqd) that start with ``incomplete``; silent on failure.

    Reply topics (``_rpc_._reply_.*``) never are; other RPC topics only once ``_`` is typed.
    """
    return _silently(_topics, incomplete)


async def _topics(incomplete: str) -> list[str]:
    import asyncio

    from almanet._nsq.http import NsqdHTTPClient

    from .services import nsqd_http_addresses

    addresses, _ = await nsqd_http_addresses(_settings())
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
    from almanet._wire.protocol import REPLY_PREFIX

    hidden = (REPLY_PREFIX,) if incomplete.startswith("_") else ("_",)
    return sorted(n for n in names if n.startswith(incomplete) and not n.startswith(hidden))


# produce's TOPIC and consume's TOPIC..., completed with the topics nsqd has.
TopicArgument = Annotated[str, text_argument("TOPIC", "NSQ topic name.", complete_topic)]
TopicsArgument = Annotated[list[str], text_argument("TOPIC...", "One or more NSQ topic names.", complete_topic)]
