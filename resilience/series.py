"""What a run records for its plots, and what the terminal shows while it runs, from the metric contract.

Every query is a measure of the SLO catalogue (``docs/slo.yaml``) under the run's metric view,
so the plots and the live line read the same series the verdicts do, on any service.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from probes import prom
from probes.evaluate import RTO_STEP_S
from probes.slo import Catalogue, MeasureUndefined, MetricView

__all__ = ["LIVE", "SERIES", "live_poller", "record_series"]


@dataclass(frozen=True)
class PlotSeries:
    """One plotted series: a measure over a rate window, its unit, and the SLOs drawn as its thresholds."""

    measure: str
    unit: str
    window: str = "10s"
    thresholds: tuple[tuple[str, str], ...] = ()  # (label, SLO id whose objective is the line)


SERIES: dict[str, PlotSeries] = {
    "consumer_lag": PlotSeries("consumer_lag", "events", thresholds=(("warning", "consumer_lag_warning"),
                                                                    ("critical", "consumer_lag_critical"))),
    "latency_p95_s": PlotSeries("processing_p95", "seconds", thresholds=(("SLO p95", "latency_p95"),)),
    "e2e_p95_s": PlotSeries("e2e_p95", "seconds", thresholds=(("SLO p95", "latency_p95_end_to_end"),)),
    "throughput_eps": PlotSeries("processed_rate", "events/s"),
    "error_ratio": PlotSeries("error_ratio", "ratio", window="30s", thresholds=(("SLO", "error_rate"),)),
    "ready_replicas": PlotSeries("replicas_ready", "replicas", thresholds=(("PDB min", "pdb_min_available"),)),
}
"""The plots of a report (``series.json``), by name."""

LIVE: dict[str, tuple[str, str]] = {"lag": ("consumer_lag", "10s"), "p95": ("e2e_p95", "10s"),
                                    "ready": ("replicas_ready", "10s")}
"""The values of the live status line: name -> (measure, window)."""


def record_series(cat: Catalogue, view: MetricView, prometheus_url: str, start: float, end: float,
                  step_s: float = RTO_STEP_S, anchor: float | None = None) -> dict[str, Any]:
    """Fetch every plot series over [start, end]; a series that cannot be read is listed under ``missing``.

    The step is the RTO's and the grid goes through ``anchor`` (the fault's start) as the RTO's does, so
    a plot samples the instants a verdict did: a replica back within a second was an RTO of 0.5 s but
    fell between the points of a 1 s grid started at the run's start (CI, 2026-12-01).
    """
    if anchor is not None and anchor > start:
        start = anchor - step_s * ((anchor - start) // step_s)
    out: dict[str, Any] = {"step_s": step_s, "series": {}, "missing": {}, "thresholds": {}}
    for name, spec in SERIES.items():
        out["thresholds"][name] = [{"label": label, "value": cat.slo(slo).objective.value}
                                   for label, slo in spec.thresholds]
        try:
            query = cat.query(spec.measure, view, window=spec.window)
            series = prom.range_query(prometheus_url, query, start, max(end, start + 1), step_s=step_s)
            out["series"][name] = {"unit": spec.unit, "points": [[t, v] for t, v in series[0].points]}
        except (prom.ProbeError, MeasureUndefined) as exc:
            out["missing"][name] = str(exc)
    return out


@contextmanager
def live_poller(cat: Catalogue, view: MetricView, prometheus_url: str,
                live: Callable[[dict[str, Any]], None] | None, every_s: float = 2.0) -> Iterator[None]:
    """Feed ``live`` with the current lag, end-to-end p95 and ready replicas while the block runs."""
    if live is None:
        yield
        return
    queries = {}
    for key, (measure, window) in LIVE.items():
        try:
            queries[key] = cat.query(measure, view, window=window)
        except MeasureUndefined:
            continue
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            values: dict[str, Any] = {}
            for key, q in queries.items():
                try:
                    values[key] = prom.instant(prometheus_url, q, timeout_s=2)
                except prom.ProbeError:
                    values[key] = None
            live(values)

    thread = threading.Thread(target=loop, name="live-metrics", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
