"""The CLI in a real terminal (tmux): colour and NO_COLOR, the progress bar, completion in bash and zsh.

Each test gets its own tmux server (a socket in tmp) running an interactive shell; keys are sent
and the screen is polled (``capture-pane``) until what is expected shows up, never slept for.
``scripts/setup.sh`` installs tmux and zsh when missing; without them these tests skip, saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import almanet, nsq_env
from tests.cli.test_processes import served  # noqa: F401 - the module's served service
from tests.support.nsqproc import NsqdProcess, wait_until

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/setup.sh installs it)"),
]

BIN = Path(sys.executable).parent  # the venv's almanet script
ANSI = re.compile(r"\x1b\[([0-9;]*)m")


def colours(line: str) -> list[str]:
    """The SGR codes in ``line`` that set a colour (bold and resets are not colours, NO_COLOR keeps them)."""
    codes = [c for params in ANSI.findall(line) for c in params.split(";") if c]
    return [c for c in codes if c.isdigit() and (30 <= int(c) <= 38 or 40 <= int(c) <= 48 or 90 <= int(c) <= 107)]


class Terminal:
    """One shell in a tmux pane of 200x50 on a private server."""

    def __init__(self, tmp: Path, shell: list[str], env: dict[str, str]) -> None:
        self.socket = str(tmp / f"tmux-{uuid.uuid4().hex[:6]}")
        path = f"{BIN}{os.pathsep}{env.get('PATH', os.environ.get('PATH', ''))}"
        env = {**env, "PATH": path, "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        env.pop("TMUX", None)
        self.env = env
        self._tmux("new-session", "-d", "-x", "200", "-y", "50", "-s", "t", " ".join(shell))
        self._tmux("set-option", "-g", "history-limit", "5000")

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args], env=self.env, capture_output=True, text=True, timeout=10, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def type(self, text: str, enter: bool = True) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)
        if enter:
            self._tmux("send-keys", "-t", "t", "Enter")

    def key(self, name: str) -> None:
        self._tmux("send-keys", "-t", "t", name)

    def screen(self, colours: bool = False) -> str:
        args = ["capture-pane", "-p", "-J", "-t", "t", "-S", "-"]
        return self._tmux(*args, *(["-e"] if colours else []))

    def wait_for(self, pattern: str, timeout: float = 15, colours: bool = False) -> str:
        return wait_until(
            lambda: re.search(pattern, self.screen(colours)) and self.screen(colours),
            timeout,
            interval=0.05,
            message=f"{pattern!r} never showed; the screen:\n{self.screen()}",
        )

    def run(self, command: str, timeout: float = 15) -> str:
        """Run ``command`` to its end; the screen output between its start and the marker."""
        marker = uuid.uuid4().hex[:8]
        self.type(f'{command}; echo "done-{marker} $?"')
        screen = self.wait_for(rf"done-{marker} \d+", timeout, colours=True)
        return screen

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10, check=False)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def factory(env: dict[str, str], shell: list[str] | None = None) -> Terminal:
        term = Terminal(tmp_path, shell or ["bash", "--norc", "--noprofile"], env)
        opened.append(term)
        term.type("PS1='$ '")
        return term

    yield factory
    for term in opened:
        term.close()


def exports(env: dict[str, str]) -> str:
    keys = ("ALMANET_NSQD", "ALMANET_NSQD_HTTP", "HOME", "PYTHONPATH", "COLUMNS")
    return "export " + " ".join(f"{k}={env[k]}" for k in keys if k in env)


def test_results_are_coloured_on_a_terminal_and_plain_with_no_color(served, terminal) -> None:  # noqa: F811
    _, env, cwd, _ = served
    term = terminal(env)
    term.type(f"cd {cwd} && {exports(env)} && unset NO_COLOR")
    coloured = term.run("""almanet call clitest.place '{"id": 11, "item": "tea"}'""")
    line = next(x for x in coloured.splitlines() if '"placed"' in x)
    assert colours(line), line  # highlighted JSON
    assert ANSI.sub("", line).strip() == '"placed": 11'  # and indented, one key per line
    error = term.run("almanet call clitest.place Bob")
    assert colours(next(x for x in error.splitlines() if "not valid JSON" in x))  # the red "error:"
    term.type("clear")
    plain = term.run("""NO_COLOR=1 almanet call clitest.place '{"id": 12, "item": "tea"}'""")
    line = next(x for x in plain.splitlines() if '"placed"' in x)
    assert not colours(line) and ANSI.sub("", line).strip() == '"placed": 12'


def test_produce_shows_a_progress_bar_on_a_terminal_only(nsqd: NsqdProcess, tmp_path: Path, terminal, unique_name):
    env = nsq_env(tmp_path, nsqd)
    topic = unique_name()
    (tmp_path / "many.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(3000)))
    term = terminal(env)
    term.type(f"cd {tmp_path} && {exports(env)}")
    # --rate makes the run last 1.5 s, long enough to see the bar move
    term.type(f"almanet produce {topic} --file many.jsonl --rate 2000")
    bar = term.wait_for(r"producing .*\d+/3000")
    assert re.search(r"producing .*━.* (\d+)/3000", bar)
    done = term.wait_for(rf"produced 3000 messages to {topic}")
    assert not re.search(r"producing .*/3000", done.split("almanet produce")[-1])  # transient: gone at the end
    # stderr to a file: no bar, just the summary
    term.run(f"almanet produce {topic} --file many.jsonl 2> err.txt")
    assert (tmp_path / "err.txt").read_text().strip() == f"produced 3000 messages to {topic}"
    assert nsqd.topic_stats(topic)["message_count"] == 6000


def _complete_in(term: Terminal, typed: str, expected: str) -> None:
    term.type(typed, enter=False)
    term.key("Tab")
    term.wait_for(re.escape(expected))
    term.key("C-u")  # clear the line for the next one


def test_bash_completes_live_uris_and_topics(served, terminal, unique_name) -> None:  # noqa: F811
    _, env, cwd, _ = served
    prefix = unique_name("tb")
    assert almanet("produce", f"{prefix}_orders", "1", env=env, cwd=cwd).returncode == 0
    term = terminal(env)
    term.type(f"cd {cwd} && {exports(env)}")
    term.run('eval "$(almanet completion bash)"')
    _complete_in(term, "almanet call clitest.pl", "$ almanet call clitest.place")
    _complete_in(term, "almanet describe clitest.wh", "$ almanet describe clitest.whoami")
    _complete_in(term, f"almanet consume {prefix}_o", f"$ almanet consume {prefix}_orders")
    _complete_in(term, f"almanet produce {prefix}_o", f"$ almanet produce {prefix}_orders")
    _complete_in(term, "almanet mul", "$ almanet multicall")


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/setup.sh installs it)")
def test_zsh_completes_with_its_own_script(served, terminal, unique_name, tmp_path: Path) -> None:  # noqa: F811
    _, env, cwd, _ = served
    prefix = unique_name("tz")
    assert almanet("produce", f"{prefix}_audit", "1", env=env, cwd=cwd).returncode == 0
    home = tmp_path / "zhome"
    home.mkdir()
    # the zsh install: ~/.zfunc/_almanet and the .zshrc lines, as a zsh user would get them
    installed = subprocess.run(
        [str(BIN / "almanet"), "--install-completion", "zsh"],
        env={**env, "HOME": str(home)},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    assert "#compdef almanet" in (home / ".zfunc" / "_almanet").read_text()
    term = terminal({**env, "HOME": str(home), "ZDOTDIR": str(home)}, ["zsh", "-i"])
    term.type(f"cd {cwd} && {exports({**env, 'HOME': str(home)})}")
    term.run("echo ready")
    _complete_in(term, "almanet call clitest.pl", "almanet call clitest.place")
    _complete_in(term, f"almanet consume {prefix}_a", f"almanet consume {prefix}_audit")
    # the other way in: eval'ed into a shell that has compinit
    plain = terminal({**env, "HOME": str(home)}, ["zsh", "-f"])
    plain.type(f"cd {cwd} && {exports({**env, 'HOME': str(home)})}")
    plain.run('autoload -Uz compinit && compinit -u && eval "$(almanet completion zsh)"')
    _complete_in(plain, "almanet describe clitest.sl", "almanet describe clitest.slow")
