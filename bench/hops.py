"""Where a sequential call's time goes, leg by leg, for almanet and for the Go floor.

``python bench/hops.py`` starts nsqd, then for each implementation (interleaved, several
repetitions) a service and a caller with ``--trace``: each process stamps its calls with the wall
clock (the same clock in every process), and the stamps of the caller and the service are matched
call by call. almanet's stamps come from hooks on its connection (bytes of a message handed to
``data_received``; a flush that wrote a PUB) and from the roles (call start, procedure start and
return, await resumed); the floor's from its handlers (go-nsq's read loop and goroutine hops are
inside its legs). Medians over the measured calls, then the median over repetitions.
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import sys
import uuid

import run as bench
from run import VARIANTS, Proc, call_argv, env_of, log, serve_argv

from tests.support.nsqproc import NsqdProcess, start_nsqd

# (leg, which stamps it spans) for each implementation; both end with the call's whole time
ALMANET_LEGS = [
    ("caller: call() → invocation written", "call_start", "c_pub_out"),
    ("nsqd: invocation written → bytes at the service", "c_pub_out", "s_msg_in"),
    ("service: bytes arrived → procedure starts", "s_msg_in", "proc_start"),
    ("service: procedure runs", "proc_start", "proc_end"),
    ("service: procedure returned → reply written", "proc_end", "s_pub_out"),
    ("nsqd: reply written → bytes at the caller", "s_pub_out", "c_msg_in"),
    ("caller: reply arrived → await resumes", "c_msg_in", "resumed"),
    ("whole call", "call_start", "resumed"),
]
FLOOR_LEGS = [
    (
        "caller: before PUB → service handler starts (write, nsqd, read loop, goroutine hop)",
        "call_start",
        "handler_start",
    ),
    ("service: handler (decode, encode) until Publish", "handler_start", "before_publish"),
    (
        "service: Publish → reply in the caller's handler (write, nsqd, read loop, goroutine hop)",
        "before_publish",
        "c_handler",
    ),
    ("service: Publish until nsqd's OK (the handler waits for it, then FIN)", "before_publish", "after_publish"),
    ("caller: reply handler → caller goroutine resumes (not in the floor's latency)", "c_handler", "resumed"),
    ("floor's latency: before PUB → reply in handler", "call_start", "c_handler"),
    ("whole call, to the caller resuming", "call_start", "resumed"),
]


def almanet_rows(caller: list[tuple[str, int]], service: list[tuple[str, int]]) -> list[dict[str, int]]:
    """Caller rows (call_start, c_pub_out, c_msg_in, resumed) joined with the service row inside each."""
    # by time: a message's msg_in is added once data_received returns, with the time its bytes came,
    # after what an eagerly started procedure did inside that data_received
    caller, service = sorted(caller, key=lambda e: e[1]), sorted(service, key=lambda e: e[1])
    calls: list[dict[str, int]] = []
    row: dict[str, int] = {}
    for what, t in caller:
        if what == "call_start":
            row = {"call_start": t}
        elif what == "pub_out" and "call_start" in row and "c_pub_out" not in row:
            row["c_pub_out"] = t
        elif what == "msg_in" and "c_pub_out" in row and "c_msg_in" not in row:
            row["c_msg_in"] = t
        elif what == "resumed" and "c_msg_in" in row:
            row["resumed"] = t
            calls.append(row)
    invocations: list[dict[str, int]] = []
    current: dict[str, int] = {}
    for what, t in service:
        if what == "msg_in":
            current = {"s_msg_in": t}
        elif what in ("proc_start", "proc_end") and "s_msg_in" in current:
            current[what] = t
        elif what == "pub_out" and "proc_end" in current and "s_pub_out" not in current:
            current["s_pub_out"] = t
            invocations.append(current)
    return join(calls, invocations, "c_pub_out", "s_msg_in", "c_msg_in")


def floor_rows(caller: list[list[int]], service: list[list[int]]) -> list[dict[str, int]]:
    calls = [{"call_start": a, "c_handler": b, "resumed": c} for a, b, c in caller]
    invocations = [{"handler_start": a, "before_publish": b, "after_publish": c} for a, b, c in service]
    return join(calls, invocations, "call_start", "handler_start", "c_handler")


def join(
    calls: list[dict[str, int]], invocations: list[dict[str, int]], after: str, key: str, before: str
) -> list[dict[str, int]]:
    """Each call with the one invocation whose ``key`` stamp falls between its ``after`` and ``before``."""
    invocations.sort(key=lambda r: r[key])
    starts = [r[key] for r in invocations]
    joined = []
    for call in calls:
        i = bisect.bisect_left(starts, call[after])
        if i < len(starts) and starts[i] <= call[before]:
            joined.append({**call, **invocations[i]})
    return joined


def one_run(impl: str, nsqd: NsqdProcess, n: int) -> dict[str, float]:
    uri = f"bench.h{uuid.uuid4().hex[:8]}.greeting"
    flag = "-trace" if impl == "floor" else "--trace"
    server = Proc([*serve_argv(impl, nsqd.tcp_address, uri), flag], env_of(impl))
    try:
        server.wait_line("READY")
        caller = Proc([*call_argv(impl, nsqd.tcp_address, uri, n, 1), flag], env_of(impl))
        called = caller.result()
    finally:
        served = server.stop()
    if served is None:
        raise RuntimeError(f"{impl} service gave no trace")
    if impl != "floor":
        rows, legs = almanet_rows(called["trace"], served["trace"]), ALMANET_LEGS
    else:
        rows, legs = floor_rows(called["trace"], served["trace"]), FLOOR_LEGS
    if len(rows) < n // 2:
        raise RuntimeError(f"{impl}: only {len(rows)} of {n} calls could be matched")
    figures = {name: statistics.median((r[b] - r[a]) / 1e3 for r in rows) for name, a, b in legs}
    figures["calls matched"] = len(rows)
    if impl != "floor":
        figures["% replies read in pieces (caller)"] = 100 * called["split"] / n
        figures["% invocations read in pieces (service)"] = 100 * served["split"] / max(1, served["calls"])
    figures["p50 (the role's own figure)"] = called["p50_us"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("-n", type=int, default=2000, help="sequential calls per repetition (after 200 warm-up)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="almanet again with these settings, as in run.py (PYTHON=..., environment variables)",
    )
    parser.add_argument("--no-floor", action="store_true", help="almanet (and its variants) only")
    args = parser.parse_args()
    for spec in args.variant:
        name, _, settings = spec.partition(":")
        env = dict(item.split("=", 1) for item in settings.split(",") if item)
        VARIANTS[name] = (env.pop("PYTHON", bench.PYTHON), env)
    bench.build_floor()
    nsqd = start_nsqd()
    impls = ["almanet", *VARIANTS] + ([] if args.no_floor else ["floor"])
    results: dict[str, list[dict[str, float]]] = {impl: [] for impl in impls}
    try:
        for rep in range(args.repetitions):
            for impl in impls if rep % 2 == 0 else impls[::-1]:
                log(f"hops rep {rep + 1}/{args.repetitions}: {impl}")
                results[impl].append(one_run(impl, nsqd, args.n))
    finally:
        nsqd.close()
    for impl in impls:
        legs = FLOOR_LEGS if impl == "floor" else ALMANET_LEGS
        print(f"\n{impl} (median µs per call; median over {args.repetitions} runs, min–max)\n")
        print("| leg | µs |\n|---|---|")
        names = [name for name, _, _ in legs] + ["p50 (the role's own figure)", "calls matched"]
        names += [name for name in results[impl][0] if name.startswith("%")]
        for name in names:
            values = [r[name] for r in results[impl]]
            print(f"| {name} | {statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f}) |")


if __name__ == "__main__":
    sys.exit(main())
