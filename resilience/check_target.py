"""``resilience check-target``: does the target's Prometheus have every metric the suite will read?

Before any fault, every measure of the SLO catalogue is asked once under the run's metric view
(profiles, selector, labels). A measure whose query returns a value is fine; one that returns
nothing is told apart by asking Prometheus for each series selector the query reads
(``name{matchers}``, with the view's selector and labels filled in): a metric with no series under
the view's selector is *missing* — the profile names a metric this service does not export, or the
selector matches nothing — while a query over series that exist but had no samples in the window (no
events yet), or over label values not seen yet (no API request has been answered with a 5xx, no
``/api`` request at all before the load), is only *idle*, which a run's load will fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from probes import prom
from probes.slo import Catalogue, MeasureUndefined, MetricView

__all__ = ["PROBE_MEASURES", "MeasureCheck", "check_measures", "metric_names", "needed_measures"]

#: The measures each probe-measured SLO reads.
PROBE_MEASURES: dict[str, tuple[str, ...]] = {
    "rto_replicas_ready": ("replicas_ready",),
    "rto_data_flow": ("consumer_lag", "e2e_p95"),
    "patroni_failover": ("postgres_writing",),
}

_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^{}]*)\}")
_NOT_METRICS = {"sum", "rate", "increase", "histogram_quantile", "min", "max", "avg", "count", "clamp_min",
                "avg_over_time", "vector", "bool", "by", "or", "and"}


def needed_measures(cat: Catalogue, slo_ids: list[str], effects: list[str]) -> list[str]:
    """The measures a run with these SLOs and fault effects reads (besides its plots), in catalogue order."""
    from probes.slo import PromQuery, placeholders

    needed = set(effects) | {"replicas_ready"}  # the runner waits for Prometheus to see the replicas
    for slo_id in slo_ids:
        slo = cat.slo(slo_id)
        if isinstance(slo.measure, PromQuery):
            needed |= placeholders(slo.measure.promql) - {"window"}
        needed |= set(PROBE_MEASURES.get(slo_id, ()))
    return [m for m in [*cat.measures, *cat.optional_measures] if m in needed]


def metric_names(query: str) -> list[str]:
    """The series selectors a PromQL query reads (every ``name{matchers}``), in order of appearance."""
    seen: list[str] = []
    for name, matchers in _SELECTOR.findall(query):
        selector = f"{name}{{{matchers}}}"
        if name not in _NOT_METRICS and selector not in seen:
            seen.append(selector)
    return seen


@dataclass
class MeasureCheck:
    """One measure's check: ``status`` is ok, idle (metrics exist, no samples in the window), missing
    (named metrics have no series), undefined (no profile of the view defines the measure) or optional
    (an optional measure no profile of the view defines: its SLOs are not applicable to this service)."""

    measure: str
    status: str
    query: str = ""
    value: float | None = None
    missing: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def usable(self) -> bool:
        return self.status in ("ok", "idle", "optional")


def check_measures(cat: Catalogue, view: MetricView, prometheus_url: str, measures: list[str] | None = None,
                   window: str = "1m") -> list[MeasureCheck]:
    """Ask each measure once; name what Prometheus lacks.

    Raises:
        probes.prom.ProbeError: Prometheus itself cannot be reached (nothing can be checked).
    """
    prom.wait_ready(prometheus_url, timeout_s=10)
    out = []
    for measure in measures or list(cat.measures):
        try:
            query = cat.query(measure, view, window=window)
        except MeasureUndefined as exc:
            if measure in cat.optional_measures:
                out.append(MeasureCheck(measure, "optional", detail="not defined for this service: the SLOs "
                                                                    "over it are not applicable"))
            else:
                out.append(MeasureCheck(measure, "undefined", detail=str(exc)))
            continue
        try:
            value: float | None = prom.instant(prometheus_url, query, timeout_s=10)
        except prom.ProbeError:
            value = None
        if value is not None and not math.isnan(value):
            out.append(MeasureCheck(measure, "ok", query, value))
            continue
        missing = [selector for selector in metric_names(query) if not _exists(prometheus_url, selector)
                   and not _exists(prometheus_url, f"{selector.split('{')[0]}{{{view.selector}}}")]
        if missing:
            out.append(MeasureCheck(measure, "missing", query, missing=missing,
                                    detail=f"Prometheus at {prometheus_url} has no series {', '.join(missing)}"))
        else:
            out.append(MeasureCheck(measure, "idle", query, detail=f"the metrics exist but had no samples in the "
                                                                   f"last {window} (no events yet?)"))
    return out


def _exists(url: str, selector: str) -> bool:
    """Whether Prometheus has any series matching ``selector`` right now."""
    try:
        return prom.instant(url, f"count({selector})", timeout_s=10) > 0
    except prom.ProbeError:
        return False
