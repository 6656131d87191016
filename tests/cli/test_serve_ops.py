"""``almanet serve --http``, ``--log-format json``: health, readiness, metrics and JSON logs.

Real processes against a real nsqd; readiness is polled, never slept for.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.conftest import almanet, call_once, clean_env, nsq_env, start, stop
from tests.support.nsqproc import NsqdProcess, free_port, wait_until

pytestmark = pytest.mark.timeout(30)

TARGET = "tests.assets.ops_service:svc"


def get(url: str) -> tuple[int, str]:
    """(status, body) of a GET; connection refused raises."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metrics(base: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """/metrics parsed by prometheus-client: sample name -> labels -> value."""
    status, text = get(base + "/metrics")
    assert status == 200
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def ready(base: str, proc) -> bool:
    assert proc.poll() is None, f"almanet serve exited with {proc.returncode}: {proc.stderr.read().decode()}"
    try:
        return get(base + "/readyz")[0] == 200
    except OSError:
        return False


def test_health_readiness_and_metrics_of_a_served_module(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    base = f"http://127.0.0.1:{free_port()}"
    server = start("serve", TARGET, "--http", base.removeprefix("http://"), env=env, cwd=tmp_path)
    signalled = 0
    try:
        wait_until(lambda: ready(base, server), 10, message="/readyz never answered 200")
        assert get(base + "/healthz") == (200, "ok\n")
        assert get(base + "/nope")[0] == 404
        before = metrics(base)
        # every procedure's series exist before any call
        assert (
            before["almanet_invocations_total"][(("channel", "RPC"), ("outcome", "ok"), ("procedure", "opstest.pid"))]
            == 0
        )
        assert call_once((fresh_nsqd.tcp_address,), "opstest.pid") == server.pid
        assert call_once((fresh_nsqd.tcp_address,), "opstest.pid") == server.pid
        crash = almanet("call", "opstest.crash", env=env, cwd=tmp_path)
        assert crash.returncode == 1 and b"InternalError" in crash.stderr
        invalid = almanet("call", "opstest.slow", "42", env=env, cwd=tmp_path)
        assert invalid.returncode == 1 and b"ValidationError" in invalid.stderr

        found = metrics(base)
        pid_labels = (("channel", "RPC"), ("procedure", "opstest.pid"))
        total = found["almanet_invocations_total"]
        assert total[(*pid_labels[:1], ("outcome", "ok"), pid_labels[1])] == 2
        assert total[(("channel", "RPC"), ("outcome", "internal_error"), ("procedure", "opstest.crash"))] == 1
        assert total[(("channel", "RPC"), ("outcome", "error"), ("procedure", "opstest.slow"))] == 1
        errors = found["almanet_invocation_errors_total"]
        assert errors[(("channel", "RPC"), ("error", "InternalError"), ("procedure", "opstest.crash"))] == 1
        assert errors[(("channel", "RPC"), ("error", "ValidationError"), ("procedure", "opstest.slow"))] == 1
        assert found["almanet_invocation_duration_seconds_count"][pid_labels] == 2
        buckets = found["almanet_invocation_duration_seconds_bucket"]
        assert buckets[(*pid_labels[:1], ("le", "+Inf"), pid_labels[1])] == 2
        assert found["almanet_invocations_in_flight"][pid_labels] == 0
        assert found["almanet_nsqd_up"][(("nsqd", fresh_nsqd.tcp_address),)] == 1
        assert found["almanet_nsqd_subscriptions"][(("nsqd", fresh_nsqd.tcp_address),)] >= 3
        assert found["almanet_ready"][()] == 1

        # SIGTERM with an invocation in flight: /readyz says 503 through the drain, /healthz 200
        marker = tmp_path / "started"
        caller = start("call", "opstest.slow", json.dumps(str(marker)), "--timeout", "10", env=env, cwd=tmp_path)
        wait_until(marker.exists, 5, message="the slow procedure did not start")
        assert metrics(base)["almanet_invocations_in_flight"][(("channel", "RPC"), ("procedure", "opstest.slow"))] == 1
        server.send_signal(signal.SIGTERM)
        signalled = signal.SIGTERM
        wait_until(lambda: get(base + "/readyz") == (503, "draining\n"), 5, message="/readyz did not turn 503")
        assert get(base + "/healthz")[0] == 200
        code, out, err = stop(caller, 0)
        assert code == 0 and out.strip() == '"done"', err
    finally:
        code, _, err = stop(server, 0 if signalled else signal.SIGTERM)  # a second SIGTERM would cut the drain
    assert code == 0, err
    with pytest.raises(OSError):
        get(base + "/healthz")  # closed with the process


def test_readyz_is_503_while_starting(tmp_path: Path) -> None:
    """An nsqd that does not answer yet: the endpoint is up (healthz 200) and /readyz 503 "starting"."""
    import socket

    listener = socket.socket()  # accepts TCP but never speaks NSQ: the service's join waits on it
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    base = f"http://127.0.0.1:{free_port()}"
    env = clean_env(tmp_path, ALMANET_NSQD=address)
    server = start("serve", TARGET, "--http", base.removeprefix("http://"), env=env, cwd=tmp_path)
    try:

        def up() -> bool:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                return get(base + "/healthz")[0] == 200
            except OSError:
                return False

        wait_until(up, 10, message="/healthz never answered")
        assert get(base + "/readyz") == (503, "starting\n")
    finally:
        stop(server, signal.SIGKILL)
        listener.close()


def test_http_address_errors_exit_2(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    bad = almanet("serve", TARGET, "--http", "nowhere", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and b"--http 'nowhere'" in bad.stderr
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        busy = almanet("serve", TARGET, "--http", f"127.0.0.1:{port}", env=env, cwd=tmp_path)
    finally:
        taken.close()
    assert busy.returncode == 2, busy.stderr
    assert f"--http 127.0.0.1:{port}: cannot listen there".encode() in busy.stderr
    (tmp_path / "almanet.toml").write_text('[log]\nformat = "xml"\n')
    config = almanet("serve", TARGET, env=env, cwd=tmp_path)
    assert config.returncode == 2 and b'log.format must be "text" or "json"' in config.stderr


def test_log_format_json_prints_only_json_lines(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    (tmp_path / "almanet.toml").write_text('[log]\nformat = "json"\n')  # the config's key, as --log-format
    server = start("serve", TARGET, env=env, cwd=tmp_path)
    try:
        wait_until(lambda: call_once((fresh_nsqd.tcp_address,), "opstest.pid") == server.pid, 10, message="not serving")
        assert almanet("call", "opstest.crash", env=env, cwd=tmp_path).returncode == 1
    finally:
        code, _, err = stop(server, signal.SIGTERM)
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines()]  # every line is JSON, or this raises
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    messages = [line["message"] for line in lines]
    assert "ready" in messages and "stopped" in messages
    failure = next(line for line in lines if line["message"].startswith("procedure opstest.crash failed"))
    assert failure["level"] == "error" and failure["uri"] == "opstest.crash"
    assert failure["invocation_id"] in failure["message"] and "ValueError: broken on purpose" in failure["exception"]
    text = almanet("serve", TARGET, "--log-format", "text", "--nsqd", "127.0.0.1:1", env=env, cwd=tmp_path)
    assert text.returncode == 4 and not text.stderr.startswith(b"{")  # --log-format wins over the file


def test_a_lost_nsqd_turns_readyz_503_and_counts_a_reconnect(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    base = f"http://127.0.0.1:{free_port()}"
    server = start("serve", TARGET, "--http", base.removeprefix("http://"), env=env, cwd=tmp_path)
    nsqd = (("nsqd", fresh_nsqd.tcp_address),)
    try:
        wait_until(lambda: ready(base, server), 10, message="/readyz never answered 200")
        fresh_nsqd.kill()
        wait_until(lambda: get(base + "/readyz")[0] == 503, 10, message="/readyz stayed 200 with nsqd gone")
        status, why = get(base + "/readyz")
        assert status == 503 and why.startswith("waiting for: _rpc_.") and fresh_nsqd.tcp_address in why
        assert metrics(base)["almanet_nsqd_up"][nsqd] == 0
        fresh_nsqd.restart()
        wait_until(lambda: ready(base, server), 20, message="/readyz did not come back after nsqd did")
        found = metrics(base)
        assert found["almanet_nsqd_up"][nsqd] == 1
        assert found["almanet_nsqd_reconnects_total"][nsqd] == found["almanet_nsqd_subscriptions"][nsqd] >= 3
    finally:
        code, _, err = stop(server, signal.SIGTERM)
    assert code == 0, err


def test_http_without_prometheus_client_exits_2_naming_the_extra(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    """prometheus-client made unimportable for the child (a package of that name that refuses to load)."""
    shadow = tmp_path / "shadow" / "prometheus_client"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed here')\n")
    env = nsq_env(tmp_path, fresh_nsqd)
    env["PYTHONPATH"] = f"{shadow.parent}{os.pathsep}{env['PYTHONPATH']}"
    result = almanet("serve", TARGET, "--http", f"127.0.0.1:{free_port()}", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert b"--http needs prometheus_client, which is not installed: pip install 'almanet[ops]'" in result.stderr
