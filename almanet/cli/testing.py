"""``almanet testing install-nsqd``: build the nsqd that almanet's pytest fixtures start."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import Exit, fail, stderr_console


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="testing",
        help="Tools for testing almanet services (the pytest fixtures come with almanet).",
        no_args_is_help=True,
    )
    group.command(
        "install-nsqd",
        short_help="Build nsqd and nsqlookupd v1.3.0 with Go, for the pytest fixtures.",
        help=(
            "Build nsqd and nsqlookupd v1.3.0 from the Go module github.com/nsqio/nsq into a user-local folder"
            " (default: $XDG_DATA_HOME/almanet/bin, i.e. ~/.local/share/almanet/bin), where almanet's pytest"
            " fixtures find them. Needs Go >= 1.21 and the Go module proxy (or a filled module cache)."
            " Exit codes: 0 built (or already there), 2 no usable Go or the build failed."
        ),
    )(install_nsqd_command)
    app.add_typer(group)


def install_nsqd_command(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder to build into (default: the one the fixtures look in).", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Build even when the binaries are there.")] = False,
    go: Annotated[
        str | None,
        typer.Option(
            "--go", help="The go command to use (default: go on PATH, or /usr/local/go/bin/go).", show_default=False
        ),
    ] = None,
) -> None:
    from almanet.testing._tools import BuildError, build_tools, install_dir

    target = directory if directory is not None else install_dir()
    tools = ("nsqd", "nsqlookupd")
    if not force and all((target / tool).is_file() for tool in tools):
        typer.echo(f"nsqd and nsqlookupd are already in {target} (--force rebuilds them)")
        return
    console = stderr_console()
    try:
        built = build_tools(target, tools, go=go, say=lambda line: console.print(line, soft_wrap=True))
    except BuildError as exc:
        fail(str(exc), Exit.BAD_INPUT)
    for path in built:
        typer.echo(str(path))
    if directory is not None and directory.resolve() != install_dir().resolve():
        console.print(
            f"the fixtures look in {install_dir()}: set ALMANET_NSQD_BIN={built[0]} to use this build", soft_wrap=True
        )
