"""Helpers for the CLI tests: an isolated environment, ``almanet`` as a subprocess, a served service."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.nsqproc import REPO_ROOT, NsqdProcess, wait_until

ALMANET = [sys.executable, "-m", "almanet.cli"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """os.environ without ALMANET_* / XDG, HOME in tmp (no user config), the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALMANET_", "XDG_", "_ALMANET_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), PYTHONPATH=str(REPO_ROOT), COLUMNS="200", NO_COLOR="1")
    env.update(extra)
    return env


def nsq_env(tmp_path: Path, *nsqds: NsqdProcess, **extra: str) -> dict[str, str]:
    return clean_env(
        tmp_path,
        ALMANET_NSQD=",".join(n.tcp_address for n in nsqds),
        ALMANET_NSQD_HTTP=",".join(n.http_address for n in nsqds),
        **extra,
    )


def almanet(*args: str, env: dict[str, str], cwd: Path, input: bytes | None = None, timeout: float = 10) -> Any:
    """Run ``almanet ARGS`` to the end; stdout/stderr as bytes. No ``input``: stdin is /dev/null, not pytest's."""
    stdin = subprocess.DEVNULL if input is None else None
    return subprocess.run(
        [*ALMANET, *args], env=env, cwd=cwd, input=input, stdin=stdin, capture_output=True, timeout=timeout, check=False
    )


def start(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*ALMANET, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 10) -> tuple[int, str, str]:
    """Signal, wait, collect output; SIGKILL if it does not exit in time (then the test fails)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"process did not exit after signal {sig}: {err.decode()}") from None
    return proc.returncode, out.decode(), err.decode()


def call_once(addresses: tuple[str, ...], uri: str, payload: Any = None, timeout: float = 0.5) -> Any:
    """A call from the test process itself: used to wait for readiness without sleeping."""
    import almanet

    async def main() -> Any:
        async with almanet.new_session(*addresses) as session:
            return (await session.call(uri, payload, timeout=timeout)).payload

    return asyncio.run(main())


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``serve(env, "module:attr", ready_uri=...)``: ``almanet serve`` running and answering ``ready_uri``."""
    procs: list[subprocess.Popen[bytes]] = []

    def factory(env: dict[str, str], *targets: str, ready_uri: str = "clitest.whoami") -> subprocess.Popen[bytes]:
        proc = start("serve", *targets, env=env, cwd=tmp_path)
        procs.append(proc)
        addresses = tuple(env["ALMANET_NSQD"].split(","))

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"almanet serve exited with {proc.returncode}: {proc.stderr.read().decode()}")
            try:
                call_once(addresses, ready_uri)
            except TimeoutError:
                return False
            except Exception as exc:  # a remote error means it is served
                return type(exc).__name__ != "broker_error"
            return True

        wait_until(ready, timeout=10, message="almanet serve did not answer")
        return proc

    yield factory
    for proc in procs:
        with contextlib.suppress(AssertionError):
            stop(proc, signal.SIGKILL)
