"""The ``almanet`` command line: one module per command, heavy imports inside command bodies.

Exit codes (also in ``almanet --help`` and the README):
0 success · 1 the remote procedure raised an error · 2 bad input, usage or configuration ·
3 timeout, reason unknown · 4 broker unavailable or refused the request · 5-8 timeout with a
known reason (5 nothing serves the URI, 6 queued, 7 still running, 8 reply lost or late) ·
130 interrupted.
"""

from __future__ import annotations

import typer

from . import call, config, consume, describe, multicall, produce, purge, serve, services

EPILOG = (
    "Exit codes: 0 success, 1 remote error, 2 bad input/usage/config, 3 timeout (reason unknown),"
    " 4 broker unavailable, 5 timeout: nothing serves the URI, 6 timeout: queued, 7 timeout: still running,"
    " 8 timeout: reply lost or late, 130 interrupted."
)

app = typer.Typer(
    name="almanet",
    help="Serve, call, produce and consume over NSQ with the almanet protocol.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

for _module in (serve, call, multicall, produce, consume, services, purge, describe, config):
    _module.register(app)


def main() -> None:
    app(prog_name="almanet")
