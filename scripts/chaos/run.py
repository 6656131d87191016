"""``make chaos``: callers, services and a producer/consumer pair on three nsqd with nsqlookupd,
while every few seconds a random service instance or nsqd is killed (-9) or frozen (SIGSTOP),
then restarted or thawed. One summary line at the end, and exit 1 on any broken promise:

    chaos: N calls, N answered, N failed with a reason, 0 ran late, N messages acknowledged, 0 lost

* ran late: a procedure that started (its own first line, in the instance's start log) after
  the deadline its caller set, for any of its deliveries;
* lost: a message nsqd acknowledged (``await produce()`` returned) that the consumer never got;
* a hang: a call that neither answered nor failed within its timeout plus ``HANG_AFTER``; a
  failure without a reason (anything but almanet's errors) counts as one too;
* a leftover: a ``_rpc_._reply_`` topic holding messages once every caller has left.

The nsqd run with ``--mem-queue-size=0 --sync-every=1``: each message on disk before more is
read, which is what a deployment that must not lose a message to ``kill -9`` runs (nsqd keeps
up to mem-queue-size messages in memory otherwise; docs/reliability.md).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import almanet
from almanet.testing import NsqCluster, NsqdProcess, start_cluster

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
URI = "chaos.work"
TOPIC = "chaos.events"
CALL_TIMEOUT = 2.0
HANG_AFTER = 10.0
CALLERS = 8
SERVICES = 3
NSQDS = 3
# the liveness a deployment that expects frozen hosts would choose (docs/reliability.md)
LIVENESS = {"heartbeat": 2.0, "silent_after": 5.0, "ack_timeout": 0.5}
NSQD_ARGS = ("--mem-queue-size=0", "--sync-every=1", "--msg-timeout=10s")
DRAIN = 60.0  # seconds for the consumer to catch up once the faults stop (msg-timeout is 10 s)


@dataclass
class Tally:
    calls: int = 0
    answered: int = 0
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    hangs: list[str] = field(default_factory=list)
    deadlines: dict[int, float] = field(default_factory=dict)
    acked: set[int] = field(default_factory=set)
    produce_failed: collections.Counter[str] = field(default_factory=collections.Counter)
    consumed: set[int] = field(default_factory=set)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    producer_idle: bool = False


class Instance:
    """One ``almanet serve target:service`` process; killed, frozen and restarted by the run."""

    def __init__(self, index: int, env: dict[str, str], workdir: Path) -> None:
        self.name = f"service-{index}"
        self.env = env
        self.log = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "almanet.cli", "serve", "target:service"],
                env=self.env,
                cwd=HERE,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


def say(text: str) -> None:
    print(f"chaos: [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def call_loop(session: almanet.Almanet, tally: Tally, stop: asyncio.Event, rng: random.Random) -> None:
    while not stop.is_set():
        n = tally.calls
        tally.calls += 1
        # mostly quick, some slow enough that calls queue behind them and time out queued
        ms = rng.choice((0, 0, 0, 1, 5, 20, 50, 400))
        tally.deadlines[n] = time.time() + CALL_TIMEOUT
        try:
            async with asyncio.timeout(CALL_TIMEOUT + HANG_AFTER):
                result = await session.call(URI, {"n": n, "ms": ms}, timeout=CALL_TIMEOUT)
        except almanet.timeout_error as exc:
            tally.failed[f"timeout ({exc.reason})"] += 1
        except TimeoutError:
            tally.hangs.append(f"call {n} neither answered nor failed in {CALL_TIMEOUT + HANG_AFTER:g}s")
        except almanet.almanet_error as exc:
            tally.failed[type(exc).__name__] += 1
            await asyncio.sleep(0.05)  # a broker error repeats at once: no busy loop while a node is down
        except Exception as exc:  # counted as a failure without a reason
            tally.hangs.append(f"call {n}: {type(exc).__name__}: {exc}")
        else:
            if result.payload != n:
                tally.hangs.append(f"call {n} got the reply of call {result.payload}")
            else:
                tally.answered += 1


async def produce_loop(session: almanet.Almanet, tally: Tally, stop: asyncio.Event, paused: asyncio.Event) -> None:
    seq = 0
    while not stop.is_set():
        if paused.is_set():  # no publish of ours awaits nsqd's OK while paused
            tally.producer_idle = True
            await asyncio.sleep(0.05)
            continue
        tally.producer_idle = False
        batch = range(seq, seq + 10)
        seq += 10
        futures = {s: session.produce(TOPIC, {"seq": s}) for s in batch}
        for s, future in futures.items():
            try:
                await asyncio.wait_for(future, 10)
            except almanet.almanet_error as exc:
                tally.produce_failed[type(exc).__name__] += 1
            except TimeoutError:
                tally.produce_failed["no OK in 10 s"] += 1
            else:
                tally.acked.add(s)
        await asyncio.sleep(0.05)


async def consume_loop(session: almanet.Almanet, tally: Tally) -> None:
    subscription = session.consume(TOPIC, "sink", max_in_flight=200)
    async with subscription:
        async for message in subscription:
            tally.consumed.add(int(message.body["seq"]))
            await message.commit()


async def chaos_loop(
    cluster: NsqCluster,
    instances: list[Instance],
    tally: Tally,
    stop: asyncio.Event,
    paused: asyncio.Event,
    rng: random.Random,
) -> None:
    targets: list[NsqdProcess | Instance] = [*cluster.nsqds, *instances]
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(2, 5))
        if stop.is_set():
            return
        target = rng.choice(targets)
        action = rng.choice(("kill -9", "freeze"))
        name = target.name if isinstance(target, Instance) else f"nsqd :{target.tcp_port}"
        held = rng.uniform(1, 4)
        say(f"{action} {name} for {held:.1f}s")
        tally.faults[f"{action} {'nsqd' if isinstance(target, NsqdProcess) else 'service'}"] += 1
        if action == "freeze":
            (target.signal(signal.SIGSTOP) if isinstance(target, Instance) else target.freeze())
            await asyncio.sleep(held)
            (target.signal(signal.SIGCONT) if isinstance(target, Instance) else target.thaw())
        else:
            if isinstance(target, NsqdProcess):
                # nsqd keeps a message it has handed out only in memory: killed with -9 while one is
                # in flight to the consumer, it is gone, and that loss is nsqd's design, not
                # almanet's (docs/reliability.md). The producer pauses and the consumer catches up
                # first, as in tests/faults/test_processes.py; calls go on through the kill.
                paused.set()
                await wait_for(lambda: tally.producer_idle and tally.acked <= tally.consumed, 10)
            await asyncio.to_thread(target.kill)
            paused.clear()
            await asyncio.sleep(held)
            await asyncio.to_thread(target.start if isinstance(target, Instance) else target.restart)


def late_runs(workdir: Path, deadlines: dict[int, float]) -> list[str]:
    late = []
    for log in sorted(workdir.glob("starts-*.log")):
        for line in log.read_text().splitlines():
            n_text, t_text = line.split()
            n, started = int(n_text), float(t_text)
            deadline = deadlines.get(n)
            if deadline is not None and started > deadline:
                late.append(f"call {n} started {1000 * (started - deadline):.1f} ms after its deadline ({log.name})")
    return late


def reply_leftovers(cluster: NsqCluster) -> list[str]:
    found = []
    for nsqd in cluster.nsqds:
        for topic in nsqd.stats().get("topics", []):
            if topic["topic_name"].startswith("_rpc_._reply_.") and topic.get("depth", 0) > 0:
                found.append(f"{topic['topic_name']} ({topic['depth']} messages) on nsqd :{nsqd.tcp_port}")
    return found


async def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def run(seconds: float, seed: int, workdir: Path) -> int:
    rng = random.Random(seed)
    tally = Tally()
    cluster = await asyncio.to_thread(start_cluster, NSQDS, extra_args=NSQD_ARGS)
    instances: list[Instance] = []
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ALMANET_")},
            "ALMANET_NSQD": ",".join(cluster.tcp_addresses),
            "ALMANET_LOOKUPD": cluster.lookupd.http_address,
            "ALMANET_HEARTBEAT": str(LIVENESS["heartbeat"]),
            "ALMANET_SILENT_AFTER": str(LIVENESS["silent_after"]),
            "ALMANET_ACK_TIMEOUT": str(LIVENESS["ack_timeout"]),
            "CHAOS_DIR": str(workdir),
            "PYTHONPATH": os.pathsep.join((str(HERE), str(ROOT))),
        }
        instances = [Instance(i, env, workdir) for i in range(SERVICES)]
        for instance in instances:
            instance.start()
        options: dict[str, Any] = {"lookupd": cluster.lookupd.http_address, **LIVENESS}
        callers = almanet.new_session(*cluster.tcp_addresses, **options)
        # nsqd's output buffering off: nsqd forgets a message once it is in flight, and a kill -9
        # would lose what its buffer (up to 250 ms of messages) had not written yet
        unbuffered = almanet.ConnectionOptions(output_buffer_size=-1)
        consumer = almanet.new_session(*cluster.tcp_addresses, options=unbuffered, **options)
        async with callers, consumer:
            ready = False
            deadline = time.monotonic() + 30
            while not ready:
                with contextlib.suppress(almanet.almanet_error, TimeoutError):
                    await callers.call(URI, {"n": -1, "ms": 0}, timeout=1)
                    ready = True
                if time.monotonic() > deadline:
                    raise SystemExit(f"chaos: the services did not answer in 30 s; see {workdir}/service-*.log")
            say(f"{SERVICES} service instances on {NSQDS} nsqd; faults for {seconds:g}s (seed {seed}, logs {workdir})")
            stop = asyncio.Event()
            consuming = asyncio.ensure_future(consume_loop(consumer, tally))
            work = [asyncio.ensure_future(call_loop(callers, tally, stop, rng)) for _ in range(CALLERS)]
            paused = asyncio.Event()
            work.append(asyncio.ensure_future(produce_loop(callers, tally, stop, paused)))
            faults = asyncio.ensure_future(chaos_loop(cluster, instances, tally, stop, paused, rng))
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                await asyncio.sleep(min(10.0, seconds - (time.monotonic() - started)))
                say(
                    f"{tally.calls} calls, {tally.answered} answered,"
                    f" {len(tally.acked)} acknowledged, {len(tally.consumed)} consumed"
                )
            stop.set()
            await faults  # the last fault undone: every node and instance runs again
            await asyncio.gather(*work)
            say("faults stopped; waiting for the consumer to catch up")
            await wait_for(lambda: tally.acked <= tally.consumed, DRAIN)
            consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consuming
        # every caller has left: a reply topic still holding messages must go within a few seconds
        clean = await wait_for(lambda: not reply_leftovers(cluster), 15)
        leftovers = [] if clean else reply_leftovers(cluster)
    finally:
        for instance in instances:
            instance.stop()
        cluster.close()
    late = late_runs(workdir, tally.deadlines)
    lost = sorted(tally.acked - tally.consumed)
    failed = sum(tally.failed.values())
    print(
        f"chaos: {tally.calls} calls, {tally.answered} answered, {failed} failed with a reason,"
        f" {len(late)} ran late, {len(tally.acked)} messages acknowledged, {len(lost)} lost",
        flush=True,
    )
    say("faults: " + ", ".join(f"{n} {what}" for what, n in sorted(tally.faults.items())))
    say("failures: " + (", ".join(f"{n} {why}" for why, n in tally.failed.most_common()) or "none"))
    if tally.produce_failed:
        refused = ", ".join(f"{n} {why}" for why, n in tally.produce_failed.items())
        say(f"publishes refused (not acknowledged, so not counted): {refused}")
    problems = [*late[:10], *(f"message {s} acknowledged, never consumed" for s in lost[:10]), *tally.hangs[:10]]
    problems += [f"left in nsqd: {leftover}" for leftover in leftovers]
    for problem in problems:
        say(f"FAIL {problem}")
    return 1 if (late or lost or tally.hangs or leftovers) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS", 600)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", time.time_ns() % 100_000)))
    args = parser.parse_args()
    if not args.seconds > 0:
        parser.error("--seconds (CHAOS_SECONDS) must be a positive number")
    workdir = Path(tempfile.mkdtemp(prefix="almanet-chaos-"))
    sys.exit(asyncio.run(run(args.seconds, args.seed, workdir)))


if __name__ == "__main__":
    main()
