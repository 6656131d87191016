#!/usr/bin/env python3
"""Quick-start demo: serve the example service and call it through the `almanet` CLI.

Run it with `make demo`. It uses the nsqd the CLI would use (ALMANET_NSQD, else localhost:4150);
when nothing listens there it starts the repo's own nsqd for the duration of the demo. Everything
it starts is stopped again in a `finally`, also on Ctrl-C or failure.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NSQD = "localhost:4150"
SERVICE = "services.example:example_service"
PROCEDURE = "net.example.greeting"
READY_TIMEOUT = 20.0
EXPECTED = "Hello, Aidar!"


def say(text: str) -> None:
    print(text, flush=True)


def header(title: str) -> None:
    say(f"\n=== {title} " + "=" * max(3, 66 - len(title)))


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"demo: ALMANET_NSQD must look like host:port, got {address!r}")
    return host or "localhost", int(port)


def is_listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def find_tool(name: str) -> str:
    """The repo's pinned build first, then PATH: the same order the tests use."""
    local = ROOT / ".tools" / "bin" / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise SystemExit(f"demo: {name} not found in .tools/bin nor on PATH; run `make setup`")


def find_almanet() -> str:
    """The CLI installed next to this interpreter (.venv/bin), so the demo runs this checkout."""
    for candidate in (Path(sys.executable).with_name("almanet"), ROOT / ".venv" / "bin" / "almanet"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("almanet")
    if found:
        return found
    raise SystemExit("demo: the `almanet` command is not installed; run `make setup`")


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "<no log>"
    return "\n".join(text) or "<log empty>"


def stop(proc: subprocess.Popen[bytes] | None, sig: signal.Signals, what: str, timeout: float = 10) -> None:
    """Send ``sig`` by PID, wait, and SIGKILL if it does not go away in time."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        say(f"demo: {what} (pid {proc.pid}) ignored {sig.name} for {timeout:g}s; killing it")
        proc.kill()
        proc.wait(timeout=5)


def start_nsqd(host: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """Start a throwaway nsqd on host:port and wait (with a deadline) until it accepts TCP."""
    data = workdir / "nsqd-data"
    data.mkdir()
    log_path = workdir / "nsqd.log"
    cmd = [
        find_tool("nsqd"),
        f"--tcp-address={host}:{port}",
        "--http-address=127.0.0.1:0",
        "--broadcast-address=127.0.0.1",
        f"--data-path={data}",
    ]
    say(f"demo: no nsqd at {host}:{port}; starting one: {shlex.join(cmd)}")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not is_listening(host, port):
        if proc.poll() is not None:
            raise SystemExit(f"demo: nsqd exited with code {proc.returncode}:\n{tail(log_path)}")
        if time.monotonic() > deadline:
            stop(proc, signal.SIGTERM, "nsqd")
            raise SystemExit(f"demo: nsqd did not listen on {host}:{port} within 10s:\n{tail(log_path)}")
        time.sleep(0.05)
    say(f"demo: nsqd is up (pid {proc.pid})")
    return proc


def run_cli(
    almanet: str, args: Sequence[str], env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [almanet, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for_service(almanet: str, service: subprocess.Popen[bytes], env: dict[str, str], log_path: Path) -> None:
    """Poll a real call until it succeeds: proves the service is subscribed, not just started."""
    probe = ["call", PROCEDURE, '"Aidar"', "--timeout", "2"]
    deadline = time.monotonic() + READY_TIMEOUT
    last = ""
    while True:
        if service.poll() is not None:
            raise SystemExit(f"demo: `almanet serve` exited with code {service.returncode}:\n{tail(log_path)}")
        try:
            result = run_cli(almanet, probe, env, timeout=10)
            if result.returncode == 0 and EXPECTED in result.stdout:
                return
            last = (result.stderr or result.stdout).strip()
        except subprocess.TimeoutExpired:
            last = "probe call did not return within 10s"
        if time.monotonic() > deadline:
            raise SystemExit(
                f"demo: the service did not answer within {READY_TIMEOUT:g}s.\n"
                f"last probe: {last}\nservice log:\n{tail(log_path)}"
            )
        time.sleep(0.2)


def show(almanet: str, args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one CLI command and print it the way a reader would type it, with its output."""
    header(" ".join(["almanet", *(shlex.quote(a) for a in args)]))
    result = run_cli(almanet, args, env)
    if result.stdout:
        say("stdout: " + result.stdout.rstrip())
    if result.stderr:
        say("stderr: " + result.stderr.rstrip())
    say(f"exit code: {result.returncode}")
    return result


def main() -> int:
    address = os.environ.get("ALMANET_NSQD") or DEFAULT_NSQD
    host, port = split_address(address)
    almanet = find_almanet()
    env = {**os.environ, "ALMANET_NSQD": address}

    workdir = Path(tempfile.mkdtemp(prefix="almanet-demo-"))
    nsqd: subprocess.Popen[bytes] | None = None
    service: subprocess.Popen[bytes] | None = None
    try:
        if is_listening(host, port):
            say(f"demo: using the nsqd already listening at {address}")
        else:
            nsqd = start_nsqd(host, port, workdir)

        service_log = workdir / "service.log"
        serve = [almanet, "serve", SERVICE]
        say(f"demo: starting the service: ALMANET_NSQD={address} {shlex.join(['almanet', *serve[1:]])}")
        with service_log.open("wb") as log:
            service = subprocess.Popen(
                serve, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_service(almanet, service, env, service_log)
        say("demo: the service answers")

        ok = show(almanet, ["call", PROCEDURE, '"Aidar"'], env)
        denied = show(almanet, ["call", PROCEDURE, '"guest"'], env)

        header("result")
        success = ok.returncode == 0 and EXPECTED in ok.stdout
        say(f"Aidar: {'OK' if success else 'FAILED'} (expected {EXPECTED!r} on stdout)")
        if denied.returncode != 0 and "denied" in denied.stderr.lower():
            say("guest: OK (refused with a `denied` remote error, non-zero exit)")
        else:
            say("guest: unexpected (wanted a `denied` error on stderr and a non-zero exit)")
        return 0 if success else 1
    finally:
        stop(service, signal.SIGINT, "almanet serve")
        stop(nsqd, signal.SIGTERM, "nsqd")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
