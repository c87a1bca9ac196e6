"""The liveness_restart measurement (probes/liveness.py) from a journal and restart-counter series, with
Prometheus faked at its boundary (``prom.range_query``); and its objective against the manifest's timing."""

from __future__ import annotations

import math
from typing import Any

import pytest

from probes import liveness, prom
from probes.evaluate import RunWindow
from probes.slo import load_catalogue
from stack.liveness import manifest_timing

CAT = load_catalogue()
VIEW = CAT.view("local")
T0 = 1_000_000.0


def journal(hung: dict[str, int], resumed: list[int]) -> dict[str, Any]:
    return {"run": [{"activity": {"provider": {"func": "hang_replicas"}}, "status": "succeeded",
                     "output": {"details": {"hung": sorted(hung), "pids": hung}}}],
            "rollbacks": [{"activity": {"provider": {"func": "resume_replicas"}}, "status": "succeeded",
                           "output": {"details": {"resumed": resumed}}}]}


def fake(monkeypatch: pytest.MonkeyPatch, counters: dict[str, list[tuple[float, float]]]) -> None:
    def range_query(url: str, query: str, start: float, end: float, step_s: float = 1.0) -> list[prom.Series]:
        assert "kube_pod_container_status_restarts_total" in query
        return [prom.Series({"pod": pod}, [(t, v) for t, v in pts if start <= t <= end])
                for pod, pts in counters.items()]

    monkeypatch.setattr(prom, "range_query", range_query)


def measure(j: dict[str, Any], end: float) -> Any:
    hung, resumed = liveness.from_journal(j)
    return liveness.restart_seconds(CAT, VIEW, "http://prom", RunWindow(T0 - 30, end, T0, None), hung, resumed)


def steps(before: float, after: float, at: float) -> list[tuple[float, float]]:
    return [(T0 + dt / 2, before if dt / 2 < at else after) for dt in range(-40, 400)]


def test_restart_seconds_is_from_the_hang_to_the_counter_rising(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, {"audit-service-1": steps(2, 3, 63.5), "audit-service-0": steps(0, 0, 0)})
    m = measure(journal({"audit-service-1": 4242}, []), T0 + 100)
    assert m.value == 63.5 and m.reason == ""


def test_not_restarted_before_the_rollback_is_infinite(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, {"audit-service-1": steps(0, 1, 150)})  # the restart came after the rollback at +110 s
    m = measure(journal({"audit-service-1": 4242}, []), T0 + 110)
    assert m.value == math.inf and "not restarted" in m.reason


def test_resumed_by_the_rollback_is_a_failure_even_if_a_counter_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, {"audit-service-1": steps(0, 1, 20)})
    m = measure(journal({"audit-service-1": 4242}, [4242]), T0 + 110)
    assert m.value == math.inf and "recovered only by the rollback" in m.reason


def test_on_kubernetes_the_resumed_pods_are_named_since_pids_repeat_across_pods(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two hung pods with the same pid (each pod its own PID namespace): the rollback resumed one of them. Judged
    by pids, both would be "recovered only by the rollback"; by name, only that one is."""
    fake(monkeypatch, {"sql-audit-service-1": steps(0, 1, 58), "sql-audit-service-2": steps(0, 0, 0)})
    j = journal({"sql-audit-service-1": 7, "sql-audit-service-2": 7}, [7])
    j["rollbacks"][0]["output"]["details"]["resumed_replicas"] = ["sql-audit-service-2"]
    m = measure(j, T0 + 110)
    assert m.value == math.inf and m.details["recovered_by_rollback"] == ["sql-audit-service-2"]
    j["rollbacks"][0]["output"]["details"]["resumed_replicas"] = []  # liveness restarted both, nothing resumed
    fake(monkeypatch, {"sql-audit-service-1": steps(0, 1, 58), "sql-audit-service-2": steps(0, 1, 61)})
    assert measure(j, T0 + 110).value == 61


def test_no_hang_or_no_counter_is_inconclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, {"audit-service-0": steps(0, 0, 0)})
    assert measure({"run": []}, T0 + 100).value is None
    m = measure(journal({"audit-service-1": 4242}, []), T0 + 100)
    assert m.value is None and "no restart counter of audit-service-1" in m.reason


def test_the_objective_is_the_manifests_restart_bound() -> None:
    slo = CAT.slo("liveness_restart")
    assert slo.objective.value == manifest_timing().restart_bound_s
    scenario = CAT.scenario("service_hang")
    assert scenario.rto is not None
    t = manifest_timing()
    assert scenario.rto.max_s == t.restart_bound_s + t.startup_period_s * t.startup_failure_threshold
