"""The NSQ process helpers themselves: every other integration test stands on them."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

from tests.support.nsqproc import NsqdProcess, NsqlookupdProcess, wait_until


def _publish(nsqd: NsqdProcess, topic: str, body: bytes) -> None:
    req = urllib.request.Request(f"http://{nsqd.http_address}/pub?topic={topic}", data=body)
    with urllib.request.urlopen(req, timeout=2) as resp:
        assert resp.read().strip() == b"OK"


def _topic_depth(nsqd: NsqdProcess, topic: str) -> int:
    for t in nsqd.stats()["topics"]:
        if t["topic_name"] == topic:
            return t["depth"]
    raise KeyError(topic)


def test_nsqd_answers_on_loopback(nsqd: NsqdProcess) -> None:
    assert nsqd.running
    assert nsqd.ping()
    assert nsqd.tcp_address.startswith("127.0.0.1:") and nsqd.tcp_port > 0
    assert nsqd.http_address.startswith("127.0.0.1:") and nsqd.http_port > 0
    with socket.create_connection(("127.0.0.1", nsqd.tcp_port), timeout=2):
        pass
    assert nsqd.stats()["version"].startswith("1.3")


def test_topics_lists_channels(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic, channel = unique_name(), unique_name("ch")
    assert topic.startswith("t_") and len(topic) == 10
    for path in (f"/topic/create?topic={topic}", f"/channel/create?topic={topic}&channel={channel}"):
        urllib.request.urlopen(
            urllib.request.Request(f"http://{nsqd.http_address}{path}", method="POST"), timeout=2
        ).close()
    assert nsqd.topics()[topic] == [channel]


def test_kill_and_restart_keep_ports_and_data(fresh_nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    nsqd = fresh_nsqd
    tcp, http, data_dir, old_pid = nsqd.tcp_address, nsqd.http_address, nsqd.data_dir, nsqd.pid
    topic = unique_name()
    _publish(nsqd, topic, b"before the crash")
    # nsqd writes its topic metadata asynchronously: wait for it, or kill -9 may lose the topic.
    wait_until(
        lambda: topic in (data_dir / "nsqd.dat").read_text(),
        timeout=5,
        message=f"topic {topic} persisted in nsqd.dat",
    )

    nsqd.kill()
    assert not nsqd.running
    assert not nsqd.ping()

    same = nsqd.restart()
    assert same is nsqd
    assert nsqd.pid != old_pid
    assert (nsqd.tcp_address, nsqd.http_address, nsqd.data_dir) == (tcp, http, data_dir)
    assert nsqd.ping()
    assert topic in nsqd.topics()


def test_graceful_stop_persists_messages(fresh_nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    topic = unique_name()
    _publish(fresh_nsqd, topic, b"kept across a clean restart")
    fresh_nsqd.stop()
    assert not fresh_nsqd.running
    fresh_nsqd.restart()
    assert _topic_depth(fresh_nsqd, topic) == 1


def test_nsqd_factory_starts_several(nsqd_factory: Callable[..., NsqdProcess]) -> None:
    a, b = nsqd_factory(), nsqd_factory()
    assert a.tcp_address != b.tcp_address
    assert a.ping() and b.ping()


def test_nsqd_registers_with_lookupd(
    nsqlookupd: NsqlookupdProcess,
    nsqd_factory: Callable[..., NsqdProcess],
) -> None:
    assert nsqlookupd.ping()
    nsqd = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])

    def registered() -> bool:
        return any(n["broadcast_address"] == "127.0.0.1" and n["tcp_port"] == nsqd.tcp_port for n in nsqlookupd.nodes())

    wait_until(registered, timeout=5, message=f"nsqd {nsqd.tcp_address} in lookupd /nodes")
