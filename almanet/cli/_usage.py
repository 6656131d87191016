"""Usage errors that name the fix, and as JSON with ``-o json``.

Click's messages say what is wrong ("Missing argument 'URI'."); each command adds, per parameter,
what to type instead. typer draws the usual box around it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typer.core import TyperCommand

try:  # later typer vendors click (typed), older versions use click itself
    from typer._click.exceptions import UsageError
    from typer._click.types import StringParamType
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import UsageError  # type: ignore[no-redef,import-not-found,assignment,unused-ignore]
    from click.types import StringParamType  # type: ignore[no-redef,import-not-found,assignment,unused-ignore]

__all__ = ["HINTS", "TEXT", "HintedCommand", "hinted", "text_argument"]


class _Text(StringParamType):  # pyright: ignore[reportGeneralTypeIssues]  (from the try/except import)
    """A string argument whose help shows only its placeholder (``URI``), not ``URI <str>``."""

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return ""


TEXT = _Text()


def text_argument(metavar: str, help: str, complete: Callable[[str], list[str]] | None = None) -> Any:
    """A positional text argument as the CLI's usage lines show it: its placeholder only, no default."""
    import typer

    return typer.Argument(metavar=metavar, click_type=TEXT, help=help, autocompletion=complete, show_default=False)


_LIVE = " (almanet services lists the live procedures)."
_SECONDS = "Give a number of seconds, e.g. 2.5."
# (command, parameter name) -> the fix; "*" matches every command.
HINTS: dict[tuple[str, str], str] = {
    ("call", "uri"): "Name the procedure: almanet call net.example.greeting '\"Aidar\"'" + _LIVE,
    ("multicall", "uri"): "Name the procedure: almanet multicall net.example.greeting" + _LIVE,
    ("describe", "uri"): "Name the procedure: almanet describe net.example.greeting" + _LIVE,
    ("produce", "topic"): "Name the topic: almanet produce orders '{\"id\": 1}'.",
    ("consume", "topics"): "Name one topic or more: almanet consume orders -n 1.",
    ("serve", "targets"): "Name the service: almanet serve services.example:example_service.",
    ("completion", "shell"): "Name one of bash, zsh, fish, powershell.",
    ("*", "timeout"): _SECONDS,
    ("*", "delay"): _SECONDS,
    ("*", "count"): "Give a whole number, e.g. -n 10.",
    ("*", "rate"): "Give messages per second, e.g. --rate 100.",
    ("*", "max_in_flight"): "Give a whole number, e.g. --max-in-flight 200.",
}


class HintedCommand(TyperCommand):
    """A command whose usage errors end with the fix (and are JSON under ``-o json``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        # typer writes a required argument as {URI}; the convention is URI
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in super().collect_usage_pieces(ctx)]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        raw = list(args)
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            param = getattr(exc, "param", None)
            name = getattr(param, "name", None) or ""
            hint = HINTS.get((self.name or "", name)) or HINTS.get(("*", name))
            if hint and hint not in exc.message:
                error: Any = exc  # typer's vendored click or click itself: both have a settable message
                error.message = f"{exc.message.rstrip()} {hint}" if exc.message else hint
            from ._output import error_json, wants_json_args

            if wants_json_args(raw):
                import typer

                error_json("usage error", exc.format_message(), exc.exit_code, command=self.name)
                raise typer.Exit(exc.exit_code) from None
            raise


def hinted() -> dict[str, Any]:
    """``app.command(...)`` keyword arguments for a command with hinted usage errors."""
    return {"cls": HintedCommand}
