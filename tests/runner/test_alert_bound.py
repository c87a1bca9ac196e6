"""A run observes until every expected alert has fired or its bound has passed, so an alert that never fires
is judged a fail; a method that ended sooner made it "the run ended before the bound" (inconclusive).
Prometheus is faked at the boundary (the rules and their firing are tested live in tests/alerts)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from probes import prom
from probes.evaluate import RunWindow
from probes.verdict import Outcome
from resilience import alerting, runner
from resilience.experiments import load, resolve
from resilience.plan import RunPlan
from tests.judge.test_alert_verdicts import FakePrometheus

T0 = 1_000_000.0  # the fault's start


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(T0 + 20)  # the method ended 20 s after the fault's start
    monkeypatch.setattr(runner.time, "time", c.time)
    monkeypatch.setattr(runner.time, "sleep", c.sleep)
    monkeypatch.setattr(runner, "_fault_window", lambda p, run_id: {"start": T0, "end": T0 + 10})
    return c


def _plan() -> RunPlan:  # cluster_loss expects four alerts, the latest within 60 s
    return cast(RunPlan, SimpleNamespace(exp=load(resolve("cluster_loss")), prometheus_url="http://prometheus.invalid"))


def _verdicts(end: float) -> dict[str, Any]:
    exp = _plan().exp
    entry = {"watchdog": "Watchdog", "expected": [e.model_dump() for e in exp.ext.expect_alerts]}
    window = RunWindow(start=T0 - 60, end=end, fault_start=T0, fault_end=T0 + 10)
    return {v.slo: v.outcome for v in alerting.alert_verdicts("http://prometheus.invalid", window, entry)}


def test_an_alert_that_never_fires_is_observed_to_its_bound_and_fails(monkeypatch: pytest.MonkeyPatch,
                                                                      clock: Clock) -> None:
    fired = {"Watchdog": [(T0 - 100, T0 + 1000)], "SLOViolation_Availability": [(T0 + 8, T0 + 200)],
             "KafkaConsumerDown": [(T0 + 12, T0 + 40)], "ApplicationNotLive": [(T0 + 15, T0 + 40)]}
    monkeypatch.setattr(prom, "range_query", FakePrometheus(fired).range_query)  # ApplicationNotReady never fires
    assert _verdicts(clock.now)["alert:ApplicationNotReady"] is Outcome.INCONCLUSIVE  # ended before its bound
    said: list[str] = []
    runner._observe_expected_alerts(_plan(), "run", lambda ph, d: said.append(d))
    assert T0 + 60 <= clock.now < T0 + 63 and "ApplicationNotReady not fired yet" in said[0]
    assert _verdicts(clock.now)["alert:ApplicationNotReady"] is Outcome.FAIL


def test_a_run_whose_alerts_all_fired_is_not_kept_waiting(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    every = {n: [(T0 + 5, T0 + 15)] for n in ("Watchdog", "SLOViolation_Availability", "KafkaConsumerDown",
                                              "ApplicationNotLive", "ApplicationNotReady")}
    monkeypatch.setattr(prom, "range_query", FakePrometheus(every).range_query)
    runner._observe_expected_alerts(_plan(), "run", lambda ph, d: None)
    assert clock.now == T0 + 20


def test_prometheus_unreachable_does_not_keep_the_run(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    def down(*a: Any, **k: Any) -> list[prom.Series]:
        raise prom.ProbeError("Prometheus at http://prometheus.invalid: connection refused")

    monkeypatch.setattr(prom, "range_query", down)
    runner._observe_expected_alerts(_plan(), "run", lambda ph, d: None)
    assert clock.now == T0 + 20
