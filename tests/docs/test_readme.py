"""The README, executed: every fenced Python block, and every ``console`` command whose output is
the same on every run checked against what the README shows. Collected, not listed (tests/docs/
_readme.py says how a block is made runnable), so a new section's blocks are run too.

How blocks run, each in a subprocess of its own (``python`` of this venv, the repo importable):
- against a real nsqd of the module's, ``almanet serve services.example:example_service
  services.greeting_impl:greeting_service`` on it,
  the README's ``localhost:4150``/``4151`` replaced by that nsqd's addresses;
- to the end within ``DEADLINE`` seconds (exit 0, nothing on stderr but almanet's log lines), or,
  for a block that serves or consumes until stopped, until it shows it works (a line on stdout,
  or almanet's ``serving`` log line) and is still running ``GRACE`` seconds later; then it is
  stopped with SIGINT, which must end it cleanly (no traceback);
- where the README shows a block's output in prose comments, ``EXPECTED`` holds the lines.
The plugin's test block (under its mark) is run as a user's project by tests/testing/
test_user_project.py; here its text is checked to be the one that test runs.

Console commands run in one ``bash`` per block, in order (so ``echo $?`` sees the command before),
with stdout and stderr together as a terminal shows them, ``COLUMNS=100``, on a fresh nsqd of
their own (what the Python blocks produce would change what ``consume`` prints), with the
exit code the README's ``# exit N`` comment says. A command that cannot be reproduced from the
README alone is not compared, with its reason (``_readme.why_not_checked``); the count of those
compared has a floor, so a collector that checks nothing fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs import _readme
from tests.support.nsqproc import REPO_ROOT, NsqdProcess, start_nsqd, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEADLINE = 30.0
GRACE = 5.0  # after its first sign of work, time for a block to end by itself
BLOCKS = _readme.python_blocks()
CONSOLE = _readme.console_blocks()
ALMANET_BIN = Path(sys.executable).parent

# Output the README states in comments or prose, by a line of the block that names it.
EXPECTED = {
    'result = await session.call("net.example.greeting", "Aidar")': [
        "Hello, Aidar!",
        "denied: denied",  # str() of an rpc_error raised with no args: its name
        "no answer: not_served",
    ],
    'print((await session.call("net.example.greeting", "Aidar")).payload)': ["Hello, Aidar!"],
    "async for message in messages:": ["{'id': 1}"],  # the first message produced, decoded
}


def _env(nsqd: NsqdProcess, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALMANET_", "XDG_"))}
    env.update(
        ALMANET_NSQD=nsqd.tcp_address,
        ALMANET_NSQD_HTTP=nsqd.http_address,
        PYTHONPATH=str(REPO_ROOT),
        HOME=str(home),
        NO_COLOR="1",
        COLUMNS="100",
        PATH=f"{ALMANET_BIN}{os.pathsep}{env.get('PATH', '')}",
        **extra,
    )
    return env


def _nsqd_like_the_readme() -> NsqdProcess:
    """An nsqd whose HTTP port is its TCP port + 1, as 4150/4151 are: what a session guesses (the
    README's examples give no ``nsqd_http=``). Free ports are probed; a lost race is retried."""
    import socket

    from almanet.testing import NsqProcessError

    for _ in range(20):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        try:
            return start_nsqd(tcp_port=port, http_port=port + 1)
        except NsqProcessError:
            continue  # another process took one of the two meanwhile
    raise AssertionError("found no two free consecutive loopback ports for nsqd")


def _serve_example(nsqd: NsqdProcess, home: Path) -> subprocess.Popen[bytes]:
    """``almanet serve services.example:example_service`` on ``nsqd``, once it answers."""
    import asyncio

    import almanet

    proc = subprocess.Popen(
        # the Quick start's service, and the typed interface's implementation its caller calls
        [
            str(ALMANET_BIN / "almanet"),
            "serve",
            "services.example:example_service",
            "services.greeting_impl:greeting_service",
        ],
        env=_env(nsqd, home),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    async def answers() -> bool:
        async with almanet.new_session(nsqd.tcp_address) as session:
            try:
                return (await session.call("net.example.greeting", "x", timeout=1)).payload == "Hello, x!"
            except TimeoutError:
                return False

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"almanet serve exited {proc.returncode}: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        return asyncio.run(answers())

    wait_until(ready, 20, message="the example service did not answer")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NsqdProcess, Path]]:
    """An nsqd with the Quick start's service on it, for the Python blocks."""
    home = tmp_path_factory.mktemp("readme-home")
    nsqd = _nsqd_like_the_readme()
    service = None
    try:
        service = _serve_example(nsqd, home)
        yield nsqd, home
    finally:
        if service is not None:
            _stop(service)
        nsqd.close()


def _almanet_log(line: str) -> bool:
    return " INFO almanet" in line or " WARNING almanet" in line


@pytest.mark.parametrize("block", BLOCKS, ids=[_readme.block_id(b) for b in BLOCKS])
def test_python_block_runs(block, world, tmp_path: Path) -> None:
    nsqd, home = world
    if _readme.is_the_readme_test(block):
        from tests.testing.test_user_project import readme_test

        assert readme_test() == block.source, "test_user_project.py must run this very block"
        return
    script = _readme.runnable(block, nsqd.tcp_address, nsqd.http_address, BLOCKS[: BLOCKS.index(block)])
    assert not script.missing, f"README line {block.start_line} uses {script.missing}, which no earlier block defines"
    path = tmp_path / "block.py"
    path.write_text(script.source)
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(path)],
            env=_env(nsqd, home),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    stopped = False
    try:

        def done_or_alive() -> bool:
            if proc.poll() is not None:
                return True
            lines = err_path.read_text(errors="replace").splitlines()
            return bool(out_path.read_bytes().strip()) or any(_almanet_log(x) and " serving " in x for x in lines)

        wait_until(done_or_alive, DEADLINE, message=f"README line {block.start_line}: no end and no sign of work")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(GRACE)  # a block that printed on its way to the end gets there
        if proc.poll() is None:  # serves or consumes until stopped: it showed it works, now stop it
            stopped = True
            proc.send_signal(signal.SIGINT)
            proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    before = stderr
    if stopped and stderr.rstrip().endswith("KeyboardInterrupt"):  # Ctrl-C's own traceback, as any program's
        before = stderr.split("Traceback (most recent call last):", 1)[0]
    problems = [line for line in before.splitlines() if line.strip() and not _almanet_log(line)]
    assert proc.returncode == 0 or stopped, f"exit {proc.returncode}:\n{stderr}"
    assert not problems, f"README line {block.start_line} wrote on stderr:\n{stderr}"
    for marker, lines in EXPECTED.items():
        if marker in block.source:
            assert stdout.splitlines()[: len(lines)] == lines, stdout
    if "example_service" in script.uses and "@example_service.procedure" in block.source:
        called = [line for line in stdout.splitlines() if line.startswith("readme: ")]
        assert called, f"the procedures README line {block.start_line} adds were not called:\n{stdout}"


def test_every_python_block_is_collected() -> None:
    """The collector sees what a reader sees: one item per ```python fence of the README."""
    fences = _readme.README.read_text(encoding="utf-8").count("```python\n")
    assert len(BLOCKS) == fences and fences >= 6


def test_the_python_blocks_type_check(tmp_path: Path) -> None:
    """mypy (what ``make typecheck`` runs, here without --strict: the examples leave some types to
    the reader) finds no error in any block, as made runnable."""
    for block in BLOCKS:
        script = _readme.runnable(block, "localhost:4150", "localhost:4151", BLOCKS[: BLOCKS.index(block)])
        (tmp_path / f"readme_line{block.start_line}.py").write_text(script.source)
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nignore_missing_imports = True\n")  # not the project's --strict
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--check-untyped-defs",
            "--no-error-summary",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            *sorted(str(p) for p in tmp_path.glob("readme_line*.py")),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "MYPYPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------------------- console


@pytest.fixture(scope="module")
def console_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NsqdProcess, Path]]:
    home = tmp_path_factory.mktemp("readme-console")
    nsqd = _nsqd_like_the_readme()
    service = None
    try:
        service = _serve_example(nsqd, home)
        yield nsqd, home
    finally:
        if service is not None:
            _stop(service)
        nsqd.close()


CHECKED = [(i, c) for i, block in enumerate(CONSOLE) for c in block if _readme.why_not_checked(c) is None]


def _in_terminal(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 90) -> str:
    """Run ``argv`` on a pseudo-terminal 100 columns wide, as the README's examples were: what
    reaches a terminal (tables, not the JSON a pipe gets), stdout and stderr interleaved."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 100, 0, 0))
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"the README's commands did not finish within {timeout:g}s: {b''.join(chunks)!r}")
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def _run_block(commands: list[_readme.Command], nsqd: NsqdProcess, home: Path, cwd: Path) -> dict[int, tuple[int, str]]:
    """Run the commands in one bash, in order; each one's (exit code, output) by README line."""
    script = ["__last=0"]
    for command in commands:
        text = command.command.replace(_readme.README_TCP, nsqd.tcp_address)
        text = text.replace(_readme.README_HTTP, nsqd.http_address)
        script += [
            f"printf '@@readme %d@@\\n' {command.line}",
            f"(exit $__last); {{ {text} ; }} < /dev/null 2>&1",
            "__last=$?",
            "printf '\\n@@exit %d@@\\n' $__last",
        ]
    output = _in_terminal(["bash", "-c", "\n".join(script)], _env(nsqd, home), cwd)
    results: dict[int, tuple[int, str]] = {}
    for chunk in output.split("@@readme ")[1:]:
        line, _, rest = chunk.partition("@@\n")
        output, _, code = rest.rpartition("\n@@exit ")
        results[int(line)] = (int(code.split("@@")[0]), output)
    return results


@pytest.mark.parametrize("block", sorted({i for i, _ in CHECKED}), ids=lambda i: f"line{CONSOLE[i][0].line}")
def test_console_block_shows_what_it_prints(block: int, console_world, tmp_path: Path) -> None:
    nsqd, home = console_world
    commands = [c for c in CONSOLE[block] if _readme.why_not_checked(c) is None]
    results = _run_block(commands, nsqd, home, tmp_path)
    for command in commands:
        code, output = results[command.line]
        shown = "\n".join(line.rstrip() for line in command.output)
        got = _readme.normalise(output, nsqd.tcp_address, nsqd.http_address).rstrip("\n")
        assert got == shown, f"README line {command.line}: $ {command.command}"
        if command.exit_code is not None:
            assert code == command.exit_code, f"README line {command.line}: $ {command.command}"


def test_enough_console_commands_are_checked() -> None:
    """Most of what the README shows is compared; the rest has a reason each (why_not_checked)."""
    assert len(CHECKED) >= 15, [c.command for _, c in CHECKED]
