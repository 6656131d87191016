"""The almanet side of the benchmark: the same roles as the Go floor (bench/go), same output.

Each role runs in its own process, prints ``READY`` when it is subscribed (serve, consume) and
one JSON line with its figures at the end. Run by bench/run.py; by hand:
``python bench/almanet_roles.py serve --nsqd 127.0.0.1:4150 --uri bench.greeting``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import sys
import time
from typing import Any

import orjson

import almanet


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(record).decode() + "\n")
    sys.stdout.flush()


def rss_kib() -> int:
    """Current resident set size (not the peak), from /proc."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


class Trace:
    """Per-call wall-clock stamps (ns) for bench/hops.py, taken by hooks on the connection.

    ``msg_in``: bytes starting with a message frame handed to ``data_received``; ``pub_out``: a
    flush that wrote a PUB/MPUB (after its ``write``). The roles add their own (call start, await
    resumed, procedure start and return). Wall clock, as the Go floor's stamps.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.on = False
        self.split = 0  # messages whose bytes came in more than one data_received
        from almanet._nsq.connection import Connection

        data_received, flush, write = Connection.data_received, Connection._flush, Connection._write
        trace = self

        def traced_data_received(self: Connection, data: bytes) -> None:
            # a frame may come in pieces (nsqd writes size, type and body apart): its bytes
            # "arrived" with the first piece; counted as a split when it took more than one
            if not trace.on:
                return data_received(self, data)
            now = time.time_ns()
            if not self._decoder.pending:
                self._trace_first = now  # type: ignore[attr-defined]
                self._trace_pieces = 0  # type: ignore[attr-defined]
            self._trace_pieces += 1  # type: ignore[attr-defined]
            first, pieces = self._trace_first, self._trace_pieces  # type: ignore[attr-defined]
            data_received(self, data)
            if not self._decoder.pending and data_has_message(self, data):
                trace.events.append(("msg_in", first))
                if pieces > 1:
                    trace.split += 1

        def data_has_message(self: Connection, data: bytes) -> bool:
            return self._trace_pieces > 1 or data[4:8] == b"\x00\x00\x00\x02"  # type: ignore[attr-defined]

        def traced_flush(self: Connection) -> None:
            pub = bool(self._batches) or any(c.startswith((b"PUB ", b"MPUB ")) for c in self._out)
            flush(self)
            if pub and trace.on:
                trace.add("pub_out")

        def traced_write(self: Connection, data: bytes, **kwargs: bool) -> None:
            write(self, data, **kwargs)
            if trace.on and data.startswith(b"PUB ") and not (self._out and self._out[-1] is data):
                trace.add("pub_out")  # written at once, not by a flush

        Connection._write = traced_write  # type: ignore[method-assign]
        Connection.data_received = traced_data_received  # type: ignore[method-assign]
        Connection._flush = traced_flush  # type: ignore[method-assign]

    def add(self, what: str) -> None:
        self.events.append((what, time.time_ns()))


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def serve(args: argparse.Namespace) -> None:
    prepath, _, name = args.uri.rpartition(".")
    service = almanet.new_service(args.nsqd, prepath=prepath)
    calls = 0

    # The library's real features are on: validation of a `str` payload and result, async procedure.
    async def greeting(session: almanet.Almanet, payload: str) -> str:
        nonlocal calls
        calls += 1
        return f"Hello, {payload}!"

    if args.trace:
        trace = Trace()
        trace.on = True
        plain = greeting

        async def greeting(session: almanet.Almanet, payload: str) -> str:  # type: ignore[no-redef]
            trace.add("proc_start")
            try:
                return await plain(session, payload)
            finally:
                trace.add("proc_end")

    greeting.__name__ = name
    service.procedure(greeting)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # bench/run.py --metrics: the same service with `serve --http` on (metrics recorded per call)
    ops = None
    if os.environ.get("ALMANET_BENCH_METRICS"):
        import socket

        from almanet._serving.process import make_ops

        with socket.socket() as probe:  # a free loopback port for the endpoint
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        ops = make_ops(f"127.0.0.1:{port}")
        ops.attach([service])
        await ops.open()
    await service.start(nsqd_http=args.nsqd_http)  # with nsqd's HTTP API: fail-fast and deadlines on
    if ops is not None:
        ops.started()
    print("READY", flush=True)
    await stop.wait()
    await service.stop()
    if ops is not None:
        await ops.close()
    traced = {"trace": trace.events, "split": trace.split} if args.trace else {}
    emit({"role": "serve", "impl": "almanet", "calls": calls, **traced})


async def call(args: argparse.Namespace) -> None:
    trace = Trace() if args.trace else None
    async with almanet.new_session(args.nsqd, nsqd_http=args.nsqd_http) as session:
        for _ in range(args.warmup):
            await session.call(args.uri, "Aidar", timeout=10)
        rss_after_warmup = rss_kib()
        print("WARM", flush=True)  # the harness reads the service's memory now
        errors = 0
        latencies: list[float] = []
        cpu_start = time.process_time()
        start = time.perf_counter()
        if trace is not None:
            trace.on = True
            for _ in range(args.n):
                trace.add("call_start")
                t0 = time.perf_counter()
                result = await session.call(args.uri, "Aidar", timeout=10)
                latencies.append(time.perf_counter() - t0)
                trace.add("resumed")
                if result.payload != "Hello, Aidar!":
                    errors += 1
        elif args.concurrency == 1:
            for _ in range(args.n):
                t0 = time.perf_counter()
                result = await session.call(args.uri, "Aidar", timeout=10)
                latencies.append(time.perf_counter() - t0)
                if result.payload != "Hello, Aidar!":
                    errors += 1
        else:
            remaining = args.n

            async def worker() -> None:
                nonlocal remaining, errors
                while remaining > 0:
                    remaining -= 1
                    t0 = time.perf_counter()
                    try:
                        result = await session.call(args.uri, "Aidar", timeout=10)
                        if result.payload != "Hello, Aidar!":
                            errors += 1
                    except (TimeoutError, almanet.almanet_error):
                        errors += 1
                    latencies.append(time.perf_counter() - t0)

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        latencies.sort()
        emit(
            {
                "role": "call",
                "impl": "almanet",
                "n": args.n,
                "concurrency": args.concurrency,
                "elapsed_s": elapsed,
                "calls_per_s": args.n / elapsed,
                "errors": errors,
                "p50_us": percentile(latencies, 0.50) * 1e6,
                "p90_us": percentile(latencies, 0.90) * 1e6,
                "p99_us": percentile(latencies, 0.99) * 1e6,
                "cpu_s": cpu,
                "rss_after_warmup_kib": rss_after_warmup,
                "rss_after_kib": rss_kib(),
                **({"trace": trace.events, "split": trace.split} if trace is not None else {}),
            }
        )


async def consume(args: argparse.Namespace) -> None:
    seen = bytearray(args.n)
    unique = received = 0
    first = last = 0
    async with almanet.new_session(args.nsqd) as session:
        async with session.consume(args.topic, args.channel, max_in_flight=args.max_in_flight) as messages:
            print("READY", flush=True)
            try:
                async with asyncio.timeout(args.timeout):
                    async for message in messages:
                        now = time.time_ns()
                        if not received:
                            first = now
                        last = now
                        received += 1
                        seq = message.body["seq"]
                        if not seen[seq]:
                            seen[seq] = 1
                            unique += 1
                        await message.commit()
                        if unique >= args.n:
                            break
            except TimeoutError:
                pass  # reported below as missing messages
    emit(
        {
            "role": "consume",
            "impl": "almanet",
            "received": received,
            "unique": unique,
            "missing": args.n - unique,
            "first_recv_ns": first,
            "last_recv_ns": last,
        }
    )


async def produce(args: argparse.Namespace) -> None:
    async with almanet.new_session(args.nsqd) as session:
        messages = [{"seq": i, "text": "hello"} for i in range(args.n)]
        first = time.time_ns()
        start = time.perf_counter()
        if args.batch:
            await session.produce_many(args.topic, messages)
        elif args.window:
            # the way many users write it: gather a window of produce() calls, then the next
            for start_at in range(0, args.n, args.window):
                window = messages[start_at : start_at + args.window]
                await asyncio.gather(*(session.produce(args.topic, message) for message in window))
        else:
            # one PUB each, 200 publishers each awaiting its OK (as the Go floor keeps 200 in flight)
            queue = iter(messages)

            async def publisher() -> None:
                for message in queue:
                    await session.produce(args.topic, message)

            await asyncio.gather(*(publisher() for _ in range(200)))
        elapsed = time.perf_counter() - start
        emit(
            {
                "role": "produce",
                "impl": "almanet",
                "n": args.n,
                "first_send_ns": first,
                "last_send_ns": time.time_ns(),
                "elapsed_s": elapsed,
                "msgs_per_s": args.n / elapsed,
            }
        )


def start_tracing() -> None:
    """bench/run.py --tracing: an OpenTelemetry SDK provider in this process, as
    ``opentelemetry-instrument`` would set up, exporting in batches to an exporter that drops the
    spans: what is measured is almanet's share (spans, context, traceparent), not a collector's."""
    from collections.abc import Sequence

    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    trace.set_tracer_provider(provider)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    roles = parser.add_subparsers(dest="role", required=True)
    for name in ("serve", "call", "consume", "produce"):
        role = roles.add_parser(name)
        role.add_argument("--nsqd", "-nsqd", required=True)
        role.add_argument("--nsqd-http", default=(), help="nsqd's HTTP address: turns fail-fast and deadlines on")
    roles.choices["serve"].add_argument("--uri", default="bench.greeting")
    roles.choices["serve"].add_argument("--trace", action="store_true", help="stamp each invocation (bench/hops.py)")
    roles.choices["call"].add_argument("--trace", action="store_true", help="stamp each call (bench/hops.py)")
    roles.choices["call"].add_argument("--uri", default="bench.greeting")
    roles.choices["call"].add_argument("--n", "-n", type=int, default=2000)
    roles.choices["call"].add_argument("--warmup", type=int, default=200)
    roles.choices["call"].add_argument("--concurrency", type=int, default=1)
    roles.choices["consume"].add_argument("--topic", required=True)
    roles.choices["consume"].add_argument("--channel", default="bench")
    roles.choices["consume"].add_argument("--n", "-n", type=int, default=100_000)
    roles.choices["consume"].add_argument("--max-in-flight", type=int, default=200)
    roles.choices["consume"].add_argument("--timeout", type=float, default=120)
    roles.choices["produce"].add_argument("--topic", required=True)
    roles.choices["produce"].add_argument("--n", "-n", type=int, default=100_000)
    roles.choices["produce"].add_argument("--batch", type=int, default=0)
    roles.choices["produce"].add_argument("--window", type=int, default=0, help="gather this many produce() at once")
    args = parser.parse_args()
    if os.environ.get("ALMANET_BENCH_TRACING"):
        start_tracing()
    # almanet.run is asyncio.run on uvloop when it is installed (the `fast` extra)
    almanet.run({"serve": serve, "call": call, "consume": consume, "produce": produce}[args.role](args))


if __name__ == "__main__":
    main()
