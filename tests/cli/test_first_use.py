"""What a new user tripped on (issue 24), each as the user met it: the real ``almanet`` in a
subprocess, against a real nsqd where the command needs one, a closed loopback port where it must
not get that far.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import almanet, call_once, clean_env, nsq_env, start, stop
from tests.support.nsqproc import NsqdProcess, wait_until

pytestmark = pytest.mark.timeout(30)

DEAD_NSQD = "127.0.0.1:1"  # closed: a command that connects exits 4
LONG_URI = "firstuse.warehouse_eu_central.replenishment.forecast_next"  # 57 of the 58 that fit

LONG_SERVICE = f'''
import almanet

svc = almanet.new_service(prepath="{LONG_URI.rsplit(".", 1)[0]}")


@svc.procedure
async def {LONG_URI.rsplit(".", 1)[1]}(payload: None = None) -> str:
    return "ok"
'''


def dead_env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path, ALMANET_NSQD=DEAD_NSQD)


# ------------------------------------------------------------------ --json everywhere


@pytest.mark.parametrize(
    "args",
    [
        ["call", "a.b", '"x"', "--timeout", "1"],
        ["multicall", "a.b", "--timeout", "1"],
        ["produce", "orders", '{"id": 1}'],
        ["purge", "a.b", "--yes"],
    ],
)
def test_json_is_the_older_spelling_of_o_json(tmp_path: Path, args: list[str]) -> None:
    """Accepted, and it means -o json: the broker failure comes back as one JSON object."""
    env = dead_env(tmp_path)
    result = almanet(*args, "--json", env=env, cwd=tmp_path)
    assert b"No such option" not in result.stderr, result.stderr
    assert result.returncode == 4, result.stderr
    error = json.loads(result.stderr.splitlines()[-1])  # purge: a JSON warning per unread nsqd first
    assert all(json.loads(line)["exit_code"] == 4 for line in result.stderr.splitlines())
    assert error["exit_code"] == 4 and error["error"] in ("broker unavailable", "warning")


# ------------------------------------------------------------------ serve the same target twice


def test_serve_the_same_target_twice_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    # the module's import would write this file: it must not happen
    (tmp_path / "noisy.py").write_text(
        "from pathlib import Path\nimport almanet\nPath('imported').write_text('yes')\n"
        "svc = almanet.new_service(prepath='noisy')\n"
    )
    result = almanet("serve", "noisy:svc", "noisy:svc", env=dead_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode().strip() == (
        "error: noisy:svc given more than once; name each service once: almanet serve noisy:svc"
    )
    assert not (tmp_path / "imported").exists()


# ------------------------------------------------------------------ timeouts have an upper bound


@pytest.mark.parametrize("command", ["call", "multicall", "services", "describe"])
def test_a_timeout_over_a_day_is_refused_with_the_bound(tmp_path: Path, command: str) -> None:
    args = [command] + (["a.b"] if command in ("call", "multicall", "describe") else [])
    result = almanet(*args, "--timeout", "1e20", env=dead_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr  # never reached the (dead) broker: that would be 4
    assert result.stderr.decode().strip() == (
        "error: --timeout must be a positive number of seconds, at most 86400 (one day), not 1e+20"
    )
    assert almanet(*args, "--timeout", "86400", "--explain", env=dead_env(tmp_path), cwd=tmp_path).returncode in (
        0,
        2,  # services/describe have no --explain: a usage error about that, not about the timeout
    )


def test_the_library_and_the_config_file_keep_the_same_bound(tmp_path: Path) -> None:
    import asyncio

    import almanet as lib
    from almanet._wire.checks import MAX_TIMEOUT, check_timeout

    assert check_timeout(MAX_TIMEOUT) == MAX_TIMEOUT
    with pytest.raises(lib.invalid_argument, match=r"at most 86400 \(one day\), not 1e\+20"):
        check_timeout(1e20)

    async def session_with(timeout: float) -> None:
        lib.new_session(DEAD_NSQD, default_timeout=timeout)

    with pytest.raises(lib.invalid_argument, match=r"default_timeout must be .* at most 86400"):
        asyncio.run(session_with(1e20))
    (tmp_path / "almanet.toml").write_text("[timeouts]\ncall = 1e20\n")
    result = almanet("config", env=dead_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "timeouts.call must be a positive number of seconds, at most 86400" in (
        result.stderr.decode()
    )


# ------------------------------------------------------------------ against a real nsqd


def test_produce_raw_at_file_sends_the_files_bytes(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    topic = unique_name()
    body = b"\x00binary\xff\nsecond line, not JSON\n"
    (tmp_path / "blob.bin").write_bytes(body)
    sent = almanet("produce", topic, "@blob.bin", "--raw", env=env, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert sent.stderr.decode().strip() == f"produced 1 message to {topic}"
    import asyncio

    import almanet as lib

    async def first() -> bytes:
        async with lib.new_session(nsqd.tcp_address) as session:
            async with session.consume(topic, "check") as messages:
                async for message in messages:
                    await message.commit()
                    return message.raw
        raise AssertionError("no message")

    assert asyncio.run(asyncio.wait_for(first(), 10)) == body
    (tmp_path / "empty.bin").write_bytes(b"")
    empty = almanet("produce", topic, "@empty.bin", "--raw", env=env, cwd=tmp_path)
    assert empty.returncode == 2 and "message file empty.bin is empty" in empty.stderr.decode()


@pytest.fixture
def long_uri_served(nsqd: NsqdProcess, tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "longsvc.py").write_text(LONG_SERVICE)
    env = nsq_env(tmp_path, nsqd)
    proc = start("serve", "longsvc:svc", env=env, cwd=tmp_path)
    try:
        wait_until(lambda: call_once((nsqd.tcp_address,), LONG_URI) == "ok", 10, message="longsvc not ready")
        yield env
    finally:
        stop(proc)


def test_services_table_on_80_columns_keeps_long_uris_whole(long_uri_served: dict[str, str], tmp_path: Path) -> None:
    env = {**long_uri_served, "COLUMNS": "80"}
    result = almanet("services", "-o", "table", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.rstrip() for line in result.stdout.decode().splitlines()]
    assert LONG_URI in lines, result.stdout.decode()  # alone on its line: copied with a triple click
    assert all(len(line) <= 80 for line in lines if LONG_URI not in line)
    assert "…" not in result.stdout.decode()
    wide = almanet("services", "-o", "table", env={**env, "COLUMNS": "200"}, cwd=tmp_path).stdout.decode()
    assert any(LONG_URI in line and "│" in line for line in wide.splitlines())  # wide enough: the table


def test_multicall_of_a_uri_nothing_serves_exits_5_like_call(long_uri_served: dict[str, str], tmp_path: Path) -> None:
    unserved = LONG_URI[:-1]
    multi = almanet("multicall", unserved, "--timeout", "5", env=long_uri_served, cwd=tmp_path)
    single = almanet("call", unserved, "--timeout", "5", env=long_uri_served, cwd=tmp_path)
    assert multi.returncode == single.returncode == 5, (multi.stderr, single.stderr)
    assert multi.stderr == single.stderr
    assert f"did you mean {LONG_URI}?" in multi.stderr.decode()
    served = almanet("multicall", LONG_URI, "--timeout", "0.5", env=long_uri_served, cwd=tmp_path)
    assert served.returncode == 0 and json.loads(served.stdout) == ["ok"]
