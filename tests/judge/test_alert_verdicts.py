"""Alert verdicts (resilience/alerting.py) on Prometheus answers faked at the boundary (probes.prom.range_query):
an expected alert that never fires is a failure, never a pass; without the watchdog's series nothing about
alerts can pass; an alert that begins firing in the healthy baseline fails the run; one carried over from
before the run does not.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from probes import prom
from probes.evaluate import RunWindow
from probes.verdict import Outcome, overall
from resilience import alerting

T0 = 1_000_000.0
WINDOW = RunWindow(start=T0, end=T0 + 200, fault_start=T0 + 30, fault_end=T0 + 90)


def _steps(start: float, end: float, step: float = 0.5) -> list[float]:
    n = int((end - start) / step)
    return [start + i * step for i in range(n + 1)]


class FakePrometheus:
    """ALERTS as a rule evaluator would have written them: ``firing[name] = [(from, to), ...]`` (epoch seconds)."""

    def __init__(self, firing: dict[str, list[tuple[float, float]]],
                 pending: dict[str, list[tuple[float, float]]] | None = None) -> None:
        self.firing = firing
        self.pending = pending or {}
        self.queries: list[str] = []

    def _on(self, name: str, t: float, pending: bool = False) -> bool:
        return any(a <= t <= b for a, b in self.firing.get(name, []) + (self.pending.get(name, []) if pending else []))

    def range_query(self, url: str, query: str, start: float, end: float, step_s: float = 1.0,
                    timeout_s: float = 10.0) -> list[prom.Series]:
        self.queries.append(query)
        times = _steps(start, end, step_s)
        if query.startswith("count by (alertname)"):
            pending = "firing|pending" in query
            out = [prom.Series({"alertname": n}, [(t, 1.0) for t in times if self._on(n, t, pending)])
                   for n in {**self.firing, **self.pending} if n != "Watchdog"]
            out = [s for s in out if s.points]
            if not out and not query.endswith("or on() vector(0)"):
                raise prom.ProbeError(f"Prometheus at {url}: no data for {query}")
            return out or [prom.Series({}, [(t, 0.0) for t in times])]
        m = re.search(r'alertname="([^"]+)"', query)
        assert m, query
        name = m.group(1)
        if query.endswith("or on() vector(0)"):
            return [prom.Series({}, [(t, 1.0 if self._on(name, t) else 0.0) for t in times])]
        points = [(t, 1.0) for t in times if self._on(name, t)]
        if not points:
            raise prom.ProbeError(f"Prometheus at {url}: no data for {query}")
        return [prom.Series({"alertname": name}, points)]


def _judge(monkeypatch: pytest.MonkeyPatch, firing: dict[str, list[tuple[float, float]]],
           expected: list[dict[str, Any]], window: RunWindow = WINDOW,
           pending: dict[str, list[tuple[float, float]]] | None = None) -> dict[str, Any]:
    fake = FakePrometheus(firing, pending)
    monkeypatch.setattr(prom, "range_query", fake.range_query)
    verdicts = alerting.alert_verdicts("http://prometheus", window, {"watchdog": "Watchdog", "expected": expected})
    return {v.slo: v for v in verdicts} | {"_overall": overall(verdicts)}


WATCHING = {"Watchdog": [(T0 - 600, T0 + 1000)]}


def test_an_expected_alert_that_fires_within_its_bound_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, {**WATCHING, "HighKafkaConsumerLag": [(T0 + 75, T0 + 120)]},
               [{"alert": "HighKafkaConsumerLag", "within_s": 60}])
    assert v["alert:HighKafkaConsumerLag"].outcome is Outcome.PASS
    assert v["alert:HighKafkaConsumerLag"].measured == 45.0
    assert v["alerts_evaluated"].details["fired_after_fault_s"] == {"HighKafkaConsumerLag": 45.0}
    assert "HighKafkaConsumerLag (+45 s)" in v["alerts_evaluated"].reason
    assert v["alerts_evaluated"].outcome is Outcome.PASS and v["alerts_quiet"].outcome is Outcome.PASS
    assert v["_overall"] is Outcome.PASS


def test_an_expected_alert_that_never_fires_is_a_failure_not_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, dict(WATCHING), [{"alert": "HighKafkaConsumerLag", "within_s": 60}])
    verdict = v["alert:HighKafkaConsumerLag"]
    assert verdict.outcome is Outcome.FAIL
    assert "never fired within 60 s" in verdict.reason
    assert v["_overall"] is Outcome.FAIL


def test_an_alert_firing_only_after_its_bound_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, {**WATCHING, "HighKafkaConsumerLag": [(T0 + 95, T0 + 120)]},
               [{"alert": "HighKafkaConsumerLag", "within_s": 60}])
    assert v["alert:HighKafkaConsumerLag"].outcome is Outcome.FAIL


def test_without_the_watchdog_no_alert_verdict_can_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules not loaded: ALERTS is empty, which also looks like "no alert fired" (quiet) — the watchdog tells
    them apart. Remove the watchdog check and alerts_quiet passes here: this test fails."""
    v = _judge(monkeypatch, {}, [{"alert": "HighKafkaConsumerLag", "within_s": 60}])
    assert v["alerts_evaluated"].outcome is Outcome.INCONCLUSIVE
    assert "not loaded or not evaluated" in v["alerts_evaluated"].reason
    assert v["alerts_quiet"].outcome is Outcome.INCONCLUSIVE
    assert v["alert:HighKafkaConsumerLag"].outcome is Outcome.INCONCLUSIVE
    assert v["_overall"] is not Outcome.PASS


def test_a_watchdog_missing_for_part_of_the_run_is_not_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, {"Watchdog": [(T0 - 600, T0 + 50), (T0 + 80, T0 + 1000)]}, [])
    assert v["alerts_evaluated"].outcome is Outcome.INCONCLUSIVE
    assert "missing for 3" in v["alerts_evaluated"].reason


def test_an_alert_beginning_to_fire_in_the_baseline_is_never_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, {**WATCHING, "SlowChecker": [(T0 + 10, T0 + 20)]}, [])
    assert v["alerts_quiet"].outcome is Outcome.INCONCLUSIVE
    assert "SlowChecker (+10 s)" in v["alerts_quiet"].reason and "false alarm" in v["alerts_quiet"].reason
    assert v["_overall"] is Outcome.INCONCLUSIVE


def test_an_alert_carried_over_from_before_the_run_is_named_not_held_against_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, {**WATCHING, "SLOViolation_Availability": [(T0 - 100, T0 + 12)]}, [])
    assert v["alerts_quiet"].outcome is Outcome.PASS
    assert "carried over" in v["alerts_quiet"].reason and "SLOViolation_Availability" in v["alerts_quiet"].reason


def test_a_carried_over_alert_that_stops_and_fires_again_in_the_baseline_began_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, {**WATCHING, "SLOViolation_Latency": [(T0 - 100, T0 + 5), (T0 + 15, T0 + 25)]}, [])
    assert v["alerts_quiet"].outcome is Outcome.INCONCLUSIVE
    assert "SLOViolation_Latency (+15 s)" in v["alerts_quiet"].reason and "carried over" in v["alerts_quiet"].reason


def test_an_expected_alert_already_firing_at_the_fault_is_inconclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, {**WATCHING, "SLOViolation_Availability": [(T0 - 100, T0 + 150)]},
               [{"alert": "SLOViolation_Availability", "within_s": 60}])
    assert v["alert:SLOViolation_Availability"].outcome is Outcome.INCONCLUSIVE
    assert "already firing" in v["alert:SLOViolation_Availability"].reason


def test_a_run_ending_before_the_bound_without_the_alert_is_inconclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    short = RunWindow(start=T0, end=T0 + 60, fault_start=T0 + 30, fault_end=T0 + 50)
    v = _judge(monkeypatch, dict(WATCHING), [{"alert": "HighKafkaConsumerLag", "within_s": 60}], short)
    assert v["alert:HighKafkaConsumerLag"].outcome is Outcome.INCONCLUSIVE
    assert "had not fired when the run ended" in v["alert:HighKafkaConsumerLag"].reason


def test_alerts_are_judged_on_the_local_stack_and_wherever_an_experiment_expects_them() -> None:
    assert alerting.run_entry("local", [], "Watchdog") == {"watchdog": "Watchdog", "expected": []}
    assert alerting.run_entry("kubernetes", [], "Watchdog") is None
    wanted = [{"alert": "KafkaConsumerDown", "within_s": 30.0}]
    assert alerting.run_entry("kubernetes", wanted, "Watchdog") == {"watchdog": "Watchdog", "expected": wanted}


@pytest.mark.parametrize("alert, message", [
    ("Nope", r"expect_alerts\[0\]\.alert: no alert 'Nope' in docs/alerts.yaml"),
    ("HighHeapMemoryUsage", r"expect_alerts\[0\]\.alert: HighHeapMemoryUsage cannot fire with metric profiles .*"
                            r"python-reference.*heap_used_ratio.*mark it if_measured: true"),
])
def test_an_alert_the_rules_cannot_fire_is_refused_before_any_fault(tmp_path: Any, alert: str, message: str) -> None:
    import yaml

    from resilience.experiments import EXPERIMENTS_DIR
    from resilience.plan import RunError, RunOptions, plan

    doc = yaml.safe_load((EXPERIMENTS_DIR / "consumer_lag_surge.yaml").read_text())
    doc["extensions"][0]["expect_alerts"] = [{"alert": alert, "within_s": 30}]
    path = tmp_path / "surge.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(RunError, match=message):
        plan(RunOptions(experiment=str(path), port_base=24100))


def test_an_alert_expected_if_measured_is_dropped_where_it_cannot_fire_and_kept_where_it_can(tmp_path: Any) -> None:
    """The Python service has no JVM: its run drops HighHeapMemoryUsage and says why; a Spring run expects it."""
    import yaml

    from resilience.experiments import EXPERIMENTS_DIR
    from resilience.plan import RunOptions, plan

    doc = yaml.safe_load((EXPERIMENTS_DIR / "consumer_lag_surge.yaml").read_text())
    doc["extensions"][0]["expect_alerts"] = [{"alert": "HighHeapMemoryUsage", "within_s": 30, "if_measured": True},
                                             {"alert": "HighKafkaConsumerLag", "within_s": 60}]
    path = tmp_path / "surge.yaml"
    path.write_text(yaml.safe_dump(doc))
    python = plan(RunOptions(experiment=str(path), port_base=24100))
    assert [a.alert for a in python.exp.ext.expect_alerts] == ["HighKafkaConsumerLag"]
    assert len(python.dropped_alerts) == 1
    assert python.dropped_alerts[0].startswith("HighHeapMemoryUsage not expected: ")
    assert "heap_used_ratio" in python.dropped_alerts[0]
    spring = plan(RunOptions(experiment=str(path), port_base=24100, service="spring"))
    assert [a.alert for a in spring.exp.ext.expect_alerts] == ["HighHeapMemoryUsage", "HighKafkaConsumerLag"]
    assert spring.dropped_alerts == []


# --------------------------------------------------------------------------- the whole judge, on a recorded real run
def _record_alerts(run_dir: Any, fires_at_s: float | None) -> None:
    """Append to ``run_dir``'s recording what the stack's Prometheus answers about alerts for this run: the
    watchdog always firing, the baseline quiet, and KafkaConsumerDown firing ``fires_at_s`` after the fault's
    start (never when ``None``). The answers come from a fake client (the boundary), recorded by the real code."""
    import json
    from datetime import datetime

    run = json.loads((run_dir / "run.json").read_text())
    fault = float(run["fault"]["start"])

    class Client:
        def custom_query_range(self, query: str, start_time: datetime, end_time: datetime,
                               step: str) -> list[dict[str, Any]]:
            times = _steps(start_time.timestamp(), end_time.timestamp(), float(step))
            if 'alertname="Watchdog", alertstate="firing"' in query:
                return [{"metric": {"alertname": "Watchdog"}, "values": [[t, "1"] for t in times]}]
            if "KafkaConsumerDown" in query:
                on = [fires_at_s is not None and t >= fault + fires_at_s for t in times]
                return [{"metric": {}, "values": [[t, "1" if o else "0"] for t, o in zip(times, on, strict=True)]}]
            if query.endswith("or on() vector(0)"):
                return [{"metric": {}, "values": [[t, "0"] for t in times]}]
            return []

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(prom, "client", lambda url, timeout_s=5.0, retries=2: Client())
    window = RunWindow(start=float(run["started_at"]), end=float(run["ended_at"]), fault_start=fault,
                       fault_end=run["fault"].get("end"))
    entry = {"watchdog": "Watchdog", "expected": [{"alert": "KafkaConsumerDown", "within_s": 20}]}
    try:
        with prom.recording() as rec:
            alerting.alert_verdicts(run["endpoints"]["prometheus_url"], window, entry)
    finally:
        monkeypatch.undo()
    path = run_dir / "recorded" / "prometheus.json"
    path.write_text(json.dumps(json.loads(path.read_text()) + rec.calls))
    run["alerts"] = entry
    (run_dir / "run.json").write_text(json.dumps(run))


@pytest.mark.parametrize("fires_at_s, slo_outcome, run_outcome", [
    (None, Outcome.FAIL, Outcome.FAIL),   # never fires: a run that passed every SLO fails
    (6.0, Outcome.PASS, Outcome.PASS),    # the same run, the alert firing 6 s into the fault: it passes
])
def test_a_passing_run_whose_expected_alert_never_fired_fails(tmp_path: Any, fires_at_s: float | None,
                                                             slo_outcome: Outcome, run_outcome: Outcome) -> None:
    import json
    import shutil
    from pathlib import Path

    from resilience.judge import judge

    run_dir = Path(shutil.copytree(Path(__file__).parent / "fixtures" / "pod_failure", tmp_path / "run"))
    _record_alerts(run_dir, fires_at_s)
    j = judge(run_dir, json.loads((run_dir / "run.json").read_text()), "http://127.0.0.1:1", live=False)
    verdicts = {v.slo: v for v in j.verdicts}
    assert verdicts["alert:KafkaConsumerDown"].outcome is slo_outcome
    assert verdicts["alerts_evaluated"].outcome is Outcome.PASS and verdicts["alerts_quiet"].outcome is Outcome.PASS
    assert j.outcome is run_outcome


def test_an_alert_pending_when_the_run_started_is_carried_over_when_it_fires(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate's second run: the previous run's disaster left SLOViolation_Availability pending; it fires 5 s
    into this run's baseline. Its condition held before this run began: carried over, named, not held against
    it (it made the fast gate inconclusive on CI). Judge by firing alone and this test fails."""
    v = _judge(monkeypatch, {**WATCHING, "SLOViolation_Availability": [(T0 + 5, T0 + 12)]}, [],
               pending={"SLOViolation_Availability": [(T0 - 50, T0 + 4.9)]})
    assert v["alerts_quiet"].outcome is Outcome.PASS, v["alerts_quiet"].reason
    assert "carried over" in v["alerts_quiet"].reason and "SLOViolation_Availability" in v["alerts_quiet"].reason


def test_an_alert_that_becomes_pending_in_the_baseline_and_fires_began_there(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, {**WATCHING, "SLOViolation_Latency": [(T0 + 20, T0 + 28)]}, [],
               pending={"SLOViolation_Latency": [(T0 + 5, T0 + 19.9)]})
    assert v["alerts_quiet"].outcome is Outcome.INCONCLUSIVE
    assert "SLOViolation_Latency (+20 s)" in v["alerts_quiet"].reason


def test_an_alert_only_pending_in_the_baseline_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    v = _judge(monkeypatch, dict(WATCHING), [], pending={"SlowChecker": [(T0 + 5, T0 + 15)]})
    assert v["alerts_quiet"].outcome is Outcome.PASS


# ------------------------------------------------------- a recorded run whose fault did not bite (the Spring service)
SLOW_WRITES_SPRING = Path(__file__).parent / "fixtures" / "clickhouse_slow_writes_spring"


def test_an_expected_alert_is_not_failed_when_the_fault_did_not_take_its_effect(tmp_path: Path) -> None:
    """``clickhouse_slow_writes`` on the Spring service (2026-12-01, quiet machine): 0.8 s of ClickHouse latency
    raised the processing p95 to 0.89 s, not the 2 s the experiment needs, and CriticalProcessingLatency (> 2 s)
    rightly stayed silent. Without the effect the alert's silence proves nothing: inconclusive, never a fail
    (it was a fail before ``resilience/judge.py:_unproven_alerts``)."""
    from resilience.judge import judge

    run_dir = Path(shutil.copytree(SLOW_WRITES_SPRING, tmp_path / "run"))
    j = judge(run_dir, json.loads((run_dir / "run.json").read_text()), "http://127.0.0.1:1", live=False)
    by = {v.slo: v for v in j.verdicts}
    assert by["fault_effect:processing_p95"].outcome is Outcome.INCONCLUSIVE
    critical = by["alert:CriticalProcessingLatency"]
    assert critical.outcome is Outcome.INCONCLUSIVE and "did not take the effect" in critical.reason, critical
    assert by["alert:HighProcessingLatency"].outcome is Outcome.PASS  # 0.89 s > 0.5 s: this one fired, and counts
    assert j.outcome is Outcome.INCONCLUSIVE, [(v.slo, v.outcome) for v in j.verdicts if not v.passed]
