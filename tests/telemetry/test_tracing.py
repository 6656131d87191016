"""Tracing across processes, as an operator runs it: ``opentelemetry-instrument`` with the standard
``OTEL_*`` variables, spans exported over OTLP/HTTP to a receiver in this test that decodes the
protocol's own protobuf (``opentelemetry-proto``), not an in-memory exporter.
"""

from __future__ import annotations

import gzip
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # the dev extra installs it

from tests.cli.conftest import nsq_env, stop
from tests.support.nsqproc import NsqdProcess, wait_until

pytestmark = pytest.mark.timeout(60)

INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3


class Receiver:
    """An OTLP/HTTP traces endpoint on a free loopback port; keeps (service.name, span) pairs."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver.lock:
                    for resource_spans in request.resource_spans:
                        names = [
                            a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
                        ]
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans.extend((names[0] if names else "", s) for s in scope_spans.spans)
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def of(self, service: str, kind: int) -> list[Any]:
        with self.lock:
            return [s for name, s in self.spans if name == service and s.kind == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def otel_env(base: dict[str, str], endpoint: str, service: str) -> dict[str, str]:
    return {
        **base,
        "OTEL_SERVICE_NAME": service,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }


def test_a_call_and_its_invocation_are_one_trace(nsqd: NsqdProcess, receiver: Receiver, tmp_path: Path) -> None:
    import subprocess

    assert INSTRUMENT.exists(), "the dev extra installs opentelemetry-distro (opentelemetry-instrument)"
    base = nsq_env(tmp_path, nsqd)
    service = subprocess.Popen(
        [str(INSTRUMENT), sys.executable, "-m", "almanet.cli", "serve", "services.example:example_service"],
        env=otel_env(base, receiver.endpoint, "greeter"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:

        def answered() -> bool:
            if service.poll() is not None:
                raise AssertionError(f"almanet serve exited: {service.communicate()[1].decode()}")
            done = subprocess.run(
                [str(INSTRUMENT), sys.executable, "-m", "almanet.cli", "call", "net.example.greeting", '"Aidar"'],
                env=otel_env(base, receiver.endpoint, "caller"),
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=20,
                check=False,
            )
            return done.returncode == 0 and done.stdout.strip() == b'"Hello, Aidar!"'

        wait_until(answered, timeout=30, interval=0.5, message="the instrumented call never got its reply")
    finally:
        code, _, err = stop(service, timeout=20)  # SIGINT: drains and exits 0, the SDK flushes at exit
    assert code == 0, err

    wait_until(
        lambda: receiver.of("caller", SPAN_KIND_CLIENT) and receiver.of("greeter", SPAN_KIND_SERVER),
        timeout=15,
        message=f"spans did not reach the receiver: {[(n, s.name, s.kind) for n, s in receiver.spans]}",
    )
    client = receiver.of("caller", SPAN_KIND_CLIENT)[-1]
    servers = {s.parent_span_id: s for s in receiver.of("greeter", SPAN_KIND_SERVER)}
    assert client.span_id in servers, "the service's span is not the child of the caller's"
    server = servers[client.span_id]
    assert server.trace_id == client.trace_id
    assert client.name == server.name == "net.example.greeting"
    attributes = {a.key: a.value for a in server.attributes}
    assert attributes["messaging.system"].string_value == "nsq"
    assert attributes["rpc.method"].string_value == "net.example.greeting"


def test_without_opentelemetry_set_up_nothing_is_imported(nsqd: NsqdProcess) -> None:
    """A session that joins, calls and serves in a process that never set OpenTelemetry up imports none of it."""
    import subprocess

    program = f"""
import asyncio, sys
import almanet
service = almanet.new_service({nsqd.tcp_address!r}, prepath="plain.notrace")

@service.procedure
async def echo(payload: str) -> str:
    return payload

async def main():
    await service.start()
    async with almanet.new_session({nsqd.tcp_address!r}, nsqd_http=[{nsqd.http_address!r}]) as session:
        assert (await session.call("plain.notrace.echo", "x", timeout=5)).payload == "x"
        await session.produce("plain.notrace.topic", 1)
    await service.stop()

asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.strip() == b"[]"
