"""``almanet call`` says why it timed out, with one exit code per reason; ``almanet purge``.

Real processes throughout: nsqd, ``almanet serve`` of tests/assets/services_rpc.py (one invocation
at a time, held until the test releases it), a broken replier process, and the CLI itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cli.conftest import ALMANET, REPO_ROOT, almanet, nsq_env, stop
from tests.support.nsqproc import NsqdProcess, free_port, wait_until

SERVICE = "tests.assets.services_rpc:svc"


def _nap(tmp_path: Path, mark: str) -> str:
    return json.dumps({"mark": str(tmp_path / mark), "release": str(tmp_path / "release")})


def _call_in_background(env: dict[str, str], tmp_path: Path, mark: str, timeout: float) -> subprocess.Popen[bytes]:
    """``almanet call clirpc.nap`` left running (the test stops it)."""
    argv = [*ALMANET, "call", "clirpc.nap", _nap(tmp_path, mark), "--timeout", str(timeout)]
    return subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _idle(nsqd: NsqdProcess, topic: str) -> bool:
    stats = nsqd.topic_stats(topic) or {}
    channels = stats.get("channels") or []
    return not any(c["depth"] or c["in_flight_count"] for c in channels) and not stats.get("depth")


def test_still_running_exits_7(fresh_nsqd: NsqdProcess, tmp_path: Path, serve: Callable[..., Any]) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    serve(env, SERVICE, ready_uri="clirpc.whoami")
    result = almanet("call", "clirpc.nap", _nap(tmp_path, "a"), "--timeout", "0.5", env=env, cwd=tmp_path)
    (tmp_path / "release").write_text("")
    assert result.returncode == 7, result.stderr
    assert result.stderr.decode().strip() == (
        "timeout (running): no reply from clirpc.nap within 0.5s: delivered and still running (1 in flight on"
        " 1 instance, 0 redeliveries so far); the procedure takes longer than the timeout"
    )


def test_queued_exits_6_and_the_queued_call_never_runs(
    fresh_nsqd: NsqdProcess, tmp_path: Path, serve: Callable[..., Any]
) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    serve(env, SERVICE, ready_uri="clirpc.whoami")
    first = _call_in_background(env, tmp_path, "a", 30)
    try:
        wait_until((tmp_path / "a").exists, 10, message="the first call did not start")
        result = almanet("call", "clirpc.nap", _nap(tmp_path, "b"), "--timeout", "0.5", env=env, cwd=tmp_path)
        assert result.returncode == 6, result.stderr
        assert result.stderr.decode().strip() == (
            "timeout (queued): no reply from clirpc.nap within 0.5s: queued, 1 invocation waits in nsqd for"
            " 1 instance (1 in flight); start more instances or raise max_concurrency"
        )
        (tmp_path / "release").write_text("")
        assert first.wait(timeout=10) == 0
    finally:
        stop(first)
    wait_until(lambda: _idle(fresh_nsqd, "_rpc_.clirpc.nap"), 10, message="the queued invocation stayed")
    assert not (tmp_path / "b").exists()  # delivered after its deadline: finished unrun
    report = json.loads(almanet("services", "--json", env=env, cwd=tmp_path).stdout)
    nap = next(p for p in report["procedures"] if p["uri"] == "clirpc.nap")
    assert nap["stale"] == 1 and "1 stale invocations dropped unrun" in nap["problems"]


def test_a_call_that_reached_the_service_past_its_deadline_says_expired_and_exits_9(
    fresh_nsqd: NsqdProcess, tmp_path: Path, serve: Callable[..., Any]
) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    serve(env, SERVICE, ready_uri="clirpc.whoami")
    result = almanet("call", "clirpc.nap", _nap(tmp_path, "a"), "--timeout", "0.0001", env=env, cwd=tmp_path)
    assert result.returncode == 9, result.stderr
    stderr = result.stderr.decode().strip()
    assert stderr.startswith("timeout (expired): no reply from clirpc.nap within 0.0001s: expired, dropped unrun by")
    assert re.search(r"past its caller's deadline \(\d+ ms ago\)", stderr) and "reply was lost" not in stderr
    assert not (tmp_path / "a").exists()  # never ran
    # the notice went to the caller's reply topic, which left with the caller: nothing stays
    wait_until(
        lambda: not [t for t in fresh_nsqd.topics() if t.startswith("_rpc_._reply_.")],
        10,
        message="a reply topic outlived its caller",
    )


def test_reply_lost_exits_8(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    replier = subprocess.Popen(
        [sys.executable, "-m", "tests.assets.bad_replier", fresh_nsqd.tcp_address, "clirpc.lost"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert replier.stdout is not None and replier.stdout.readline() == b"ready\n"
        result = almanet("call", "clirpc.lost", "--timeout", "0.5", env=env, cwd=tmp_path)
    finally:
        stop(replier)
    assert result.returncode == 8, result.stderr
    message = result.stderr.decode().strip().splitlines()[-1]  # after the session's warning line
    assert message.startswith(
        "timeout (reply lost): no reply from clirpc.lost within 0.5s: handled, but the reply could not be read"
        " (reply keys are ['call_id', 'extra', 'is_error', 'payload']"
    )


def test_unknown_exits_3_and_says_what_could_not_be_read(
    fresh_nsqd: NsqdProcess, tmp_path: Path, serve: Callable[..., Any]
) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    serve(env, SERVICE, ready_uri="clirpc.whoami")
    closed = f"127.0.0.1:{free_port()}"
    blind = {**env, "ALMANET_NSQD_HTTP": closed}
    result = almanet("call", "clirpc.nap", _nap(tmp_path, "a"), "--timeout", "0.3", env=blind, cwd=tmp_path)
    (tmp_path / "release").write_text("")
    assert result.returncode == 3, result.stderr
    assert result.stderr.decode().strip() == (
        f"timeout (unknown): no reply from clirpc.nap within 0.3s; why is unknown: nsqd {fresh_nsqd.tcp_address}:"
        " its HTTP address is unknown (give it with nsqd_http= or nsq.nsqd_http)"
    )


def test_purge_asks_first_then_deletes_the_backlog(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    (tmp_path / "queue.toml").write_text("[rpc]\nfail_fast = false\n")
    for uri in ("clirpc.gone", "clirpc.old"):
        queued = almanet("call", uri, "--timeout", "0.2", "--config", "queue.toml", env=env, cwd=tmp_path)
        assert queued.returncode == 5, queued.stderr
    http = fresh_nsqd.http_address
    plan = f"delete topic _rpc_.clirpc.gone on {http} (1 invocation waiting)\n"

    declined = almanet("purge", "clirpc.gone", "-o", "table", env=env, cwd=tmp_path, input=b"n\n")
    assert declined.returncode == 0, declined.stderr
    assert declined.stdout.decode() == plan + "nothing purged\n"
    assert "_rpc_.clirpc.gone" in fresh_nsqd.topics()

    unanswered = almanet("purge", "clirpc.gone", env=env, cwd=tmp_path, input=b"")
    assert unanswered.returncode == 2
    assert "pass --yes to purge without asking" in unanswered.stderr.decode()

    done = almanet("purge", "clirpc.gone", "-o", "table", env=env, cwd=tmp_path, input=b"y\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == plan + "purged: 1 of 1 steps done, 1 invocations dropped\n"
    assert "_rpc_.clirpc.gone" not in fresh_nsqd.topics()

    stale = almanet("purge", "--stale", "--yes", "-o", "table", env=env, cwd=tmp_path)
    assert stale.returncode == 0, stale.stderr
    assert stale.stdout.decode() == (
        f"delete topic _rpc_.clirpc.old on {http} (1 invocation waiting)\n"
        "purged: 1 of 1 steps done, 1 invocations dropped\n"
    )
    assert "_rpc_.clirpc.old" not in fresh_nsqd.topics()
    again = almanet("purge", "--stale", "--yes", "-o", "table", env=env, cwd=tmp_path)
    assert again.stdout.decode() == "nothing to purge: no RPC topic has a backlog without a subscriber\n"


def test_purge_empties_a_served_topic_and_keeps_its_subscribers(
    fresh_nsqd: NsqdProcess, tmp_path: Path, serve: Callable[..., Any]
) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    serve(env, SERVICE, ready_uri="clirpc.whoami")
    first = _call_in_background(env, tmp_path, "a", 30)
    try:
        wait_until((tmp_path / "a").exists, 10, message="the first call did not start")
        # its deadline must come after the purge (two CLI start-ups away, seconds on a loaded
        # machine): a deadline that came first would find it still queued (exit 6), not gone (8)
        queued = _call_in_background(env, tmp_path, "b", 10)

        def depth() -> int:
            channels = (fresh_nsqd.topic_stats("_rpc_.clirpc.nap") or {}).get("channels") or []
            return sum(c["depth"] for c in channels)

        wait_until(lambda: depth() == 1, 10, message="the second call was not queued")
        done = almanet("purge", "clirpc.nap", "--yes", "-o", "table", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode().splitlines()[0] == (
            f"empty channel _rpc_.clirpc.nap/RPC#ephemeral on {fresh_nsqd.http_address} (1 invocation waiting)"
        )
        assert depth() == 0
        (tmp_path / "release").write_text("")
        assert first.wait(timeout=10) == 0
        # its invocation is gone: nothing waits or runs by its deadline, no reply came
        assert queued.wait(timeout=25) == 8
    finally:
        stop(first)
        stop(queued)
    assert not (tmp_path / "b").exists()


def test_purge_refuses_bad_input(tmp_path: Path) -> None:
    env = nsq_env(tmp_path)
    both = almanet("purge", "clirpc.x", "--stale", env=env, cwd=tmp_path)
    assert both.returncode == 2 and "give a URI, or --stale" in both.stderr.decode()
    bad = almanet("purge", "not a uri", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "is invalid" in bad.stderr.decode()


def test_json_errors_and_purge_json(fresh_nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    refused = almanet("call", "clirpc.nobody", "-o", "json", env=env, cwd=tmp_path)
    assert refused.returncode == 5
    error = json.loads(refused.stderr)
    assert error["error"] == "timeout" and error["reason"] == "not_served" and error["exit_code"] == 5
    (tmp_path / "queue.toml").write_text("[rpc]\nfail_fast = false\n")
    almanet("call", "clirpc.gone", "--timeout", "0.2", "--config", "queue.toml", env=env, cwd=tmp_path)
    done = almanet("purge", "clirpc.gone", "--yes", "-o", "json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    step = {"nsqd": fresh_nsqd.http_address, "topic": "_rpc_.clirpc.gone", "action": "delete topic", "channel": None}
    assert json.loads(done.stdout) == {"steps": [{**step, "waiting": 1, "error": None}], "dropped": 1}
