"""A run waits for the alerts its experiment expects to resolve when they were carried over from before it,
so a gate's verdict does not depend on the order of its scenarios (Prometheus' answers faked here; the
rules and their firing are tested live in tests/alerts and tests/judge)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from probes import prom
from resilience import plan
from resilience.experiments import load, resolve


def _plan(name: str) -> plan.RunPlan:
    return cast(plan.RunPlan, SimpleNamespace(exp=load(resolve(name)), prometheus_url="http://prometheus.invalid"))


@pytest.fixture
def active(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many more answers say the alert is active (then 0)."""
    left = [0]

    def instant(url: str, query: str, at: float | None = None, timeout_s: float = 5.0) -> float:
        if left[0] > 0:
            left[0] -= 1
            return 1.0
        return 0.0

    monkeypatch.setattr(prom, "instant", instant)
    monkeypatch.setattr(plan.time, "sleep", lambda s: None)
    return left


def test_a_carried_over_expected_alert_is_waited_for_and_named(active: list[int]) -> None:
    active[0] = 3
    said: list[str] = []
    assert plan.wait_alerts_resolved(_plan("cluster_loss"), lambda ph, d: said.append(d)) == []
    assert said and all("SLOViolation_Availability" in d and "carried over" in d for d in said)


def test_the_wait_is_bounded_and_says_what_is_still_active(active: list[int]) -> None:
    active[0] = 10**6
    still = plan.wait_alerts_resolved(_plan("cluster_loss"), lambda ph, d: None, timeout_s=0)
    assert "SLOViolation_Availability" in still


def test_an_experiment_that_expects_no_alert_does_not_ask(active: list[int]) -> None:
    active[0] = 10**6
    assert plan.wait_alerts_resolved(_plan("pod_failure"), lambda ph, d: None) == []


def test_an_unreachable_prometheus_is_left_to_the_runs_own_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*a: Any, **k: Any) -> float:
        raise prom.ProbeError("Prometheus at http://prometheus.invalid: query failed")

    monkeypatch.setattr(prom, "instant", down)
    assert plan.wait_alerts_resolved(_plan("cluster_loss"), lambda ph, d: None) == []
