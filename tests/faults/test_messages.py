"""Low-level text must not reach the user: each fault is told in words that name the fix.

An HTTP port given for nsqd's TCP port, a connection nsqd closed, a service that is not serving
yet, /stats that could not be read, a procedure that failed: each has a test against real
processes (or, for the pure report, real data shapes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import almanet
from tests.cli.conftest import almanet as run_cli
from tests.cli.conftest import clean_env, nsq_env
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.support.nsqproc import NsqdProcess


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, name: str = "almanet") -> list[str]:
        return [r.getMessage() for r in self.records if r.name.startswith(name)]


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("almanet")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_nsqd_http_port_given_as_tcp_is_named(nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALMANET_NSQD=nsqd.http_address)
    result = run_cli("produce", "faults_http", '"x"', env=env, cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 4, err
    assert "frame size" not in err and "out of bounds" not in err
    assert "HTTP" in err and nsqd.http_address in err and "TCP" in err, err


def test_a_connection_closed_by_nsqd_says_so(fresh_nsqd: NsqdProcess, records: _Records) -> None:
    async def scenario() -> None:
        async with joined(fresh_nsqd.tcp_address) as session, session.consume("faults_lost", "c") as messages:
            assert messages is not None
            await asyncio.to_thread(fresh_nsqd.stop)  # graceful: nsqd closes its connections
            await wait_for_async(lambda: any("lost faults_lost/c" in m for m in records.messages()), 10)

    run(scenario(), timeout=20)
    (line,) = [m for m in records.messages() if "lost faults_lost/c" in m][:1]
    # A clean close (FIN) says nsqd closed it; a close with our last command still unread in its
    # socket is a reset (RST) from the kernel, which says so. Either way a reason, never "None".
    assert ": None" not in line, line
    assert "nsqd closed the connection (stopping or restarting?)" in line or "Connection reset by peer" in line, line


def test_serve_with_the_broker_down_never_says_serving(tmp_path: Path) -> None:
    env = {**nsq_env(tmp_path), "ALMANET_NSQD": "127.0.0.1:1"}
    result = run_cli("serve", "tests.assets.services_ok:svc", env=env, cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 4, err
    assert "serving on" not in err and "serving" not in err.lower(), err


def test_services_without_stats_says_unknown() -> None:
    from almanet._wire.protocol import decode_discovery
    from almanet.cli.services import build_report

    instance = decode_discovery(
        {"client": "a" * 32, "version": 1, "routes": ["net.example.greeting/RPC"], "procedures": []}
    )
    assert instance is not None
    report = build_report([instance], {}, ["cannot reach http://127.0.0.1:1/stats?format=json"])
    (entry,) = report["procedures"]
    assert (entry["subscribers"], entry["depth"], entry["in_flight"]) == (None, None, None)
    assert entry["problems"] == ["nsqd stats unknown"]


def _failing_service(prepath: str, address: str) -> tuple[almanet.Service, int]:
    service = almanet.new_service(address, prepath=prepath)

    @service.procedure
    async def fail(payload: Any) -> None:
        raise KeyError("missing")  # the line the log must name

    return service, fail.__code__.co_firstlineno + 2


def test_a_failing_procedure_log_line_names_file_and_line(
    nsqd: NsqdProcess, unique_name: Callable[..., str], records: _Records
) -> None:
    service, line = _failing_service(unique_name("logs"), nsqd.tcp_address)

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.InternalError):
                await session.call(f"{service.prepath}.fail", None, timeout=10)

    run(scenario(), timeout=20)
    (message,) = [m for m in records.messages("almanet._service") if "failed on invocation" in m]
    assert f"test_messages.py:{line}" in message and "KeyError" in message, message
