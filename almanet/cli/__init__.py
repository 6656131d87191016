"""The ``almanet`` command line: one module per command, heavy imports inside command bodies.

Exit codes (also in ``almanet --help`` and the README):
0 success · 1 the remote procedure raised an error · 2 bad input, usage or configuration ·
3 timeout: no service answered · 4 broker unavailable or refused the request · 130 interrupted.
"""

from __future__ import annotations

import typer

from . import call, config, consume, describe, multicall, produce, serve, services, testing

EPILOG = (
    "Exit codes: 0 success, 1 remote error, 2 bad input/usage/config, 3 timeout (no service answered),"
    " 4 broker unavailable, 130 interrupted."
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

for _module in (serve, call, multicall, produce, consume, services, describe, config, testing):
    _module.register(app)


def main() -> None:
    app(prog_name="almanet")
