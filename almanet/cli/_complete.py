"""Shell completion of live procedure URIs for ``call`` and ``describe``."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["COMPLETION_BUDGET", "UriArgument", "complete_uri"]

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
    str, typer.Argument(help="Procedure URI, e.g. net.example.greeting.", autocompletion=complete_uri)
]
