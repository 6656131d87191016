"""``almanet serve --workers N`` and ``--reload``: a supervisor of real worker processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.cli.conftest import almanet, call_once, clean_env, nsq_env, start, stop
from tests.cli.test_serve_ops import get, metrics
from tests.support.nsqproc import NsqdProcess, free_port, wait_until

pytestmark = pytest.mark.timeout(60)

TARGET = "tests.assets.ops_service:svc"


def pids_answering(nsqd: NsqdProcess, calls: int = 12) -> set[int]:
    return {call_once((nsqd.tcp_address,), "opstest.pid", timeout=2) for _ in range(calls)}


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's reaping depends on the machine's init)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_two_workers_answer_a_killed_one_is_replaced_and_sigterm_stops_all(
    fresh_nsqd: NsqdProcess, tmp_path: Path
) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    base = f"http://127.0.0.1:{free_port()}"
    supervisor = start("serve", TARGET, "--workers", "2", "--http", base[7:], env=env, cwd=tmp_path)
    signalled = False
    try:

        def ready() -> bool:
            assert supervisor.poll() is None, supervisor.stderr.read().decode()
            try:
                return get(base + "/readyz")[0] == 200
            except OSError:
                return False

        wait_until(ready, 20, message="the workers never became ready")
        seen: set[int] = set()
        wait_until(lambda: len(seen.__ior__(pids_answering(fresh_nsqd))) == 2, 20, message="not two pids answered")
        assert supervisor.pid not in seen
        # the supervisor's /metrics merges both workers' series
        total = metrics(base)["almanet_invocations_total"]
        ok = total[(("channel", "RPC"), ("outcome", "ok"), ("procedure", "opstest.pid"))]
        assert ok >= 2
        assert metrics(base)["almanet_workers"][()] == 2

        victim = min(seen)
        os.kill(victim, signal.SIGKILL)
        replaced: set[int] = set()

        def replaced_by_a_new_one() -> bool:
            replaced.update(pids_answering(fresh_nsqd, 6))
            return len(replaced - seen) >= 1

        wait_until(replaced_by_a_new_one, 20, message="the killed worker was not replaced")
        wait_until(ready, 20, message="not ready again after the restart")
        assert victim not in pids_answering(fresh_nsqd) and metrics(base)["almanet_worker_restarts_total"][()] == 1
        workers = (seen | replaced) - {victim}
        supervisor.send_signal(signal.SIGTERM)
        signalled = True
    finally:
        code, _, err = stop(supervisor, 0 if signalled else signal.SIGTERM, timeout=20)
    assert code == 0, err
    assert "restarting it in" in err and "every worker drained" in err
    assert not any(alive(pid) for pid in workers)


def test_workers_with_a_bad_target_exit_2(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    result = almanet("serve", "no_such_module:svc", "--workers", "2", env=nsq_env(tmp_path, fresh_nsqd), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert b"cannot import module 'no_such_module'" in result.stderr
    assert almanet("serve", TARGET, "--workers", "0", env=clean_env(tmp_path), cwd=tmp_path).returncode == 2


SOURCE = """
import almanet

svc = almanet.new_service(prepath="reloadtest")


@svc.procedure
async def version(payload: None = None) -> str:
    return "{version}"
"""


def test_reload_serves_an_edited_module_and_keeps_the_old_one_when_an_edit_breaks(
    fresh_nsqd: NsqdProcess, tmp_path: Path
) -> None:
    package = tmp_path / "editable"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "svc.py"
    module.write_text(SOURCE.format(version="v1"))
    env = nsq_env(tmp_path, fresh_nsqd)
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        import subprocess
        import sys

        server = subprocess.Popen(
            [sys.executable, "-m", "almanet.cli", "serve", "editable.svc:svc", "--reload"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )

    def answers(expected: str) -> bool:
        assert server.poll() is None, log.read_text()
        try:
            return call_once((fresh_nsqd.tcp_address,), "reloadtest.version", timeout=1) == expected
        except TimeoutError:
            return False

    try:
        wait_until(lambda: answers("v1"), 20, message="v1 never served")
        module.write_text(SOURCE.format(version="v2"))
        wait_until(lambda: answers("v2"), 20, message="the edit was not served")
        wait_until(lambda: "reload: serving the edited code" in log.read_text(), 10, message="no reload line")
        wait_until(lambda: all(answers("v2") for _ in range(5)), 20, message="the old worker still answers")
        module.write_text(SOURCE.format(version="v3") + "\ndef broken(:\n")
        wait_until(lambda: "the old one keeps serving" in log.read_text(), 20, message="the broken edit not reported")
        assert "importing 'editable.svc' failed: SyntaxError" in log.read_text()
        assert all(answers("v2") for _ in range(3))
        server.send_signal(signal.SIGTERM)
        code = server.wait(20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert code == 0, log.read_text()


def test_workers_of_a_killed_supervisor_drain_and_exit(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    """No --http: workers report readiness only; a supervisor killed with -9 leaves no worker behind."""
    supervisor = start("serve", TARGET, "--workers", "2", env=nsq_env(tmp_path, fresh_nsqd), cwd=tmp_path)
    try:
        seen: set[int] = set()
        wait_until(lambda: len(seen.__ior__(pids_answering(fresh_nsqd))) == 2, 20, message="not two pids answered")
    finally:
        stop(supervisor, signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in seen), 10, message="workers outlived their supervisor")
