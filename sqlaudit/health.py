"""Liveness and readiness of one replica, and the thread that probes the sinks.

Readiness is UP only when the replica has started (joined the consumer group's subscription),
every sink answered its last write or probe, it is not in backpressure (retrying a failed
write) and not shutting down. Liveness is UP while the consumer loop keeps turning.

Readiness does **not** depend on partition assignment, as a Spring Boot service's readiness
state does not: a replica that is alive while its group rebalances, or a spare replica when
there are more replicas than partitions, is available and counts toward the PodDisruptionBudget
(docs/metrics.md, "Readiness and partition assignment"). Whether it holds partitions is reported
separately: ``details.assigned`` and the ``sqlaudit_partitions_assigned`` gauge.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlaudit.metrics import Metrics
from sqlaudit.sinks import SinkError

__all__ = ["Health", "SinkMonitor"]

logger = logging.getLogger(__name__)


@dataclass
class Health:
    """State shared by the consumer loop, the sink monitor and the HTTP handlers."""

    metrics: Metrics
    liveness_timeout_s: float = 60.0
    sinks_up: dict[str, bool] = field(default_factory=dict)
    sink_errors: dict[str, str] = field(default_factory=dict)
    partitions: tuple[int, ...] = ()
    backpressure: bool = False
    stopping: bool = False
    started: bool = False
    last_loop: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _was_ready: bool = field(default=False, repr=False)
    _down_since: float | None = field(default=None, repr=False)
    _down_total: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._down_since = self.clock()  # not ready from the start until the first refresh says otherwise
        self.metrics.track_not_ready(self.not_ready_seconds)

    def set_sink(self, sink: str, up: bool, error: str = "") -> None:
        with self._lock:
            was = self.sinks_up.get(sink)
            self.sinks_up[sink] = up
            if up:
                self.sink_errors.pop(sink, None)
            else:
                self.sink_errors[sink] = error
        self.metrics.sink_up(sink, up)
        if was is not up:
            (logger.info if up else logger.warning)("sink %s is %s%s", sink, "UP" if up else "DOWN",
                                                    f": {error}" if error else "")
        self.refresh()

    def set_partitions(self, partitions: tuple[int, ...]) -> None:
        if partitions != self.partitions:
            self.partitions = partitions
            self.metrics.assigned(len(partitions))
            self.refresh()

    def tick(self) -> None:
        """The consumer loop is alive."""
        self.last_loop = self.clock()

    def live(self) -> tuple[bool, dict[str, Any]]:
        age = self.clock() - self.last_loop
        return age < self.liveness_timeout_s, {"loop_age_s": round(age, 3)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            sinks = dict(self.sinks_up)
            errors = dict(self.sink_errors)
        reasons = []
        if not self.started:
            reasons.append("starting")
        if self.stopping:
            reasons.append("shutting down")
        if not sinks or not all(sinks.values()):
            reasons.append("sink unreachable: " + ", ".join(sorted(s for s, up in sinks.items() if not up))
                           if sinks else "sinks not probed yet")
        if self.backpressure:
            reasons.append("backpressure: retrying a failed write")
        ok = not reasons
        states = {s: "UP" if up else "DOWN" for s, up in sinks.items()}
        return ok, {"partitions": list(self.partitions), "assigned": bool(self.partitions), "sinks": states,
                    "errors": errors, "reasons": reasons}

    def not_ready_seconds(self) -> float:
        """Seconds this replica's readiness has been DOWN since it started, up to now.

        Exported as ``sqlaudit_not_ready_seconds_total``: unlike the ``sqlaudit_ready`` gauge, which
        a scrape samples, a counter of time keeps a dip shorter than the scrape interval (or one that
        falls in a failed scrape) for the next scrape to see.
        """
        with self._lock:
            now = self.clock()
            return self._down_total + (now - self._down_since if self._down_since is not None else 0.0)

    def refresh(self) -> None:
        """Recompute readiness after a change of state: the ``sqlaudit_ready`` gauge, the time-not-ready
        counter, and an INFO log line on every transition."""
        ok, details = self.ready()
        self.metrics.ready(ok)
        with self._lock:
            was, self._was_ready = self._was_ready, ok
            now = self.clock()
            if was and not ok:
                self._down_since = now
            elif ok and not was and self._down_since is not None:
                self._down_total += now - self._down_since
                self._down_since = None
        if was is not ok:
            if ok:
                logger.info("readiness UP (partitions %s)", list(self.partitions))
            else:
                logger.info("readiness DOWN: %s", "; ".join(details["reasons"]))


class SinkMonitor(threading.Thread):
    """Probes each sink every ``interval_s`` (on its own connections) and records the result."""

    def __init__(self, health: Health, probes: dict[str, Callable[[], None]], interval_s: float) -> None:
        super().__init__(name="sink-monitor", daemon=True)
        self.health = health
        self.probes = probes
        self.interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for name, probe in self.probes.items():
                try:
                    probe()
                    self.health.set_sink(name, True)
                except SinkError as exc:
                    self.health.set_sink(name, False, str(exc))
                except Exception as exc:  # a probe must never kill the monitor
                    self.health.set_sink(name, False, f"{type(exc).__name__}: {exc}")
            self._stop_event.wait(self.interval_s)

    def stop(self) -> None:
        self._stop_event.set()
