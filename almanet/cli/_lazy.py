"""The root command group, lazy: a command's module is imported when that command runs (or its
own ``--help`` is asked), not for ``almanet --help``, which lists every command from ``COMMANDS``.

Start-up is the CLI's first impression (the benchmark holds ``almanet --help`` to 1.2x a bare
typer app's): importing twelve command modules and building all their options cost a third of it.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["COMMANDS", "LazyGroup"]

# name -> (module under almanet.cli, the line ``almanet --help`` shows); in the order shown.
# tests/cli/test_surface.py checks each line against the command's own short help.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "Serve services (MODULE:ATTR) until Ctrl-C/SIGTERM, then drain."),
    "call": ("call", "Call a procedure and print its result."),
    "multicall": ("multicall", "Call every channel serving a procedure; print all replies."),
    "produce": ("produce", "Publish JSON messages to a topic (one, or one per line)."),
    "consume": ("consume", "Print the messages of one or more topics as they arrive."),
    "services": ("services", "List live services with nsqd stats per procedure."),
    "purge": ("purge", "Drop the invocations waiting for a procedure (or for every unserved one)."),
    "describe": ("describe", "Show a procedure's description and JSON schemas."),
    "asyncapi": ("asyncapi", "Print the AsyncAPI 3 document of a module's services or of the live bus; check it."),
    "stubs": ("stubs", "Write a typed Python module declaring the procedures under a prepath."),
    "fuzz": ("fuzz", "Call a live procedure with payloads generated from its schema; report failures."),
    "config": ("config", "Show the configuration in effect and where each value came from."),
    "ui": ("ui", "Serve a web page: live services, procedures and topics; try procedures."),
    "completion": ("completion", "Print or install the shell completion script (bash, zsh, fish, powershell)."),
    "testing": ("testing", "Tools for testing almanet services (the pytest fixtures come with almanet)."),
}


def load(name: str) -> Any:
    """The real command: its module imported, registered on a Typer of its own, built by typer."""
    module = importlib.import_module(f"almanet.cli.{COMMANDS[name][0]}")
    own = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="rich")
    module.register(own)
    built = typer.main.get_command(own)
    command = getattr(built, "commands", {}).get(name, built)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """``almanet``'s commands, each loaded on first use; the listing in the help needs none."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if self._listing:  # the root's help: a name and a line, nothing imported
            return TyperCommand(name=cmd_name, short_help=COMMANDS[cmd_name][1], callback=None)
        command = self.commands.get(cmd_name)
        if command is None:
            command = self.commands[cmd_name] = load(cmd_name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
