"""The CLI at its edges: a second Ctrl-C, a closed stdout, and errors that say what is wrong.

Each runs real ``almanet`` processes against a real nsqd; readiness is polled, never slept for.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import ALMANET, almanet, nsq_env, start, stop
from tests.support.nsqproc import NsqdProcess, wait_until

pytestmark = pytest.mark.timeout(30)


def _serve_logging_to(path: Path, env: dict[str, str], cwd: Path, *targets: str) -> subprocess.Popen[bytes]:
    """``almanet serve`` with stderr in a file, so that a test can wait for a line while it runs."""
    with path.open("wb") as log:
        return subprocess.Popen(
            [*ALMANET, "serve", *targets], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )


def _log_has(path: Path, text: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"exited with {proc.returncode}: {path.read_text()}")
    return text in path.read_text()


def test_second_sigint_while_draining_exits_130_without_a_traceback(nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = nsq_env(tmp_path, nsqd)
    log = tmp_path / "serve.log"
    server = _serve_logging_to(log, env, tmp_path, "tests.assets.services_ok:svc")
    marker = tmp_path / "started"
    caller = None
    try:
        wait_until(lambda: _log_has(log, "ready", server), 10, message="serve did not start")
        caller = start("call", "clitest.slow", json.dumps(str(marker)), "--timeout", "10", env=env, cwd=tmp_path)
        wait_until(marker.exists, 5, message="the slow procedure did not start")
        server.send_signal(signal.SIGINT)
        wait_until(lambda: _log_has(log, "draining 1 invocations", server), 5, message="no drain")
        server.send_signal(signal.SIGINT)  # the slow procedure takes 1 s: this one lands in the drain
        code = server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if caller is not None:
            stop(caller, signal.SIGKILL)
    err = log.read_text()
    assert code == 130, err
    assert "stopped at once" in err
    assert "Traceback" not in err and "never retrieved" not in err, err


def test_consume_into_a_closed_pipe_exits_0_quietly_and_requeues_the_rest(
    nsqd: NsqdProcess, tmp_path: Path, unique_name
) -> None:
    """``almanet consume T | head -1``: more than a pipe holds, so a write fails once the reader is gone."""
    import asyncio

    import almanet as lib

    topic, total = unique_name(), 300
    body = "x" * 1000  # 300 kB: well over a pipe's 64 kB buffer

    async def publish() -> None:
        async with lib.new_session(nsqd.tcp_address) as session:
            await session.produce_many(topic, [{"n": i, "pad": body} for i in range(total)])

    asyncio.run(publish())
    consumer = start("consume", topic, "--channel", "audit", env=nsq_env(tmp_path, nsqd), cwd=tmp_path)
    assert consumer.stdout is not None
    first = json.loads(consumer.stdout.readline())
    assert first["n"] == 0
    consumer.stdout.close()  # what head does after its line
    code = consumer.wait(15)
    err = consumer.stderr.read().decode()  # type: ignore[union-attr]
    assert (code, err) == (0, "")
    # nothing is left in flight until nsqd's msg-timeout (60 s): what was not printed is back now
    channel = nsqd.channel_stats(topic, "audit")
    assert channel is not None
    assert channel["in_flight_count"] == 0 and channel["timeout_count"] == 0
    assert total - 70 <= channel["depth"] < total  # ~64 kB were taken by the pipe and finished


def test_services_table_prints_unknown_when_stats_fail(nsqd: NsqdProcess, tmp_path: Path, serve) -> None:
    env = nsq_env(tmp_path, nsqd)
    serve(env, "tests.assets.services_ok:svc")
    result = almanet("services", "--timeout", "0.5", env={**env, "ALMANET_NSQD_HTTP": "127.0.0.1:1"}, cwd=tmp_path)
    out = result.stdout.decode()
    assert result.returncode == 4
    assert "unknown" in out, out
    row = next(line for line in out.splitlines() if "clitest.place" in line)
    assert " 0 " not in row, row
