"""PostgreSQL under Patroni on the local cluster: two members, Kubernetes as DCS (marker ``k8s_cluster``).

What the suite's PostgreSQL faults do to a real Patroni pair, through the real StatefulSet controller and
kubelet: the leader held down for a duration (``postgres_failure``'s action) is failed over to the other member
and the ``postgres`` Service follows the new leader's ``role`` label; the hold of the set's first pod moves
``spec.ordinals.start`` (a scale-down alone would stop the replica instead); ``restore_postgres`` brings the old
leader back as a streaming replica; ``switchover`` runs ``patronictl`` in the leader pod. Each step is checked
through the Service's NodePort the probes use, not only by labels: the answering server must be a primary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import psycopg
import pytest

from cluster import system
from cluster.workloads import wait_for
from faults.kubernetes.hold import first_ordinal
from tests.cluster.conftest import ClusterUnderTest

pytestmark = [pytest.mark.k8s_cluster, pytest.mark.extended]


def wait(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    return wait_for(what, check, timeout=timeout, interval=0.5)


def roles(kube: kubernetes.client.ApiClient) -> dict[str, str | None]:
    """Member pod -> the ``role`` label Patroni gave it (None while it has none), pods being deleted left out."""
    pods = kubernetes.client.CoreV1Api(kube).list_namespaced_pod(system.NAMESPACE, label_selector="app=postgres",
                                                                  _request_timeout=10).items
    return {p.metadata.name: (p.metadata.labels or {}).get("role") for p in pods
            if p.metadata.deletion_timestamp is None}


def primary_through_the_service(dsn: str) -> bool:
    """Whether the server behind the ``postgres`` Service's NodePort answers and is a primary."""
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return False


def statefulset(kube: kubernetes.client.ApiClient) -> tuple[int, int, dict[str, str]]:
    """``(spec.replicas, spec.ordinals.start, this library's annotations)`` of the postgres StatefulSet."""
    sts = kubernetes.client.AppsV1Api(kube).read_namespaced_stateful_set("postgres", system.NAMESPACE,
                                                                        _request_timeout=10)
    ours = {k: v for k, v in (sts.metadata.annotations or {}).items() if k.startswith("sql-audit-resilience/")}
    return sts.spec.replicas, first_ordinal(sts), ours


def synchronous_standby(kube: kubernetes.client.ApiClient, name: str) -> bool:
    """Whether Patroni made ``name`` the synchronous standby (its sync ConfigMap's annotation): a switchover needs
    one in synchronous mode, and a member just brought back gets the status a few seconds after it is Ready."""
    sync = kubernetes.client.CoreV1Api(kube).read_namespaced_config_map("sql-audit-postgres-sync", system.NAMESPACE,
                                                                        _request_timeout=10)
    return (sync.metadata.annotations or {}).get("sync_standby") == name


def leader(kube: kubernetes.client.ApiClient) -> str:
    return wait("one primary and one replica", lambda: (r := roles(kube)) and sorted(r.values(), key=str) ==
                ["primary", "replica"] and next(n for n, role in r.items() if role == "primary"))


def test_the_patroni_leader_held_down_fails_over_and_the_service_follows(cluster_up: ClusterUnderTest,
                                                                         kube: kubernetes.client.ApiClient,
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from faults.postgres_failover import fail_over_postgres, restore_postgres

    target = system.deploy(cluster_up.settings, progress=lambda step, detail: None)
    monkeypatch.setenv("RESILIENCE_TARGET_CONFIG", str(target))
    config: dict[str, Any] = {"target": "kubernetes", "fault_state_dir": str(tmp_path / "faults")}
    dsn = f"postgresql://postgres@{cluster_up.settings.node_ip}:{system.NODE_PORTS['postgres']}/postgres"
    assert statefulset(kube) == (2, 0, {})
    if leader(kube) != "postgres-0":  # the first pod leads, so the hold below moves the first ordinal
        wait("postgres-0 the synchronous standby", lambda: synchronous_standby(kube, "postgres-0"))
        fail_over_postgres(method="switchover", configuration=config)
        restore_postgres(configuration=config)
    assert primary_through_the_service(dsn)

    held_at = time.monotonic()
    result = fail_over_postgres(method="stop", duration=600, configuration=config)
    assert result["details"]["old_leader"] == "postgres-0", result
    replicas, start, notes = statefulset(kube)
    assert (replicas, start) == (1, 1), notes
    assert notes["sql-audit-resilience/ordinals-start-before"] == "0", notes
    wait("postgres-0 held down, postgres-1 the primary", lambda: roles(kube) == {"postgres-1": "primary"})
    wait("a primary behind the Service's NodePort", lambda: primary_through_the_service(dsn))
    print(f"\nleader postgres-0 held down: postgres-1 primary behind the Service "
          f"{time.monotonic() - held_at:.1f} s after the hold")
    time.sleep(3)  # held: the controller does not bring it back by itself
    assert roles(kube) == {"postgres-1": "primary"}

    restored = restore_postgres(configuration=config)
    assert restored["reverted_entries"] == [result["fault_id"]], restored
    assert statefulset(kube) == (2, 0, {})
    assert leader(kube) == "postgres-1"  # the old leader came back as a replica, not as a second primary
    assert primary_through_the_service(dsn)

    # the fault itself waits for the leader pod to change: patronictl exits 0 when Patroni refuses
    wait("postgres-0 the synchronous standby", lambda: synchronous_standby(kube, "postgres-0"))
    switched = fail_over_postgres(method="switchover", configuration=config)
    assert switched["details"]["changed"] == "patronictl switchover from postgres-1 to postgres-0", switched
    assert leader(kube) == "postgres-0"
    wait("a primary behind the Service's NodePort", lambda: primary_through_the_service(dsn))
    restore_postgres(configuration=config)
