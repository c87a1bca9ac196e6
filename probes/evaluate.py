"""Judge a run: every SLO of a scenario becomes a :class:`~probes.verdict.Verdict`.

PromQL SLOs are measured over the run window from Prometheus; probe SLOs (RTO,
RPO, data loss, failover time) are measured by their probes and handed in. The
objective of an RTO/RPO SLO is the scenario's own (pod failure: 60 s, RPO 0 ...).

Missing data, scrape gaps, load that never reached its target, or a pipeline
that never drained make a verdict **inconclusive** — never pass.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from probes import prom
from probes.recovery import Recovery, RecoveryStatus, recovery_time
from probes.slo import Catalogue, Comparison, MeasureUndefined, MetricView, PromQuery, Scenario, Slo
from probes.verdict import Outcome, Verdict

logger = logging.getLogger(__name__)

__all__ = ["Measurement", "RunWindow", "evaluate", "rto_data_flow", "rto_postgres_writable", "rto_replicas_ready"]


@dataclass(frozen=True)
class RunWindow:
    """Epoch seconds: the run (load running) and the fault within it."""

    start: float
    end: float
    fault_start: float | None = None
    fault_end: float | None = None

    @property
    def seconds(self) -> int:
        return max(1, math.ceil(self.end - self.start))


@dataclass(frozen=True)
class Measurement:
    """A probe's result for one SLO: a value, or ``None`` with the reason it is inconclusive."""

    value: float | None
    reason: str = ""
    details: dict[str, object] = field(default_factory=dict)


RTO_STEP_S = 0.5  # the replicas and the lag exporter are scraped every 500 ms on the local stack

# SLOs whose objective comes from the scenario's RTO / RPO.
RTO_SLOS = {"rto_replicas_ready", "rto_data_flow", "restore_duration"}
RPO_SLOS = {"rpo", "rpo_postgres", "rpo_restore"}


def evaluate(cat: Catalogue, view: MetricView, prom_url: str, window: RunWindow, scenario: Scenario | None = None,
             measured: dict[str, Measurement] | None = None, slo_ids: list[str] | None = None,
             rate_window_s: int = 30, max_gap_s: float = 10.0,
             load: tuple[float, float] | None = None, min_load_ratio: float = 0.8) -> list[Verdict]:
    """Verdicts for ``slo_ids`` (default: the scenario's SLOs, or every PromQL SLO).

    Args:
        measured: results of probe SLOs by SLO id; a probe SLO without one is inconclusive.
        rate_window_s: window of ``rate()`` for SLOs aggregated over a range (max/min/mean).
        max_gap_s: a longer stretch without data in a range makes the verdict inconclusive.
        load: (asked, achieved) events per second; below ``min_load_ratio`` the run is inconclusive.
    """
    measured = measured or {}
    if slo_ids is None:
        slo_ids = list(scenario.slos) if scenario and scenario.slos else [
            s.id for s in cat.slos if isinstance(s.measure, PromQuery)]
    verdicts: list[Verdict] = []
    if load is not None:
        asked, achieved = load
        ratio = achieved / asked if asked > 0 else 0.0
        outcome = Outcome.PASS if ratio >= min_load_ratio else Outcome.INCONCLUSIVE
        verdicts.append(Verdict("load_achieved", outcome, round(achieved, 1), f">= {min_load_ratio:.0%} of {asked:g}",
                                "events/s", "" if outcome is Outcome.PASS else
                                f"load reached only {achieved:.0f} of {asked:g} events/s: the run proves little"))
    for slo_id in slo_ids:
        if not cat.applicable(slo_id, view):
            continue  # an optional measure this service lacks (the judge lists it as not applicable)
        slo = cat.slo(slo_id)
        comparison, objective = _objective(slo, scenario)
        try:
            if isinstance(slo.measure, PromQuery):
                value, reason = _measure_promql(cat, slo, view, prom_url, window, rate_window_s, max_gap_s)
                details: dict[str, object] = {"query": cat.promql(slo.id, view, window=f"{window.seconds}s")}
            else:
                m = measured.get(slo_id)
                value, reason, details = (m.value, m.reason, dict(m.details)) if m else (
                    None, "not measured in this run", {})
                observed = details.get("observed_s")
                if value == math.inf and isinstance(observed, int | float) and observed < objective:
                    # Not recovered in a window shorter than the objective proves nothing either way.
                    value, reason = None, (f"{reason}; observed only {observed:.0f} s of the {objective:g} s "
                                           "objective: run longer to judge it")
                at_least = details.get("rto_at_least_s")
                if value is None and isinstance(at_least, int | float) and comparison in (
                        Comparison.LT, Comparison.LE) and not comparison.holds(at_least, objective):
                    # Still settling when the run ended, but it began too late: no ending can meet the objective.
                    value, reason = float(at_least), (f"{reason}: the RTO is at least {at_least:.1f} s, past the "
                                                      "objective whatever followed")
        except (prom.ProbeError, MeasureUndefined) as exc:
            value, reason, details = None, str(exc), {}
        verdicts.append(_judge(slo, comparison, objective, value, reason, details))
    return verdicts


def _objective(slo: Slo, scenario: Scenario | None) -> tuple[Comparison, float]:
    if scenario is not None and slo.id in RTO_SLOS and scenario.rto is not None:
        return Comparison.LE, scenario.rto.max_s
    if scenario is not None and slo.id in RPO_SLOS and scenario.rpo is not None:
        return Comparison.LE, scenario.rpo.max_s
    return slo.objective.comparison, slo.objective.value


def _judge(slo: Slo, comparison: Comparison, objective: float, value: float | None, reason: str,
           details: dict[str, object]) -> Verdict:
    text = f"{comparison.value} {objective:g}"
    if value is None or math.isnan(value):
        return Verdict(slo.id, Outcome.INCONCLUSIVE, None, text, slo.objective.unit, reason or "no data", details)
    ok = comparison.holds(value, objective)
    why = f"measured {value:g} {slo.objective.unit}, objective {text}" + (f": {reason}" if reason else "")
    return Verdict(slo.id, Outcome.PASS if ok else Outcome.FAIL, round(value, 6), text, slo.objective.unit,
                   "" if ok else why, details)


def _measure_promql(cat: Catalogue, slo: Slo, view: MetricView, url: str, window: RunWindow, rate_window_s: int,
                    max_gap_s: float) -> tuple[float | None, str]:
    assert isinstance(slo.measure, PromQuery)
    if slo.measure.aggregate == "last":
        # One evaluation at the end over the whole run.
        return prom.instant(url, cat.promql(slo.id, view, window=f"{window.seconds}s"), at=window.end), ""
    query = cat.promql(slo.id, view, window=f"{rate_window_s}s")
    series = prom.range_query(url, query, window.start, window.end, step_s=1.0)
    if len(series) != 1:
        return None, f"{len(series)} series for {query}; the SLO query must aggregate to one"
    s = series[0]
    if not s.points:
        return None, f"only NaN between {window.start:.0f} and {window.end:.0f} for {query} (no events?)"
    gap = s.max_gap(window.start + rate_window_s, window.end)
    values = [v for _, v in s.points]
    agg = {"max": max(values), "min": min(values), "mean": sum(values) / len(values)}[slo.measure.aggregate]
    if gap > max_gap_s:
        return None, (f"{gap:.0f} s without data in the run (scrape gap, or nothing processed); "
                      f"{slo.measure.aggregate} of what there is: {agg:g}")
    return agg, ""


# ----------------------------------------------------------------------------- RTO probes
def rto_replicas_ready(cat: Catalogue, view: MetricView, prom_url: str, window: RunWindow, expected_replicas: int,
                       stabilization_s: float = 10.0, max_gap_s: float = 3.0) -> Recovery:
    """RTO until ``expected_replicas`` are ready again, from the fault's start, at 1 s resolution."""
    if window.fault_start is None:
        return Recovery(RecoveryStatus.INCONCLUSIVE, None, None, "no fault start recorded")
    # The measure is 0, not "no data", with every replica dead (no series at all).
    query = cat.query("replicas_ready", view)
    series = prom.range_query(prom_url, query, window.fault_start, window.end, step_s=RTO_STEP_S)
    samples = [(t, v >= expected_replicas) for t, v in series[0].points]
    return recovery_time(samples, window.fault_start, stabilization_s, max_gap_s, observed_until=window.end)


#: How much of the run before the fault is read as the baseline of an RTO condition.
BASELINE_S = 20.0


def _baseline_start(window: RunWindow) -> float:
    """Start of the baseline: up to :data:`BASELINE_S` before the fault, within the run.

    The first seconds of load are warm-up (batches filling, first scrapes), so the baseline
    starts at least 5 s into the run."""
    assert window.fault_start is not None
    return min(window.fault_start, max(window.start + 5.0, window.fault_start - BASELINE_S))


def rto_data_flow(cat: Catalogue, view: MetricView, prom_url: str, window: RunWindow, stabilization_s: float = 10.0,
                  max_gap_s: float = 3.0, latency_window_s: int = 10) -> Recovery:
    """RTO until data flows within SLO: lag under the warning level and end-to-end p95 under 500 ms."""
    if window.fault_start is None:
        return Recovery(RecoveryStatus.INCONCLUSIVE, None, None, "no fault start recorded")
    lag_limit = cat.slo("consumer_lag_warning").objective.value
    p95_limit = cat.slo("latency_p95_end_to_end").objective.value
    lag_q = cat.query("consumer_lag", view)
    p95_q = cat.query("e2e_p95", view, window=f"{latency_window_s}s")
    since = _baseline_start(window)
    lag = {t: v for t, v in prom.range_query(prom_url, lag_q, since, window.end, RTO_STEP_S)[0].points}
    try:
        p95 = {t: v for t, v in prom.range_query(prom_url, p95_q, since, window.end, RTO_STEP_S)[0].points}
    except prom.ProbeError:
        p95 = {}  # nothing processed at all after the fault: never flowing
    samples = [(t, v < lag_limit and p95.get(t, math.inf) < p95_limit) for t, v in sorted(lag.items())]
    return recovery_time(samples, window.fault_start, stabilization_s, max_gap_s, observed_until=window.end)


def rto_postgres_writable(cat: Catalogue, view: MetricView, prom_url: str, window: RunWindow,
                          stabilization_s: float = 5.0, max_gap_s: float = 3.0) -> Recovery:
    """Failover time as the service sees it: until PostgreSQL takes the service's writes again.

    Condition: some replica completed a PostgreSQL batch write in the last 1.5 s (the write-latency
    histogram's count grows) and no replica reports the sink down (``min(sink_up) == 1``). A
    failover the pool rides out by waiting (writes stall, none fails) still breaks it; a run
    without writes never satisfies it, so it cannot pass on missing load.
    """
    if window.fault_start is None:
        return Recovery(RecoveryStatus.INCONCLUSIVE, None, None, "no fault start recorded")
    query = cat.query("postgres_writing", view)
    series = prom.range_query(prom_url, query, _baseline_start(window), window.end, step_s=RTO_STEP_S)
    samples = [(ts, v >= 1) for ts, v in series[0].points] if series else []
    return recovery_time(samples, window.fault_start, stabilization_s, max_gap_s, observed_until=window.end)


def recovery_measurement(rec: Recovery) -> Measurement:
    """A :class:`Recovery` as an SLO measurement (``None`` unless recovered)."""
    details: dict[str, object] = {"status": rec.status.value, "broke_at": rec.broke_at,
                                  "recovered_at": rec.recovered_at}
    if rec.at_least_s is not None:
        details["rto_at_least_s"] = round(rec.at_least_s, 3)
    if rec.status is RecoveryStatus.RECOVERED:
        return Measurement(rec.rto_s, rec.reason, details)
    if rec.status is RecoveryStatus.NEVER_RECOVERED:
        return Measurement(math.inf, rec.reason, details)  # fails any objective
    return Measurement(None, rec.reason, details)
