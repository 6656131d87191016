"""almanet._nsq.http: nsqd /stats and nsqlookupd /lookup, /nodes, and every failure as NSQHTTPError."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from almanet._nsq.http import LookupdHTTPClient, NsqdHTTPClient, NSQHTTPError, producer_address
from tests.support.nsqproc import NsqdProcess, NsqlookupdProcess, wait_until


@contextlib.contextmanager
def http_server(body: bytes, status: int = 200) -> Iterator[str]:
    """A tiny HTTP server answering every GET with ``body``; yields its address."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_nsqd_stats(nsqd: NsqdProcess, unique_name) -> None:
    topic = unique_name()
    import urllib.request

    create = urllib.request.Request(f"http://{nsqd.http_address}/topic/create?topic={topic}", b"")
    with urllib.request.urlopen(create) as response:
        assert response.status == 200
    stats = asyncio.run(NsqdHTTPClient(nsqd.http_address).stats())
    assert stats["version"] and topic in [t["topic_name"] for t in stats["topics"]]
    only = asyncio.run(NsqdHTTPClient(nsqd.http_address).stats(topic=topic))
    assert [t["topic_name"] for t in only["topics"]] == [topic]


def test_lookupd_nodes(nsqlookupd: NsqlookupdProcess, nsqd_factory) -> None:
    nsqd = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    client = LookupdHTTPClient(nsqlookupd.http_address)
    nodes = wait_until(lambda: asyncio.run(client.nodes()), 5, message="nsqd did not register")
    assert producer_address(nodes[0]) == nsqd.http_address
    assert producer_address(nodes[0], "tcp") == nsqd.tcp_address


def test_refused_names_the_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(NSQHTTPError, match=rf"cannot reach http://127\.0\.0\.1:{port}/stats") as info:
            asyncio.run(NsqdHTTPClient(f"127.0.0.1:{port}").stats())
    assert info.value.address == f"127.0.0.1:{port}"


def test_timeout_names_the_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts, never answers
        address = f"127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(NSQHTTPError, match=rf"GET http://{address}/nodes did not answer within 0\.2s"):
            asyncio.run(LookupdHTTPClient(address, timeout=0.2).nodes())


def test_not_json_and_http_errors() -> None:
    with http_server(b"<html>hello</html>") as address:
        with pytest.raises(NSQHTTPError, match=rf"did not return JSON \(is {address} an NSQ HTTP address\?\)"):
            asyncio.run(NsqdHTTPClient(address).stats())
    with http_server(b'{"message": "INTERNAL_ERROR"}', status=500) as address:
        with pytest.raises(NSQHTTPError, match="answered 500 INTERNAL_ERROR") as info:
            asyncio.run(LookupdHTTPClient(address).nodes())
        assert info.value.status == 500
    with http_server(b"[1, 2]") as address, pytest.raises(NSQHTTPError, match="expected an object"):
        asyncio.run(NsqdHTTPClient(address).stats())


def test_the_pre_1_0_envelope_is_unwrapped() -> None:
    with http_server(
        b'{"status_code": 200, "status_txt": "OK", "data": {"producers": [{"broadcast_address": '
        b'"h", "http_port": 1, "tcp_port": 2}]}}'
    ) as address:
        nodes = asyncio.run(LookupdHTTPClient(address).nodes())
    assert [producer_address(n) for n in nodes] == ["h:1"]
