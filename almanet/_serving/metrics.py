"""Prometheus metrics of a served process, through prometheus-client (the ``ops`` extra).

Imported only when ``almanet serve --http`` (``serve.http``) is given: without it nothing here
runs and ``prometheus_client`` is never imported. Per procedure and channel: invocations by
outcome, errors by name, a latency histogram, invocations in flight, invocations dropped unrun;
per nsqd: whether every subscription is live there, live subscriptions, reconnects.

Under ``serve --workers N`` each worker records into prometheus-client's multiprocess files
(``PROMETHEUS_MULTIPROC_DIR``, set by the supervisor) and the supervisor's ``/metrics`` merges
them; the gauges say how workers add up (``multiprocess_mode``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .observer import OUTCOMES
from .procedure import Procedure

__all__ = ["BUCKETS", "Metrics", "render"]

# seconds: from a procedure that does not wait (~50 µs) to one that waits on others (a minute)
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Children:
    """One procedure's series, resolved once: ``labels()`` costs a lock and a dict per call."""

    __slots__ = ("duration", "errors", "in_flight", "outcomes")

    def __init__(self, metrics: Metrics, procedure: Procedure) -> None:
        labels = (procedure.uri, procedure.channel)
        self.in_flight = metrics.in_flight.labels(*labels)
        self.duration = metrics.duration.labels(*labels)
        self.outcomes = {outcome: metrics.invocations.labels(*labels, outcome) for outcome in OUTCOMES}
        self.errors = metrics.errors


class Metrics:
    """The ``observer.InvocationObserver`` that counts into Prometheus series."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created series double a scrape and no dashboard reads them

        self.registry = CollectorRegistry(auto_describe=True)
        by = ("procedure", "channel")
        r = self.registry
        self.invocations = Counter("almanet_invocations", "Invocations run, by outcome", (*by, "outcome"), registry=r)
        self.errors = Counter(
            "almanet_invocation_errors", "Invocations answered with an error", (*by, "error"), registry=r
        )
        self.duration = Histogram(
            "almanet_invocation_duration_seconds", "Seconds from start to reply", by, buckets=BUCKETS, registry=r
        )
        self.in_flight = Gauge(
            "almanet_invocations_in_flight", "Invocations running", by, registry=r, multiprocess_mode="livesum"
        )
        self.dropped_total = Counter(
            "almanet_invocations_dropped", "Invocations finished unrun", (*by, "reason"), registry=r
        )
        self.nsqd_up = Gauge(
            "almanet_nsqd_up",
            "1 when every subscription is live on this nsqd",
            ("nsqd",),
            registry=r,
            multiprocess_mode="livemin",
        )
        self.nsqd_subscriptions = Gauge(
            "almanet_nsqd_subscriptions",
            "Subscriptions live on this nsqd",
            ("nsqd",),
            registry=r,
            multiprocess_mode="livesum",
        )
        self.reconnects = Counter("almanet_nsqd_reconnects", "Subscriptions lost and made again", ("nsqd",), registry=r)
        self.ready = Gauge("almanet_ready", "1 while /readyz answers 200", registry=r, multiprocess_mode="livemin")
        self._children: dict[int, _Children] = {}
        self._reconnects_seen: dict[tuple[int, str], int] = {}

    def watch(self, procedures: Iterable[Procedure]) -> None:
        """Create the series of each procedure now, so that /metrics lists them before any call."""
        for procedure in procedures:
            self._children[id(procedure)] = _Children(self, procedure)

    # -- the observer ------------------------------------------------------------------------------

    def started(self, procedure: Procedure) -> float:
        self._children[id(procedure)].in_flight.inc()
        return time.perf_counter()

    def finished(self, procedure: Procedure, started: float, outcome: str, error: str | None) -> None:
        children = self._children[id(procedure)]
        children.in_flight.dec()
        children.outcomes[outcome].inc()
        if outcome == "requeued":
            return
        children.duration.observe(time.perf_counter() - started)
        if error is not None:
            children.errors.labels(procedure.uri, procedure.channel, error).inc()

    def dropped(self, procedure: Procedure, reason: str) -> None:
        self.dropped_total.labels(procedure.uri, procedure.channel, reason).inc()

    # -- sampled state -----------------------------------------------------------------------------

    def sample(self, consumers: Iterable[Any], ready: bool) -> None:
        """Connection state and reconnects, read from the subscriptions (``Consumer``) when scraped."""
        live: dict[str, int] = {}
        wanted: dict[str, int] = {}
        for consumer in consumers:
            for address in consumer.addresses:
                wanted[address] = wanted.get(address, 0) + 1
            for address in consumer.live():
                live[address] = live.get(address, 0) + 1
            for address, count in consumer.reconnects.items():
                key = (id(consumer), address)
                seen = self._reconnects_seen.get(key, 0)
                if count > seen:
                    self.reconnects.labels(address).inc(count - seen)
                    self._reconnects_seen[key] = count
        for address, count in wanted.items():
            self.nsqd_subscriptions.labels(address).set(live.get(address, 0))
            self.nsqd_up.labels(address).set(1 if live.get(address, 0) == count else 0)
        self.ready.set(1 if ready else 0)


def render(registries: Iterable[Any]) -> bytes:
    """The text format of every registry given, one after another (ours, then the default one)."""
    from prometheus_client import generate_latest

    return b"".join(generate_latest(registry) for registry in registries)
