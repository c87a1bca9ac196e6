"""Liveness and readiness of one replica, and the thread that probes the sinks.

Readiness is UP only when every sink answered its last write or probe, this replica has at
least one partition assigned, it is not in backpressure (retrying a failed write) and not
shutting down. Liveness is UP while the consumer loop keeps turning.
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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        self.last_loop = time.monotonic()

    def live(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self.last_loop
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
        if not self.partitions:
            reasons.append("no partition assigned")
        if self.backpressure:
            reasons.append("backpressure: retrying a failed write")
        ok = not reasons
        states = {s: "UP" if up else "DOWN" for s, up in sinks.items()}
        return ok, {"partitions": list(self.partitions), "sinks": states, "errors": errors, "reasons": reasons}

    def refresh(self) -> None:
        self.metrics.ready(self.ready()[0])


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
