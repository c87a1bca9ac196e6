"""NetworkPolicy is enforced (kube-router): real TCP between two pods, allowed, cut, restored.

A prober pod opens a TCP connection to a server pod every 100 ms and logs each outcome. The test
fails unless: connections succeed before the policy; a deny-all-ingress policy on the server makes
them fail (steadily) within 30 s and they stay failed while it exists; deleting it lets them
succeed again within 30 s. The times to cut and to restore are printed, not asserted.
"""

from __future__ import annotations

import time

import kubernetes
import pytest

from cluster import workloads
from tests.cluster.conftest import ClusterUnderTest

# the first test also waits for the session fixture: a cold install (deploy/k8s/local/install.sh) takes ~45 min
pytestmark = [pytest.mark.k8s_cluster, pytest.mark.timeout(3600)]


def test_deny_policy_cuts_tcp_and_deleting_it_restores(cluster_up: ClusterUnderTest,
                                                       kube: kubernetes.client.ApiClient, namespace: str,
                                                       record_property: pytest.RecordProperty) -> None:
    core = kubernetes.client.CoreV1Api(kube)
    net = kubernetes.client.NetworkingV1Api(kube)
    image = cluster_up.base_image()
    core.create_namespaced_pod(namespace, workloads.tcp_server("server", image), _request_timeout=10)
    server = workloads.wait_for("server Ready", lambda: (p := core.read_namespaced_pod(
        "server", namespace, _request_timeout=10)) and workloads.pod_ready(p) and p, timeout=120)
    core.create_namespaced_pod(namespace, workloads.tcp_client("client", image, server.status.pod_ip),
                               _request_timeout=10)

    def log() -> list[workloads.Attempt]:
        try:
            return workloads.probe_log(core, namespace, "client")
        except kubernetes.client.ApiException:
            return []

    start = time.time()
    workloads.wait_for("TCP client -> server succeeding before any policy",
                       lambda: workloads.first_stable(log(), start, ok=True), timeout=120, interval=0.2)

    policy = workloads.deny_ingress_policy("deny-server", {"app": "server"})
    net.create_namespaced_network_policy(namespace, policy, _request_timeout=10)
    applied = time.time()
    cut = workloads.wait_for("TCP cut by the deny policy (kube-router must enforce it)",
                             lambda: workloads.first_stable(log(), applied, ok=False), timeout=30, interval=0.2)
    # it stays cut while the policy exists: 3 s of attempts after the cut, none succeeds
    time.sleep(3)
    during = [a for a in log() if a.at >= cut.at]
    assert len(during) >= 10, f"prober stopped logging: {during}"
    assert not any(a.ok for a in during), f"connections got through the deny policy: {[a for a in during if a.ok]}"

    net.delete_namespaced_network_policy("deny-server", namespace, _request_timeout=10)
    deleted = time.time()
    restored = workloads.wait_for("TCP restored after the policy was deleted",
                                  lambda: workloads.first_stable(log(), deleted, ok=True), timeout=30, interval=0.2)
    record_property("policy_cut_s", round(cut.at - applied, 2))
    record_property("policy_restore_s", round(restored.at - deleted, 2))
    print(f"\ndeny policy cut TCP after {cut.at - applied:.2f} s; deleting it restored TCP after "
          f"{restored.at - deleted:.2f} s (probe every 0.1 s, connect timeout 0.3 s)")
