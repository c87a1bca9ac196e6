"""``down`` leaves the machine as it was: no process, mount, cgroup, namespace, link, firewall rule or sysctl.

Runs last in this folder (its name) but does not depend on it: the other tests bring the cluster
back up when they find it down. Pods are running when it takes the cluster down, so containers,
shims, overlay mounts, pod network namespaces and pod cgroups all exist to be cleaned up.
"""

from __future__ import annotations

import kubernetes
import pytest
import urllib3

from cluster import cgroups, workloads
from tests.cluster.conftest import ClusterUnderTest
from tests.cluster.hoststate import HostState, cluster_processes, diff

# the first test also waits for the session fixture: a cold install (deploy/k8s/local/install.sh) takes ~45 min
pytestmark = [pytest.mark.k8s_cluster, pytest.mark.timeout(3600)]


def test_down_leaves_nothing_behind(cluster_up: ClusterUnderTest, kube: kubernetes.client.ApiClient) -> None:
    lc, settings = cluster_up.cluster, cluster_up.settings
    core = kubernetes.client.CoreV1Api(kube)
    namespace = "left-behind"  # not the `namespace` fixture: nothing may talk to the cluster after `down`
    core.create_namespace({"metadata": {"name": namespace}}, _request_timeout=10)
    workloads.wait_for("ServiceAccount default", lambda: core.list_namespaced_service_account(
        namespace, field_selector="metadata.name=default", _request_timeout=10).items, timeout=30)
    kubernetes.utils.create_from_yaml(kube, yaml_objects=workloads.statefulset("left", cluster_up.base_image(), 2),
                                      namespace=namespace)
    workloads.wait_for("2 Ready pods", lambda: sum(workloads.pod_ready(p) for p in core.list_namespaced_pod(
        namespace, _request_timeout=10).items) == 2, timeout=180)
    ns_inodes = cluster_up.ns_inodes | set(lc.ns.inodes().values())
    running = cluster_processes(cluster_up.markers, ns_inodes, settings.cgroup_root)
    pod_pids = cgroups.pids(settings.cgroup_root)
    # the snapshot below must be able to see what it looks for
    assert len(pod_pids) >= 4, f"expected pause + server processes of 2 pods below {settings.cgroup_root}"
    assert len(running) > 10, running
    during = HostState.capture()
    assert diff(cluster_up.before, during, settings.cgroup_root), "the snapshot must see a running cluster"

    problems = lc.down(purge=False)
    assert problems == []
    after = HostState.capture()
    left = cluster_processes(cluster_up.markers, ns_inodes, settings.cgroup_root)
    assert left == {}, f"processes left by down: {left}"
    assert diff(cluster_up.before, after, settings.cgroup_root) == []
    assert not lc.status().healthy
    # the API is gone from the machine's loopback port (a request there cannot leave the machine)
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        core.list_namespace(_request_timeout=5)
