"""``almanet completion [SHELL] [--install]``: the completion script of the shell named, not the current one.

typer's own ``--install-completion`` installs the detected shell's script whatever shell is
asked for; ours (the command, and the root ``--install-completion SHELL``) follow the argument.
The scripts are typer's, so the completions come from the same code paths typer's would.
"""

from __future__ import annotations

import enum
import os
from typing import Annotated, Any

import typer

from ._usage import hinted

PROG = "almanet"
COMPLETE_VAR = "_ALMANET_COMPLETE"


class Shell(enum.StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"
    pwsh = "pwsh"


def register(app: typer.Typer) -> None:
    app.command(
        "completion",
        short_help="Print or install the shell completion script (bash, zsh, fish, powershell).",
        help=(
            "Print the completion script for SHELL (default: the current shell), or install it with --install."
            " Completes commands, options, live procedure URIs (call, multicall, describe) and topic names"
            ' from nsqd\'s /stats (produce, consume). E.g. eval "$(almanet completion bash)".'
        ),
        **hinted(),
    )(completion)


def init() -> None:
    """Register typer's completion classes: the scripts we print call back into them."""
    from typer._completion_classes import completion_init

    completion_init()


def current_shell() -> str:
    """The shell running us (shellingham, then $SHELL), bash when neither says."""
    try:
        import shellingham

        return str(shellingham.detect_shell()[0])
    except Exception:  # detection failed or shellingham absent: fall back, never fail
        name = os.path.basename(os.environ.get("SHELL", ""))
        return name if name in Shell.__members__ else "bash"


def script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    init()
    text = get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)
    if shell == "zsh":
        text = _zsh_first_tab(text)
    return text


def _zsh_first_tab(text: str) -> str:
    """typer's zsh file, autoloaded from fpath, only registers its function on the first <TAB> (which
    completes nothing) and again on the second. Named after the file (``_almanet``), the function
    replaces the autoload stub and completes from the first <TAB>; eval'ed, the file registers it."""
    func = f"_{PROG}_completion"
    line = f"compdef {func} {PROG}"
    if line not in text:
        return text
    fixed = f'if [[ "${{zsh_eval_context[-1]}}" == loadautofunc ]]; then\n  {func} "$@"\nelse\n  {line}\nfi'
    return text.replace(line, fixed).replace(func, f"_{PROG}")


def install(shell: str) -> None:
    from typer._completion_shared import install as typer_install

    from ._common import stderr_console

    init()
    installed, path = typer_install(shell=shell, prog_name=PROG, complete_var=COMPLETE_VAR)
    if installed == "zsh":  # the file typer wrote, with the first-<TAB> fix
        path.write_text(script("zsh"))
    stderr_console().print(f"{installed} completion installed in {path}; it takes effect in a new {installed} shell")


def install_callback(ctx: Any, param: Any, value: Shell | None) -> None:
    if value is not None and not ctx.resilient_parsing:
        install(value.value)
        raise typer.Exit()


def show_callback(ctx: Any, param: Any, value: Shell | None) -> None:
    if value is not None and not ctx.resilient_parsing:
        typer.echo(script(value.value))
        raise typer.Exit()


def completion(
    shell: Annotated[
        Shell | None,
        typer.Argument(
            metavar="[SHELL]", help="bash, zsh, fish or powershell (default: the current shell).", show_default=False
        ),
    ] = None,
    install_it: Annotated[
        bool,
        typer.Option("--install", help="Install it (bash: ~/.bash_completions, zsh: ~/.zfunc, fish: ~/.config/fish)."),
    ] = False,
) -> None:
    name = shell.value if shell is not None else current_shell()
    if name not in Shell.__members__:
        from ._common import Exit, fail

        fail(f"cannot tell the shell ({name!r}); name it: almanet completion bash|zsh|fish|powershell", Exit.BAD_INPUT)
    if install_it:
        install(name)
    else:
        typer.echo(script(name))
