"""A hung replica is restarted by the local stack's liveness prober, and the hang's rollback leaves nothing.

On the session stack: one replica is frozen with the real fault (SIGSTOP, journaled); the pod-state exporter's
liveness prober (stack/liveness.py, the kubelet's part) must kill it after three failed probes and the grace
period, supervisord starts a new process (a new pid) and the restart counter rises by one. The rollback then
finds the hung pid gone: it signals nothing and says so; the fixture's teardown checks that every program is
RUNNING and none is stopped.

This is the guard of the prober: with ``RESILIENCE_LIVENESS=off`` in the environment the session stack runs
without it and this test fails at its first wait (no replica is ever liveness-probed: "the liveness prober never
passed every replica's startup probe", seen 2026-12-02); were that wait removed, the frozen replica would keep its
pid and the wait for a new one would fail.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from faults import replica_hang
from stack.core import LocalStack
from stack.liveness import manifest_timing

pytestmark = [pytest.mark.stack, pytest.mark.extended]

SLACK_S = 45.0
"""On top of the restart bound: a busy 2-core machine delays probes, the kill and supervisord's spawn."""


def restarts(stack: LocalStack, pod: str) -> float | None:
    """The pod's restart counter as the exporter serves it (``None``: no such series)."""
    text = requests.get(f"http://127.0.0.1:{stack.endpoints.port('pod_state_exporter')}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("kube_pod_container_status_restarts_total{") and f'pod="{pod}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def live_probed(stack: LocalStack, pod: str) -> bool:
    """Whether the prober has passed the pod's startup probe and probes its liveness (a hang is seen from now)."""
    text = requests.get(f"http://127.0.0.1:{stack.endpoints.port('pod_state_exporter')}/metrics", timeout=5).text
    return any(line.startswith("prober_probe_total{") and f'pod="{pod}"' in line and 'probe_type="Startup"' in line
               and 'result="successful"' in line for line in text.splitlines())


def test_a_hung_replica_is_restarted_by_liveness_and_the_rollback_signals_nothing(
        stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    pods = [f"audit-service-{i}" for i in range(3)]
    deadline = time.monotonic() + 60
    while not all(live_probed(stack, p) for p in pods):
        assert time.monotonic() < deadline, "the liveness prober never passed every replica's startup probe " \
                                            "(is it running? RESILIENCE_LIVENESS=off leaves it out)"
        time.sleep(1)
    before = {p: restarts(stack, p) for p in pods}

    result = replica_hang.hang_replicas(count=1, configuration=config)
    t0 = time.monotonic()
    [pod] = result["details"]["hung"]
    hung_pid = result["details"]["pids"][pod]
    assert psutil.Process(hung_pid).status() == psutil.STATUS_STOPPED

    bound = manifest_timing().restart_bound_s + SLACK_S
    while True:
        info = stack.supervisor.info(pod)
        if info["pid"] and int(info["pid"]) != hung_pid and info["statename"] == "RUNNING":
            break
        assert time.monotonic() - t0 < bound, (
            f"{pod} (pid {hung_pid}, SIGSTOPped) not restarted {bound:.0f} s after the hang: the liveness prober "
            f"did not kill it (state {info['statename']}, pid {info['pid']})")
        time.sleep(0.5)
    restarted_after = time.monotonic() - t0
    print(f"\n{pod}: hung pid {hung_pid} replaced by pid {info['pid']} {restarted_after:.1f} s after the SIGSTOP")
    assert not psutil.pid_exists(hung_pid) or psutil.Process(hung_pid).status() == psutil.STATUS_ZOMBIE

    deadline = time.monotonic() + 15
    while restarts(stack, pod) != (before[pod] or 0) + 1:
        assert time.monotonic() < deadline, f"restart counter of {pod}: {restarts(stack, pod)}, was {before[pod]}"
        time.sleep(0.5)
    assert {p: restarts(stack, p) for p in pods if p != pod} == {p: before[p] for p in pods if p != pod}

    out = replica_hang.resume_replicas(configuration=config)
    assert out["details"]["resumed"] == [] and out["details"]["restarted"] == [pod], out
    assert out["reverted_entries"] == [result["fault_id"]]
