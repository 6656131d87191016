"""The almanet benchmark, side by side with a Go floor (go-nsq) in the same run.

``make bench`` runs it: one nsqd of the project's own on free loopback ports, every workload for
almanet and for the floor, server and client in separate, fresh processes each repetition, the
implementations interleaved so that a noisy neighbour hurts both alike. Medians and min-max of
the repetitions go to ``bench/results/run-<time>.json`` and to the table in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.nsqproc import NsqdProcess, start_nsqd, tool_path  # noqa: E402

PYTHON = sys.executable
ROLES_PY = str(ROOT / "bench" / "almanet_roles.py")
ROLES = [PYTHON, ROLES_PY]
# --variant NAME:KEY=VALUE,...: almanet run again under other settings (PYTHON=... another
# interpreter's venv python, any other key an environment variable), interleaved with the rest
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {}
# --also-python: variants that are another interpreter's almanet, each with a table of its own
TABLES: list[str] = []


def roles(impl: str) -> list[str]:
    python, _ = VARIANTS.get(impl, (PYTHON, {}))
    return [python, ROLES_PY]


def env_of(impl: str) -> dict[str, str] | None:
    extra = VARIANTS.get(impl, ("", {}))[1]
    return {**os.environ, **extra} if extra else None


FLOOR = ROOT / ".tools" / "bin" / "almanet-bench-floor"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build_floor() -> None:
    sources = [*list((ROOT / "bench" / "go").glob("*.go")), ROOT / "bench" / "go" / "go.mod"]
    if FLOOR.exists() and all(FLOOR.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return
    go = shutil.which("go") or "/usr/local/go/bin/go"
    log("building the Go floor (bench/go) ...")
    subprocess.run([go, "build", "-o", str(FLOOR), "."], cwd=ROOT / "bench" / "go", check=True)


def cpu_seconds(pid: int) -> float:
    """user+system CPU of a live process, from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


class Proc:
    """A role process: stdout lines are READY / WARM markers and one final JSON line."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.popen = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )

    def wait_line(self, marker: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        assert self.popen.stdout is not None
        while time.monotonic() < deadline:
            line = self.popen.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.argv[:3]} exited before {marker}: {self.stderr_tail()}")
            if line.strip() == marker:
                return
        raise RuntimeError(f"{self.argv[:3]} did not print {marker} within {timeout}s")

    def result(self, timeout: float = 600) -> dict[str, Any]:
        out, err = self.popen.communicate(timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if self.popen.returncode != 0 or not lines:
            raise RuntimeError(f"{self.argv[:3]} failed ({self.popen.returncode}): {err[-2000:]}")
        return json.loads(lines[-1])

    def stop(self) -> dict[str, Any] | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.result(timeout=15)
        except (RuntimeError, subprocess.TimeoutExpired):
            self.popen.kill()
            self.popen.wait()
            return None

    def stderr_tail(self) -> str:
        try:
            _, err = self.popen.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            return ""
        return err[-2000:]


def serve_argv(impl: str, nsqd: str, uri: str, http: str = "") -> list[str]:
    if impl != "floor":
        return [*roles(impl), "serve", "--nsqd", nsqd, "--uri", uri, *(("--nsqd-http", http) if http else ())]
    return [str(FLOOR), "serve", "-nsqd", nsqd, "-topic", f"_rpc_.{uri}", "-channel", "RPC#ephemeral"]


def call_argv(impl: str, nsqd: str, uri: str, n: int, concurrency: int, http: str = "") -> list[str]:
    if impl != "floor":
        http_args = ("--nsqd-http", http) if http else ()
        return [
            *roles(impl),
            "call",
            "--nsqd",
            nsqd,
            "--uri",
            uri,
            "-n",
            str(n),
            "--concurrency",
            str(concurrency),
            *http_args,
        ]
    return [
        str(FLOOR),
        "call",
        "-nsqd",
        nsqd,
        "-uri-topic",
        f"_rpc_.{uri}",
        "-n",
        str(n),
        "-concurrency",
        str(concurrency),
    ]


def rpc(impl: str, nsqd: NsqdProcess, n: int, concurrency: int) -> dict[str, Any]:
    uri = f"bench.g{uuid.uuid4().hex[:8]}.greeting"
    server = Proc(serve_argv(impl, nsqd.tcp_address, uri, nsqd.http_address), env_of(impl))
    try:
        server.wait_line("READY")
        cpu0 = {"nsqd": cpu_seconds(nsqd.pid), "service": cpu_seconds(server.popen.pid)}
        client = Proc(call_argv(impl, nsqd.tcp_address, uri, n, concurrency, nsqd.http_address), env_of(impl))
        memory: dict[str, int] = {}
        if impl != "floor":
            client.wait_line("WARM", timeout=120)
            memory["service_rss_after_warmup_kib"] = rss_kib(server.popen.pid)
        result = client.result()
        # CPU per call (µs): nsqd and service over the client's whole run (warm-up included),
        # the caller over its measured calls (its own figure, without interpreter start-up)
        calls = n + 200
        result["nsqd_cpu_us_per_call"] = (cpu_seconds(nsqd.pid) - cpu0["nsqd"]) * 1e6 / calls
        result["service_cpu_us_per_call"] = (cpu_seconds(server.popen.pid) - cpu0["service"]) * 1e6 / calls
        result["caller_cpu_us_per_call"] = result.get("cpu_s", 0.0) * 1e6 / n
        if impl != "floor":
            memory["service_rss_after_kib"] = rss_kib(server.popen.pid)
        result.update(memory)
        return result
    finally:
        server.stop()


def stream(impl: str, nsqd: NsqdProcess, n: int, window: int = 0) -> dict[str, Any]:
    """Produce → consume. ``window``: the producer gathers that many ``produce()`` calls at a time
    (the floor keeps as many PublishAsync in flight); else 200 publishers each await their own."""
    topic = f"bench_s_{uuid.uuid4().hex[:8]}"
    if impl != "floor":
        consumer = Proc(
            [*roles(impl), "consume", "--nsqd", nsqd.tcp_address, "--topic", topic, "-n", str(n)], env_of(impl)
        )
        producer_argv = [*roles(impl), "produce", "--nsqd", nsqd.tcp_address, "--topic", topic, "-n", str(n)]
        if window:
            producer_argv += ["--window", str(window)]
    else:
        consumer = Proc([str(FLOOR), "consume", "-nsqd", nsqd.tcp_address, "-topic", topic, "-n", str(n)])
        producer_argv = [str(FLOOR), "produce", "-nsqd", nsqd.tcp_address, "-topic", topic, "-n", str(n)]
        if window:
            producer_argv += ["-in-flight", str(window)]
    try:
        consumer.wait_line("READY")
        produced = Proc(producer_argv, env_of(impl)).result()
        consumed = consumer.result()
    finally:
        consumer.stop()
    span = (consumed["last_recv_ns"] - produced["first_send_ns"]) / 1e9
    return {
        "received": consumed["received"],
        "missing": consumed["missing"],
        "e2e_msgs_per_s": consumed["unique"] / span if span > 0 else 0.0,
        "produce_msgs_per_s": produced["msgs_per_s"],
    }


def mpub(impl: str, nsqd: NsqdProcess, n: int) -> dict[str, Any]:
    topic = f"bench_m_{uuid.uuid4().hex[:8]}"
    if impl != "floor":
        argv = [*roles(impl), "produce", "--nsqd", nsqd.tcp_address, "--topic", topic, "-n", str(n), "--batch", "1"]
    else:
        argv = [str(FLOOR), "produce", "-nsqd", nsqd.tcp_address, "-topic", topic, "-n", str(n), "-batch", "10000"]
    result = Proc(argv, env_of(impl)).result()
    # empty the topic again so that the next repetition starts from the same nsqd state
    urllib.request.urlopen(
        urllib.request.Request(f"http://{nsqd.http_address}/topic/delete?topic={topic}", method="POST"), timeout=30
    ).close()
    return {"msgs_per_s": result["msgs_per_s"]}


def wall(argv: list[str], runs: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, cwd=ROOT, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3}


def startup(nsqd: NsqdProcess, runs: int, python: str = PYTHON) -> dict[str, Any]:
    """``almanet --help``, one ``almanet call`` and a bare typer app's ``--help``, all on ``python``."""
    almanet_cli = str(Path(python).with_name("almanet"))
    uri = f"bench.g{uuid.uuid4().hex[:8]}.greeting"
    server = Proc(serve_argv("almanet", nsqd.tcp_address, uri, nsqd.http_address))
    env = {**os.environ, "ALMANET_NSQD": nsqd.tcp_address, "ALMANET_NSQD_HTTP": nsqd.http_address}
    try:
        server.wait_line("READY")
        figures: dict[str, Any] = {}
        # interleave the three commands run by run, so drift hurts all alike
        samples: dict[str, list[float]] = {"typer_minimal_help": [], "almanet_help": [], "almanet_call": []}
        argvs = {
            "typer_minimal_help": [python, str(ROOT / "bench" / "minimal_typer.py"), "--help"],
            "almanet_help": [almanet_cli, "--help"],
            "almanet_call": [almanet_cli, "call", uri, '"Aidar"', "--timeout", "10"],
        }
        for _ in range(runs):
            for name, argv in argvs.items():
                figure = wall(argv, 1, env)
                samples[name].append(figure["median_ms"])
        for name, values in samples.items():
            figures[name] = {"median_ms": statistics.median(values), "min_ms": min(values), "max_ms": max(values)}
        return figures
    finally:
        server.stop()


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nsqd_version = subprocess.run([tool_path("nsqd"), "--version"], capture_output=True, text=True).stdout.strip()
    go_version = subprocess.run(
        [shutil.which("go") or "/usr/local/go/bin/go", "version"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "nsqd": nsqd_version,
        "go": go_version,
        "platform": platform.platform(),
    }


def run_workloads(args: argparse.Namespace) -> dict[str, Any]:
    nsqd = start_nsqd()
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    workloads: dict[str, Callable[[str], dict[str, Any]]] = {
        "a_sequential": lambda impl: rpc(impl, nsqd, args.seq_calls, 1),
        "b_concurrent": lambda impl: rpc(impl, nsqd, args.conc_calls, 200),
        "c_stream": lambda impl: stream(impl, nsqd, args.stream_messages),
        "f_gather": lambda impl: stream(impl, nsqd, args.stream_messages, window=1000),
        "d_mpub": lambda impl: mpub(impl, nsqd, args.mpub_messages),
    }
    try:
        for name, workload in workloads.items():
            if args.only and name[0] not in args.only:
                continue
            impls = ["almanet", *VARIANTS, "floor"]
            raw[name] = {impl: [] for impl in impls}
            for rep in range(args.repetitions):
                order = impls if rep % 2 == 0 else impls[::-1]
                for impl in order:
                    log(f"{name} rep {rep + 1}/{args.repetitions}: {impl}")
                    raw[name][impl].append(workload(impl))
        if not args.only or "e" in args.only:
            raw["e_startup"] = {"floor": []}
            for impl, python in [("almanet", PYTHON), *((name, VARIANTS[name][0]) for name in TABLES)]:
                log(f"e_startup ({impl}): {args.startup_runs} runs each")
                raw["e_startup"][impl] = [startup(nsqd, args.startup_runs, python)]
    finally:
        nsqd.close()
    return raw


def figures(raw: dict[str, Any], impl: str = "almanet") -> list[dict[str, Any]]:
    """Rows of the table: metric, ``impl``'s median (min-max), floor median, ratio, target, met."""
    rows: list[dict[str, Any]] = []

    def add(workload: str, metric: str, key: str, target: str, better: str, limit: float | None, unit: str) -> None:
        if workload not in raw or not raw[workload].get(impl):
            return
        a = summarize([r[key] for r in raw[workload][impl]])
        f = summarize([r[key] for r in raw[workload]["floor"]]) if raw[workload]["floor"] else None
        ratio = a["median"] / f["median"] if f and f["median"] else None
        met = None
        if limit is not None and ratio is not None:
            met = ratio <= limit if better == "lower" else ratio >= limit
        rows.append(
            {
                "workload": workload,
                "metric": metric,
                "unit": unit,
                "almanet": a,
                "floor": f,
                "ratio": ratio,
                "target": target,
                "met": met,
            }
        )

    add("a_sequential", "sequential p50", "p50_us", "≤ 1.0×", "lower", 1.0, "µs")
    add("a_sequential", "sequential p90", "p90_us", "", "lower", None, "µs")
    add("a_sequential", "sequential p99", "p99_us", "≤ 1.2×", "lower", 1.2, "µs")
    add("b_concurrent", "200 in flight", "calls_per_s", "≥ 1.5×", "higher", 1.5, "calls/s")
    add("b_concurrent", "errors", "errors", "0", "lower", None, "")
    for who in ("nsqd", "service", "caller"):
        add("b_concurrent", f"{who} CPU per call", f"{who}_cpu_us_per_call", "", "lower", None, "µs")
    add("c_stream", "produce → consume", "e2e_msgs_per_s", "≥ 1.0×", "higher", 1.0, "msgs/s")
    add("c_stream", "produce alone", "produce_msgs_per_s", "", "higher", None, "msgs/s")
    add("f_gather", "produce → consume, gather(1,000 produce())", "e2e_msgs_per_s", "≥ 1.0×", "higher", 1.0, "msgs/s")
    add("f_gather", "produce alone, gather(1,000 produce())", "produce_msgs_per_s", "", "higher", None, "msgs/s")
    for workload in ("c_stream", "f_gather"):
        add(workload, "messages missing", "missing", "0", "lower", None, "")
    add("d_mpub", "MPUB 1,000,000", "msgs_per_s", "≥ 100,000 msgs/s", "higher", None, "msgs/s")
    if rows and rows[-1]["workload"] == "d_mpub":
        rows[-1]["met"] = rows[-1]["almanet"]["median"] >= 100_000
    if "b_concurrent" in raw:
        for who, key_w, key_a in (
            ("caller", "rss_after_warmup_kib", "rss_after_kib"),
            ("service", "service_rss_after_warmup_kib", "service_rss_after_kib"),
        ):
            growth = [r[key_a] / r[key_w] - 1 for r in raw["b_concurrent"].get(impl, [])]
            if not growth:
                continue
            summary = summarize([g * 100 for g in growth])
            rows.append(
                {
                    "workload": "b_concurrent",
                    "metric": f"{who} RSS growth after (b)",
                    "unit": "%",
                    "almanet": summary,
                    "floor": None,
                    "ratio": None,
                    "target": "≤ 10%",
                    "met": summary["median"] <= 10,
                }
            )
    if raw.get("e_startup", {}).get(impl):
        s = raw["e_startup"][impl][0]
        base = s["typer_minimal_help"]
        for name, limit in (("almanet_help", 1.2), ("almanet_call", 1.6)):
            ratio = s[name]["median_ms"] / base["median_ms"]
            rows.append(
                {
                    "workload": "e_startup",
                    "metric": f"{name} vs minimal typer --help",
                    "unit": "ms",
                    "almanet": {"median": s[name]["median_ms"], "min": s[name]["min_ms"], "max": s[name]["max_ms"]},
                    "floor": {"median": base["median_ms"], "min": base["min_ms"], "max": base["max_ms"]},
                    "ratio": ratio,
                    "target": f"≤ {limit}×",
                    "met": ratio <= limit,
                }
            )
    return rows


def variants_table(raw: dict[str, Any]) -> str:
    """Each --variant against almanet as it is, workload by workload (medians, min-max)."""
    metrics = {
        "a_sequential": ("p50_us", "p99_us"),
        "b_concurrent": ("calls_per_s", "service_cpu_us_per_call", "caller_cpu_us_per_call"),
        "c_stream": ("e2e_msgs_per_s", "produce_msgs_per_s"),
        "f_gather": ("e2e_msgs_per_s", "produce_msgs_per_s"),
        "d_mpub": ("msgs_per_s",),
    }
    impls = ["almanet", *VARIANTS, "floor"]
    lines = ["", "| workload | metric | " + " | ".join(impls) + " |", "|---|---|" + "---|" * len(impls)]
    for workload, keys in metrics.items():
        if workload not in raw:
            continue
        for key in keys:
            cells = []
            for impl in impls:
                values = [r[key] for r in raw[workload].get(impl, []) if key in r]
                s = summarize(values) if values else None
                cells.append(f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})" if s else "—")
            lines.append(f"| {workload} | {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Run of {meta['time']} · {meta['machine']['nproc']} cores, {meta['machine']['cpu']} · "
        f"Python {meta['machine']['python']} · {meta['machine']['nsqd']} · {meta['machine']['go']} · "
        f"{meta['repetitions']} repetitions (medians, min–max)",
        "",
        "| workload | metric | almanet | Go floor (go-nsq) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a = r["almanet"]
        almanet = f"{fmt(a['median'])} {r['unit']} ({fmt(a['min'])}–{fmt(a['max'])})"
        f = r["floor"]
        floor = f"{fmt(f['median'])} {r['unit']} ({fmt(f['min'])}–{fmt(f['max'])})" if f else "—"
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "—"
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        lines.append(f"| {r['workload']} | {r['metric']} | {almanet} | {floor} | {ratio} | {r['target']} | {met} |")
    return "\n".join(lines)


def write_results(rows: list[dict[str, Any]], meta: dict[str, Any], name: str = "") -> None:
    """Rewrite the table between the markers (``results`` or, for another interpreter, ``results py3.13``)."""
    start, end = TABLE_START, TABLE_END
    if name:
        start, end = f"<!-- results {name}:start -->", f"<!-- results {name}:end -->"
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else f"# Benchmark results\n\n{start}\n{end}\n"
    if start not in text:
        text += f"\n### almanet on Python {meta['machine']['python']}\n\n{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    RESULTS_MD.write_text(f"{head}{start}\n{table(rows, meta)}\n{end}{tail}")


def full_version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--seq-calls", type=int, default=2000)
    parser.add_argument("--conc-calls", type=int, default=20_000)
    parser.add_argument("--stream-messages", type=int, default=100_000)
    parser.add_argument("--mpub-messages", type=int, default=1_000_000)
    parser.add_argument("--startup-runs", type=int, default=20)
    parser.add_argument("--only", default="", help="workload letters to run, e.g. 'ab' (default: all)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="run almanet again with these settings, interleaved: PYTHON=<venv python> picks the"
        " interpreter, other keys are environment variables (e.g. asyncio:ALMANET_LOOP=asyncio)",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="almanet again with the service's metrics on (serve --http), side by side: the variant 'metrics'",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="almanet again with OpenTelemetry tracing on in caller and service (SDK provider,"
        " spans dropped by the exporter), side by side: the variant 'tracing'",
    )
    parser.add_argument(
        "--also-python",
        action="append",
        default=[],
        metavar="PYTHON",
        help="run the almanet side again on this interpreter (a venv's python with almanet installed),"
        " interleaved in the same run, and write its own table (make bench: the newest Python found)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the table, do not update RESULTS.md")
    parser.add_argument("--table", default="", help="the RESULTS.md block to rewrite (make bench PYTHON=... sets it)")
    args = parser.parse_args()
    if args.metrics:
        args.variant.append("metrics:ALMANET_BENCH_METRICS=1")
    if args.tracing:
        args.variant.append("tracing:ALMANET_BENCH_TRACING=1")
    for spec in args.variant:
        name, _, settings = spec.partition(":")
        env = dict(item.split("=", 1) for item in settings.split(",") if item)
        VARIANTS[name] = (env.pop("PYTHON", PYTHON), env)
    for python in args.also_python:
        version = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        VARIANTS[f"py{version}"] = (python, {})
        TABLES.append(f"py{version}")
    build_floor()
    meta = {
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "repetitions": args.repetitions,
        "args": vars(args),
    }
    versions = {name: full_version(VARIANTS[name][0]) for name in TABLES}
    raw = run_workloads(args)
    rows = figures(raw)
    print(table(rows, meta))
    others = {name: figures(raw, name) for name in TABLES}
    for name, other in others.items():
        print(f"\n{name}:\n" + table(other, {**meta, "machine": {**meta["machine"], "python": versions[name]}}))
    if set(VARIANTS) - set(TABLES):
        print(variants_table(raw))
    if not args.no_write:
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        (out / f"run-{stamp}.json").write_text(json.dumps({"meta": meta, "raw": raw, "rows": rows}, indent=1))
        write_results(rows, meta, args.table)
        for name, other in others.items():
            write_results(other, {**meta, "machine": {**meta["machine"], "python": versions[name]}}, name)


if __name__ == "__main__":
    main()
