"""Prometheus metrics of one replica (names and meaning: ``docs/metrics.md``).

Every series carries the ``replica`` label. Each :class:`Metrics` owns its own
registry, so tests can build several without clashing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["LATENCY_BUCKETS", "Metrics"]

# Dense around the 500 ms SLO.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8,
                   1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0)
WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CHECKER_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 300, 400, 500, 750, 1000, 2000, 5000)


class _SecondsCounter(Collector):
    """A counter whose value is read from a callback at scrape time (time spent in a state)."""

    def __init__(self, name: str, doc: str, replica: str, seconds: Callable[[], float]) -> None:
        self.name, self.doc, self.replica, self.seconds = name, doc, replica, seconds

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.doc, labels=["replica"])
        family.add_metric([self.replica], self.seconds())
        yield family


class Metrics:
    """All metrics of the service, pre-labelled with ``replica``."""

    def __init__(self, replica: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        lbl = ["replica"]
        self.replica = replica

        def c(name: str, doc: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, [*lbl, *extra], registry=r)

        def h(name: str, doc: str, buckets: tuple[float, ...], extra: tuple[str, ...] = ()) -> Histogram:
            return Histogram(name, doc, [*lbl, *extra], buckets=buckets, registry=r)

        def g(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, [*lbl, *extra], registry=r)

        self._consumed = c("sqlaudit_events_consumed_total", "Records polled from the events topic "
                                                             "(redeliveries included).")
        self._processed = c("sqlaudit_events_processed_total", "Valid events made durable (ClickHouse, and "
                                                               "their violations in PostgreSQL).")
        self._failed = c("sqlaudit_events_failed_total", "Invalid records (bad JSON, missing or mistyped field).",
                         ("reason",))
        self._dead_lettered = c("sqlaudit_events_dead_lettered_total", "Invalid records acknowledged by the "
                                                                       "dead-letter topic.")
        self._processing = h("sqlaudit_processing_latency_seconds", "Polled -> durable in every store, per event.",
                             LATENCY_BUCKETS)
        self._e2e = h("sqlaudit_end_to_end_latency_seconds", "produced_at -> durable in every store, per event.",
                      LATENCY_BUCKETS)
        self._checker = h("sqlaudit_checker_duration_seconds", "Time one checker spent on one batch.",
                          CHECKER_BUCKETS, ("checker",))
        self._violations = c("sqlaudit_violations_total", "Violations made durable in PostgreSQL.",
                             ("checker", "severity"))
        self._write = h("sqlaudit_sink_write_latency_seconds", "Duration of one successful batch write.",
                        WRITE_BUCKETS, ("sink",))
        self._write_errors = c("sqlaudit_sink_write_errors_total", "Failed batch writes.", ("sink",))
        self._write_retries = c("sqlaudit_sink_write_retries_total", "Batch writes retried after a failure.",
                                ("sink",))
        self._sink_up = g("sqlaudit_sink_up", "1 when the sink answered its last write or probe.", ("sink",))
        self._batch = h("sqlaudit_batch_size", "Records per flushed batch.", BATCH_BUCKETS)
        self._assigned = g("sqlaudit_partitions_assigned", "Partitions of the events topic assigned to this "
                                                           "replica.")
        self._paused = g("sqlaudit_consumer_paused", "1 while consumption is paused by backpressure.")
        self._ready = g("sqlaudit_ready", "1 when the readiness probe answers UP.")
        self._commits = c("sqlaudit_offset_commits_total", "Offset commits, by result.", ("result",))
        self._commit_latency = h("sqlaudit_offset_commit_latency_seconds", "Duration of one synchronous offset "
                                 "commit after a durable batch (the consumer loop waits for it).", WRITE_BUCKETS)
        self._rebalances = c("sqlaudit_rebalances_total", "Partition revocations and assignments.", ("event",))
        self._late = c("sqlaudit_checker_late_events_total", "Events ignored by a window checker because their "
                                                             "window was already closed.", ("checker",))
        self._pending = g("sqlaudit_pending_events", "Records held in memory, not yet durable.")

    # Small wrappers keep call sites short and the label set in one place.
    def consumed(self, n: int) -> None:
        self._consumed.labels(self.replica).inc(n)

    def processed(self, n: int) -> None:
        self._processed.labels(self.replica).inc(n)

    def failed(self, reason: str) -> None:
        self._failed.labels(self.replica, reason).inc()

    def dead_lettered(self, n: int) -> None:
        self._dead_lettered.labels(self.replica).inc(n)

    def latency(self, processing_s: float, end_to_end_s: float) -> None:
        self._processing.labels(self.replica).observe(processing_s)
        self._e2e.labels(self.replica).observe(end_to_end_s)

    def checker_duration(self, checker: str, seconds: float) -> None:
        self._checker.labels(self.replica, checker).observe(seconds)

    def violation(self, checker: str, severity: str) -> None:
        self._violations.labels(self.replica, checker, severity).inc()

    def write(self, sink: str, seconds: float) -> None:
        self._write.labels(self.replica, sink).observe(seconds)
        self._sink_up.labels(self.replica, sink).set(1)

    def write_error(self, sink: str) -> None:
        self._write_errors.labels(self.replica, sink).inc()
        self._sink_up.labels(self.replica, sink).set(0)

    def write_retry(self, sink: str) -> None:
        self._write_retries.labels(self.replica, sink).inc()

    def sink_up(self, sink: str, up: bool) -> None:
        self._sink_up.labels(self.replica, sink).set(1 if up else 0)

    def batch(self, size: int) -> None:
        self._batch.labels(self.replica).observe(size)

    def assigned(self, n: int) -> None:
        self._assigned.labels(self.replica).set(n)

    def paused(self, on: bool) -> None:
        self._paused.labels(self.replica).set(1 if on else 0)

    def ready(self, on: bool) -> None:
        self._ready.labels(self.replica).set(1 if on else 0)

    def track_not_ready(self, seconds: Callable[[], float]) -> None:
        """Export ``sqlaudit_not_ready_seconds_total`` from ``seconds()`` (read at every scrape)."""
        self.registry.register(_SecondsCounter(
            "sqlaudit_not_ready_seconds", "Seconds the readiness probe has answered DOWN since the replica "
                                          "started (a dip between two scrapes still counts).", self.replica,
            seconds))

    def commit(self, result: str) -> None:
        self._commits.labels(self.replica, result).inc()

    def commit_latency(self, seconds: float) -> None:
        self._commit_latency.labels(self.replica).observe(seconds)

    def rebalance(self, event: str) -> None:
        self._rebalances.labels(self.replica, event).inc()

    def late(self, checker: str, n: int) -> None:
        if n:
            self._late.labels(self.replica, checker).inc(n)

    def pending(self, n: int) -> None:
        self._pending.labels(self.replica).set(n)

    def init_series(self, sinks: tuple[str, ...], checkers: tuple[str, ...]) -> None:
        """Create the zero-valued series up front, so rates exist before the first event."""
        for fn in (self._consumed, self._processed, self._dead_lettered, self._processing, self._e2e, self._batch):
            fn.labels(self.replica)
        for reason in ("not_json", "invalid_field", "empty"):
            self._failed.labels(self.replica, reason)
        for sink in sinks:
            self._write.labels(self.replica, sink)
            self._write_errors.labels(self.replica, sink)
            self._write_retries.labels(self.replica, sink)
        for name in checkers:
            for sev in ("WARNING", "CRITICAL"):
                self._violations.labels(self.replica, name, sev)
        for result in ("ok", "failed"):
            self._commits.labels(self.replica, result)
        self.assigned(0)
        self.paused(False)
        self.ready(False)
        self.pending(0)
