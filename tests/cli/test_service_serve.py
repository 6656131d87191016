"""``Service.serve()``, a program's own entry point, reads the configuration as ``almanet serve`` does.

``python -m services.example`` is what the README offers beside ``almanet serve``: it must find
its nsqd from $ALMANET_NSQD or ./almanet.toml, and a broker that is down is one line, exit 4.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import call_once, clean_env, stop
from tests.support.nsqproc import NsqdProcess, free_port, wait_until

pytestmark = pytest.mark.timeout(30)


def _example(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.example"],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _serves(proc: subprocess.Popen[bytes], nsqd: NsqdProcess) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            return call_once((nsqd.tcp_address,), "net.example.greeting", "Ada") == "Hello, Ada!"
        except TimeoutError:
            return False

    wait_until(ready, 15, message="python -m services.example did not answer")


def test_serve_reads_the_environment(nsqd: NsqdProcess, tmp_path: Path) -> None:
    proc = _example(clean_env(tmp_path, ALMANET_NSQD=nsqd.tcp_address), tmp_path)
    try:
        _serves(proc, nsqd)
    finally:
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert nsqd.tcp_address in err and "Traceback" not in err


def test_serve_reads_almanet_toml(nsqd: NsqdProcess, tmp_path: Path) -> None:
    (tmp_path / "almanet.toml").write_text(f'[nsq]\nnsqd = ["{nsqd.tcp_address}"]\n')
    proc = _example(clean_env(tmp_path), tmp_path)
    try:
        _serves(proc, nsqd)
    finally:
        code, _, err = stop(proc, signal.SIGINT)
    assert code == 0, err


def test_serve_with_the_broker_down_is_one_line(tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"
    proc = _example(clean_env(tmp_path, ALMANET_NSQD=closed), tmp_path)
    code, err = proc.wait(20), proc.communicate()[1].decode()
    lines = err.strip().splitlines()
    assert code == 4, err
    assert len(lines) == 1 and lines[0].startswith("broker unavailable: "), err
    assert closed in lines[0] and "ALMANET_NSQD" in lines[0], err


def test_serve_with_a_bad_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "almanet.toml").write_text("[nsq]\nnsqd = 5\n")
    proc = _example(clean_env(tmp_path), tmp_path)
    code, err = proc.wait(20), proc.communicate()[1].decode()
    assert code == 2, err
    assert "Traceback" not in err and "almanet.toml" in err and len(err.strip().splitlines()) == 1, err


def test_serve_reads_serve_http_and_log_format(nsqd: NsqdProcess, tmp_path: Path) -> None:
    """``serve.http`` and ``log.format`` in almanet.toml apply to ``Service.serve()`` too."""
    import json

    from tests.cli.test_serve_ops import get, metrics

    port = free_port()
    (tmp_path / "almanet.toml").write_text(
        f'[nsq]\nnsqd = ["{nsqd.tcp_address}"]\n[serve]\nhttp = "127.0.0.1:{port}"\n[log]\nformat = "json"\n'
    )
    proc = _example(clean_env(tmp_path), tmp_path)
    try:
        _serves(proc, nsqd)
        # answered calls come before readiness: the discovery subscriptions are made after the procedures'
        wait_until(lambda: get(f"http://127.0.0.1:{port}/readyz") == (200, "ready\n"), 10, message="never ready")
        total = metrics(f"http://127.0.0.1:{port}")["almanet_invocations_total"]
        assert total[(("channel", "RPC"), ("outcome", "ok"), ("procedure", "net.example.greeting"))] >= 1
    finally:
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert [json.loads(line)["level"] for line in err.splitlines()]  # JSON, every line
