"""``almanet ui`` as a process: its address, its warnings, its exits; and without the ui extra."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import almanet, clean_env, nsq_env, start, stop
from tests.support.nsqproc import NsqdProcess, NsqlookupdProcess, free_port, wait_until
from tests.ui.support import read_url

URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{20,})$")

NO_EXTRA = """
import sys
sys.modules["aiohttp"] = None  # what an environment without the ui extra looks like to an import
sys.argv = ["almanet", "ui", "--nsqd", sys.argv[1]]
import almanet.cli
almanet.cli.main()
"""


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``launch("ui", ..., env=...)`` runs ``almanet`` in tmp_path; whatever a test leaves running is killed."""
    started: list[subprocess.Popen[bytes]] = []

    def run(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = start(*args, env=env, cwd=tmp_path)
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_prints_a_tokened_loopback_address_and_stops_cleanly(
    nsqd: NsqdProcess, tmp_path: Path, launch: Callable[..., subprocess.Popen[bytes]]
) -> None:
    proc = launch("ui", "--port", "0", "-o", "table", env=nsq_env(tmp_path, nsqd))
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()  # the address alone, as a person reads it
        match = URL.match(url)
        assert match, url
        port, token = int(match[1]), match[2]
        assert status_of(url) == 200
        assert status_of(f"http://127.0.0.1:{port}/") == 403
        assert status_of(f"http://127.0.0.1:{port}/?token={token[:-1]}") == 403
    finally:
        code, _, err = stop(proc, signal.SIGINT)
    assert code == 0, err
    assert "warning" not in err
    # piped, the first line is a JSON record; a second run has another token
    again = launch("ui", "--port", "0", env=nsq_env(tmp_path, nsqd))
    try:
        assert again.stdout is not None
        record = json.loads(again.stdout.readline())
    finally:
        code, _, err = stop(again, signal.SIGTERM)
    assert code == 0, err
    assert set(record) == {"url", "host", "port", "token", "read_only"}
    assert record["host"] == "127.0.0.1" and record["read_only"] is False
    assert record["url"] == f"http://127.0.0.1:{record['port']}/?token={record['token']}"
    assert record["token"] != token


def test_another_host_is_warned_about(tmp_path: Path) -> None:
    # nothing listens on that nsqd port: the command warns, then fails to join before it binds anything
    closed = f"127.0.0.1:{free_port()}"
    done = almanet("ui", "--host", "0.0.0.0", "--nsqd", closed, env=clean_env(tmp_path), cwd=tmp_path)
    err = done.stderr.decode()
    assert "warning: listening on 0.0.0.0, not loopback" in err
    assert "can call procedures and publish (--read-only stops that)" in err
    assert done.returncode == 4, err
    done = almanet("ui", "--host", "::", "--read-only", "--nsqd", closed, env=clean_env(tmp_path), cwd=tmp_path)
    assert "warning: listening on ::, not loopback: whoever reaches it with the printed token can see" in (
        done.stderr.decode()
    )
    done = almanet("ui", "--host", "::", "-o", "json", "--nsqd", closed, env=clean_env(tmp_path), cwd=tmp_path)
    warning, error = (json.loads(line) for line in done.stderr.decode().splitlines())
    assert warning["error"] == "warning" and "not loopback" in warning["message"]
    assert error["exit_code"] == 4 and done.returncode == 4


def test_a_busy_port_exits_2_naming_it(nsqd: NsqdProcess, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = almanet("ui", "--port", str(port), env=nsq_env(tmp_path, nsqd), cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_without_the_ui_extra_it_names_the_install_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_EXTRA, f"127.0.0.1:{free_port()}"],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'almanet[ui]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_read_only_page_has_no_writes(
    nsqd: NsqdProcess, tmp_path: Path, launch: Callable[..., subprocess.Popen[bytes]]
) -> None:
    proc = launch("ui", "--port", "0", "--read-only", env=nsq_env(tmp_path, nsqd))
    try:
        url = read_url(proc)
        base, token = url.split("/?token=")
        request = urllib.request.Request(f"{base}/api/settings", headers={"X-Almanet-Token": token})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["read_only"] is True
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    assert "(read-only)" in err


def test_stopping_closes_live_views_and_their_channels(
    nsqd: NsqdProcess,
    tmp_path: Path,
    unique_name: Callable[..., str],
    launch: Callable[..., subprocess.Popen[bytes]],
) -> None:
    import asyncio

    import aiohttp

    topic = unique_name("stopwatch")
    proc = launch("ui", "--port", "0", env=nsq_env(tmp_path, nsqd))
    url = read_url(proc)
    base, token = url.split("/?token=")

    async def watch_until_stopped() -> tuple[str, int | None]:
        async with aiohttp.ClientSession() as client:
            ws = await client.ws_connect(f"{base}/api/watch?topic={topic}&token={token}")
            hello = await ws.receive_json(timeout=5)
            assert hello["channel"] in nsqd.topics()[topic]
            proc.send_signal(signal.SIGINT)
            closing = await ws.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
            return hello["channel"], ws.close_code

    try:
        channel, close_code = asyncio.run(watch_until_stopped())
        proc.wait(timeout=10)  # no second signal: that one would stop it at once (exit 130)
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    assert close_code == 1001
    assert channel not in nsqd.topics()[topic]  # gone by the time the command has exited


def test_ctrl_c_does_not_wait_for_a_pending_call(
    nsqd: NsqdProcess, tmp_path: Path, launch: Callable[..., subprocess.Popen[bytes]]
) -> None:
    import threading

    # without fail-fast, a call nothing serves yet is queued and waits for its timeout
    (tmp_path / "almanet.toml").write_text("[rpc]\nfail_fast = false\n")
    proc = launch("ui", "--port", "0", env=nsq_env(tmp_path, nsqd))
    base, token = read_url(proc).split("/?token=")
    request = urllib.request.Request(
        f"{base}/api/call",
        data=json.dumps({"uri": "uitest.nobody.serves", "timeout": 120}).encode(),
        headers={"X-Almanet-Token": token, "Content-Type": "application/json"},
    )

    def pending_call() -> None:
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except (urllib.error.URLError, ConnectionError, OSError):
            pass  # the server goes away under it: that is the point

    caller = threading.Thread(target=pending_call, daemon=True)
    caller.start()
    wait_until(lambda: _call_pending(nsqd), timeout=5, message="the call never reached nsqd")
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=8)  # cut after the 2 s shutdown grace, not after the call's 120 s
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    caller.join(10)


def _call_pending(nsqd: NsqdProcess) -> bool:
    topic = nsqd.topic_stats("_rpc_.uitest.nobody.serves")
    return topic is not None and topic["depth"] + topic["message_count"] > 0


def test_with_nsqlookupd_only_it_reads_the_nsqd_registered_there(
    nsqlookupd: NsqlookupdProcess,
    nsqd_factory: Callable[..., NsqdProcess],
    tmp_path: Path,
    launch: Callable[..., subprocess.Popen[bytes]],
) -> None:
    nsqd = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    wait_until(lambda: nsqlookupd.nodes(), timeout=5, message="nsqd never registered with nsqlookupd")
    proc = launch("ui", "--port", "0", env=clean_env(tmp_path, ALMANET_LOOKUPD=nsqlookupd.http_address))
    try:
        base, token = read_url(proc).split("/?token=")
        request = urllib.request.Request(f"{base}/api/catalog", headers={"X-Almanet-Token": token})
        with urllib.request.urlopen(request, timeout=10) as response:
            report = json.loads(response.read())
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    assert report["nsqd"] == [nsqd.http_address] and report["errors"] == []
    assert f"almanet ui for the nsqd of nsqlookupd {nsqlookupd.http_address}:" in err
