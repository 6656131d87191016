"""The ``almanet`` command line: one module per command, heavy imports inside command bodies.

Exit codes (also in ``almanet --help`` and the README):
0 success · 1 the remote procedure raised an error · 2 bad input, usage or configuration ·
3 timeout, reason unknown · 4 broker unavailable or refused the request · 5-8 timeout with a
known reason (5 nothing serves the URI, 6 queued, 7 still running, 8 reply lost or late) ·
130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from . import completion  # the root's --install-completion / --show-completion options
from ._lazy import LazyGroup

EPILOG = (
    "Exit codes: 0 success, 1 remote error, 2 bad input/usage/config, 3 timeout (reason unknown),"
    " 4 broker unavailable, 5 timeout: nothing serves the URI, 6 timeout: queued, 7 timeout: still running,"
    " 8 timeout: reply lost or late, 130 interrupted."
)

app = typer.Typer(
    name="almanet",
    help="Serve, call, produce and consume over NSQ with the almanet protocol.",
    epilog=EPILOG,
    add_completion=False,  # ours name the shell: typer's install the detected shell's script whatever is asked
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    cls=LazyGroup,  # each command's module is imported when it runs, not for `almanet --help`
)


def _version(value: bool) -> None:
    if value:
        from almanet import __version__

        typer.echo(f"almanet {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    install_completion: Annotated[
        completion.Shell | None,
        typer.Option(
            "--install-completion",
            metavar="SHELL",
            callback=completion.install_callback,
            is_eager=True,
            expose_value=False,
            help="Install completion for SHELL (bash, zsh, fish, powershell; default: the current shell).",
        ),
    ] = None,
    show_completion: Annotated[
        completion.Shell | None,
        typer.Option(
            "--show-completion",
            metavar="SHELL",
            callback=completion.show_callback,
            is_eager=True,
            expose_value=False,
            help="Print the completion script for SHELL (default: the current shell).",
        ),
    ] = None,
) -> None:
    from ._output import set_output

    set_output("auto")
    if ctx.invoked_subcommand is None:  # bare `almanet`: the help, and success
        typer.echo(ctx.get_help())
        raise typer.Exit()


def main() -> None:
    args = sys.argv[1:]
    # `--install-completion` / `--show-completion` alone: the current shell, as typer's own did
    if len(args) == 1 and args[0] in ("--install-completion", "--show-completion"):
        sys.argv.append(completion.current_shell())
    if "_ALMANET_COMPLETE" in os.environ:
        completion.init()
    app(prog_name="almanet")
