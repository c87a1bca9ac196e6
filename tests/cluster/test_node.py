"""The node is Ready, every component healthy, and the machine's global sysctls untouched while it runs."""

from __future__ import annotations

import ipaddress
import subprocess

import kubernetes
import pytest

from cluster import sysctls
from tests.cluster.conftest import ClusterUnderTest

# the first test also waits for the session fixture: a cold install (deploy/k8s/local/install.sh) takes ~45 min
pytestmark = [pytest.mark.k8s_cluster, pytest.mark.timeout(3600)]


def test_node_ready_and_components_healthy(cluster_up: ClusterUnderTest, kube: kubernetes.client.ApiClient) -> None:
    node = kubernetes.client.CoreV1Api(kube).read_node(cluster_up.settings.node_name, _request_timeout=10)
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "True", ready
    addresses = {a.type: a.address for a in node.status.addresses}
    assert addresses["InternalIP"] == cluster_up.settings.node_ip
    assert node.spec.pod_cidr == cluster_up.settings.pod_cidr
    status = cluster_up.cluster.status()
    names = {c.name for c in status.components}
    assert {"containerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
            "kube-proxy", "kube-router", "node", "coredns", "images", "namespaces", "host sysctls"} <= names
    assert status.healthy, [c.as_dict() for c in status.components if not c.healthy]


def test_kubelet_left_the_machine_sysctls_alone(cluster_up: ClusterUnderTest) -> None:
    """The kubelet sets kernel.panic=10, kernel.panic_on_oops=1, vm.overcommit_memory=1 at start-up:
    inside the node it only reaches the masks, so the machine keeps its own values."""
    before = cluster_up.before.sysctls
    now = sysctls.snapshot(sysctls.KUBELET_TUNABLES)
    assert now == {k: before[k] for k in now}
    # and the kubelet did try: the masks hold what it wrote (else this test proves nothing)
    masks = cluster_up.settings.state_dir / "node" / "sysctl-masks"
    written = {f.name: f.read_text().strip() for f in masks.iterdir()}
    assert written["kernel.panic"] == "10" and written["kernel.panic_on_oops"] == "1", written


def test_node_has_no_route_out(cluster_up: ClusterUnderTest) -> None:
    """Nothing in the node (and so in its pods, whose only way is the node) can reach past the machine:
    the routing table is asked, no packet is sent."""
    ns = cluster_up.cluster.ns
    routes = subprocess.run(ns.in_net("ip", "-4", "route", "show"), capture_output=True, text=True, timeout=10,
                            check=True).stdout
    assert "default" not in routes, routes
    # an address outside every range of the cluster (TEST-NET-3): the node has no way there
    res = subprocess.run(ns.in_net("ip", "-4", "route", "get", "203.0.113.7"), capture_output=True, text=True,
                         timeout=10, check=False)
    assert res.returncode != 0 and "unreachable" in res.stderr.lower(), (res.stdout, res.stderr)
    # while the node's own ranges are routed (else the check above would prove nothing)
    pod_address = str(ipaddress.IPv4Network(cluster_up.settings.pod_cidr)[200])
    res = subprocess.run(ns.in_net("ip", "-4", "route", "get", pod_address), capture_output=True, text=True,
                         timeout=10, check=True)
    assert "cni0" in res.stdout, res.stdout
