"""The scale action on the real stack: 3 -> 5 replicas are 5 members of the consumer group, 5 ready replicas in
Prometheus (the pod-state exporter's kube-state-metrics series), 5 scrape targets and 5 replicas under the
liveness prober; the restore returns to 3 with nothing of the extra two left (the residue audit clean).

Guard: if the restore did not scale back (``stack.scale.scale_back`` a no-op, or the rollback gone and nothing
else undoing it), ``test_scale_out_is_real_and_the_restore_leaves_nothing`` fails on the residue audit naming
the programs, scrape targets and exporter pods left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from clients.kafka_lag import GroupAssignment, LagReader
from faults import replica_count, residue
from stack.components.audit_service import GROUP
from stack.core import LocalStack
from stack.endpoints import CONSUMER_GROUP, TOPIC
from target.settings import resolve

pytestmark = pytest.mark.stack

WAIT_S = 120.0


def _wait(what: str, value: Callable[[], Any], want: Callable[[Any], bool], timeout: float = WAIT_S) -> Any:
    """Poll ``value()`` until ``want`` holds (bounded); the last value in the failure message."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = value()
        except Exception as exc:  # a read racing a rebalance or a reload: try again
            last = exc
        if not isinstance(last, Exception) and want(last):
            return last
        assert time.monotonic() < deadline, f"{what}: still {last!r} after {timeout:.0f} s"
        time.sleep(0.5)


def _prom(stack: LocalStack, query: str) -> float | None:
    resp = requests.get(f"{stack.endpoints.prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
    result = resp.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _group(stack: LocalStack) -> GroupAssignment:
    with LagReader(stack.endpoints.kafka_bootstrap, CONSUMER_GROUP, TOPIC) as reader:
        return reader.assignment()


def _targets(stack: LocalStack) -> list[tuple[str, str]]:
    resp = requests.get(f"{stack.endpoints.prometheus_url}/api/v1/targets", params={"state": "active"}, timeout=5)
    return sorted((t["labels"]["component"], t["health"]) for t in resp.json()["data"]["activeTargets"]
                  if t["labels"].get("job") == GROUP)


def _before(settings: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        snap = residue.snapshot(settings)
        if residue.diff(residue.at_rest(snap), snap, "at rest").clean or time.monotonic() > deadline:
            return snap
        time.sleep(1)


def test_scale_out_is_real_and_the_restore_leaves_nothing(stack: LocalStack, config: dict[str, Any]) -> None:
    cfg = {**config, "watchdog": False}
    settings = resolve(cfg)
    before = _before(settings)
    ready = 'kube_statefulset_status_replicas_ready{namespace="local", statefulset="audit-service"}'
    desired = 'kube_statefulset_replicas{namespace="local", statefulset="audit-service"}'
    _wait("3 group members", lambda: _group(stack), lambda g: g.complete and len(g.members) == 3)
    pids = {i["name"]: i["pid"] for i in stack.supervisor.group(GROUP)}
    result = replica_count.scale_replicas(5, configuration=cfg)
    try:
        assert result["details"]["added"] == ["audit-service-3", "audit-service-4"]
        members = _wait("5 members of the consumer group", lambda: _group(stack),
                        lambda g: g.complete and len(g.members) == 5).members
        assert members == tuple(f"sqlaudit-audit-service-{i}" for i in range(5))
        _wait("5 ready replicas in Prometheus", lambda: _prom(stack, ready), lambda v: v == 5)
        assert _prom(stack, desired) == 5
        _wait("5 scrape targets up", lambda: _targets(stack),
              lambda t: t == [(f"audit-service-{i}", "up") for i in range(5)])
        # the liveness prober follows the scale: the new replicas passed their startup probe and are probed for
        # liveness, as the kubelet probes a new pod's container
        live = ('count(prober_probe_total{namespace="local", pod=~"audit-service-[34]", probe_type="Liveness", '
                'result="successful"})')
        _wait("the added replicas probed for liveness", lambda: _prom(stack, live), lambda v: v == 2)
        # the three that ran were not restarted by the scale
        assert {n: p for n, p in ((i["name"], i["pid"]) for i in stack.supervisor.group(GROUP))
                if n in pids} == pids
        during = " | ".join(map(str, residue.diff(before, residue.snapshot(settings)).leftovers))
        for named in ("program audit-service-4: supervised now", "scaled from 3 and not scaled back",
                      "audit-service Prometheus scrape targets"):
            assert named in during, f"{named!r} not named in: {during}"
    finally:
        restored = replica_count.restore_replica_count(configuration=cfg)
    _, audit, waited = residue.settle(settings, before, timeout=WAIT_S)
    assert audit.clean, f"scaled back, yet after {waited:.0f} s: {audit.describe()}"
    assert restored["details"]["removed"] == ["audit-service-4", "audit-service-3"]
    assert [i["name"] for i in stack.supervisor.group(GROUP)] == [f"audit-service-{i}" for i in range(3)]
    _wait("3 members of the consumer group again", lambda: _group(stack), lambda g: g.complete and len(g.members) == 3)
    _wait("3 ready replicas in Prometheus again", lambda: _prom(stack, ready), lambda v: v == 3)
    assert _prom(stack, desired) == 3
    assert stack._read_state()["replicas"] == 3 and "scaled_from" not in stack._read_state()
