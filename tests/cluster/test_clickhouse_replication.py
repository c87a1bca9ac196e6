"""ClickHouse's two replicas and ZooKeeper on the local cluster (marker ``k8s_cluster``).

A row written to replica 0 (the NodePort the probes read) reaches replica 1 through ZooKeeper and the interserver
port; replica 1 held down by ``stop_clickhouse(replica=1)`` misses a row written meanwhile and fetches it once
``start_clickhouse`` brings it back. Replica 1 is read inside its pod (``clickhouse-client`` through pods/exec):
nothing outside the cluster reaches it, which is the point of reading one replica from the machine.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from clickhouse_driver import Client
from kubernetes.stream import stream

from cluster import system
from tests.cluster.conftest import ClusterUnderTest

pytestmark = [pytest.mark.k8s_cluster]


def on_replica_1(kube: kubernetes.client.ApiClient, query: str) -> str:
    core = kubernetes.client.CoreV1Api(kube)
    return str(stream(core.connect_get_namespaced_pod_exec, "clickhouse-1", system.NAMESPACE, container="clickhouse",
                      command=["clickhouse-client", "-q", query], stderr=True, stdout=True, stdin=False,
                      tty=False)).strip()


def count_on_replica_1(kube: kubernetes.client.ApiClient, marker: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while True:
        seen = on_replica_1(kube, f"SELECT count() FROM sqlaudit.audit_events WHERE event_id = '{marker}'")
        if seen == "1" or time.monotonic() > deadline:
            return int(seen) if seen.isdigit() else -1
        time.sleep(1)


@pytest.mark.extended
def test_a_row_written_to_one_replica_reaches_the_other_even_one_held_down_meanwhile(
        cluster_up: ClusterUnderTest, kube: kubernetes.client.ApiClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from faults.clickhouse_down import start_clickhouse, stop_clickhouse

    target = system.deploy(cluster_up.settings, progress=lambda step, detail: None)
    monkeypatch.setenv("RESILIENCE_TARGET_CONFIG", str(target))
    config: dict[str, Any] = {"target": "kubernetes", "fault_state_dir": str(tmp_path / "faults")}
    replica_0 = Client(host=cluster_up.settings.node_ip, port=system.NODE_PORTS["clickhouse"], connect_timeout=5)

    def write(marker: str) -> None:
        replica_0.execute("INSERT INTO sqlaudit.audit_events (event_id, app, stored_at_ms) VALUES",
                          [(uuid.UUID(marker), "resilience-test-marker", int(time.time() * 1000))])

    assert on_replica_1(kube, "SELECT total_replicas, active_replicas FROM system.replicas "
                              "WHERE table = 'audit_events'").split() == ["2", "2"]
    first = str(uuid.uuid4())
    written = time.monotonic()
    write(first)
    assert count_on_replica_1(kube, first) == 1
    print(f"\na row on replica 0 was on replica 1 {time.monotonic() - written:.1f} s later")

    stop_clickhouse(replica=1, configuration=config)
    second = str(uuid.uuid4())
    write(second)  # replica 0 takes writes alone
    start_clickhouse(configuration=config)
    assert count_on_replica_1(kube, second) == 1  # fetched from replica 0 once back
    assert replica_0.execute(f"SELECT count() FROM sqlaudit.audit_events WHERE event_id IN ('{first}', "
                             f"'{second}')") == [(2,)]
    replica_0.disconnect()


def test_the_judges_count_waits_for_the_replica_it_reads_to_fetch_what_the_other_took(
        cluster_up: ClusterUnderTest, kube: kubernetes.client.ApiClient) -> None:
    """The service writes through either replica; the suite counts replica 0. Rows written to replica 1 while
    replica 0's fetches are stopped are not on replica 0 (the false loss of a count taken too early), and
    ``read_stored`` returns them all once the fetches resume: it waits in ``SYSTEM SYNC REPLICA``."""
    from probes.dataloss import read_stored

    system.deploy(cluster_up.settings, progress=lambda step, detail: None)
    replica_0 = Client(host=cluster_up.settings.node_ip, port=system.NODE_PORTS["clickhouse"], connect_timeout=5)
    now = int(time.time() * 1000)
    ids = [str(uuid.uuid4()) for _ in range(20)]
    replica_0.execute("SYSTEM STOP FETCHES sqlaudit.audit_events")
    resumed = threading.Timer(3.0, lambda: replica_0.execute("SYSTEM START FETCHES sqlaudit.audit_events"))
    try:
        rows = ", ".join(f"('{i}', 'resilience-test-marker', {now}, {now})" for i in ids)
        on_replica_1(kube, f"INSERT INTO sqlaudit.audit_events (event_id, app, produced_at_ms, stored_at_ms) "
                           f"VALUES {rows}")
        assert on_replica_1(kube, f"SELECT count() FROM sqlaudit.audit_events WHERE produced_at_ms = {now}") == "20"
        time.sleep(1)
        assert replica_0.execute(f"SELECT count() FROM sqlaudit.audit_events WHERE produced_at_ms = {now}") == [(0,)]
        resumed.start()
        t0 = time.monotonic()
        stored = read_stored(cluster_up.settings.node_ip, system.NODE_PORTS["clickhouse"], now, now)
        print(f"\nread_stored waited {time.monotonic() - t0:.1f} s for replica 0 to fetch replica 1's rows")
        assert sorted(stored) == sorted(ids)
    finally:
        resumed.cancel()
        resumed.join()
        replica_0.execute("SYSTEM START FETCHES sqlaudit.audit_events")
        replica_0.disconnect()
