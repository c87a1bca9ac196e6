"""Pods of the base image on the real kubelet: a 3-replica StatefulSet Ready, a deleted pod back, DNS."""

from __future__ import annotations

import subprocess
import time

import kubernetes
import pytest

from cluster import workloads
from cluster.install import load_manifest
from tests.cluster.conftest import ClusterUnderTest

# the first test also waits for the session fixture: a cold install (deploy/k8s/local/install.sh) takes ~45 min
pytestmark = [pytest.mark.k8s_cluster, pytest.mark.timeout(3600)]


def _create(kube: kubernetes.client.ApiClient, namespace: str, docs: list[dict[str, object]]) -> None:
    kubernetes.utils.create_from_yaml(kube, yaml_objects=docs, namespace=namespace)


def _ready_pods(core: kubernetes.client.CoreV1Api, namespace: str, app: str) -> dict[str, object]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}", _request_timeout=10).items
    return {p.metadata.name: p for p in pods if workloads.pod_ready(p) and p.metadata.deletion_timestamp is None}


def test_statefulset_ready_and_deleted_pod_comes_back(cluster_up: ClusterUnderTest, kube: kubernetes.client.ApiClient,
                                                      namespace: str, record_property: pytest.RecordProperty) -> None:
    core = kubernetes.client.CoreV1Api(kube)
    t0 = time.monotonic()
    _create(kube, namespace, workloads.statefulset("web", cluster_up.base_image(), replicas=3))
    workloads.wait_for("3 Ready pods of StatefulSet web",
                       lambda: len(_ready_pods(core, namespace, "web")) == 3, timeout=180)
    record_property("statefulset_ready_s", round(time.monotonic() - t0, 2))
    sts = kubernetes.client.AppsV1Api(kube).read_namespaced_stateful_set("web", namespace, _request_timeout=10)
    workloads.wait_for("StatefulSet status readyReplicas=3",
                       lambda: (kubernetes.client.AppsV1Api(kube).read_namespaced_stateful_set(
                           "web", namespace, _request_timeout=10).status.ready_replicas or 0) == 3, timeout=30)
    assert sts.spec.replicas == 3

    old = core.read_namespaced_pod("web-1", namespace, _request_timeout=10)
    old_uid, old_ip = old.metadata.uid, old.status.pod_ip
    t_delete = time.monotonic()
    core.delete_namespaced_pod("web-1", namespace, _request_timeout=10)

    def replaced_and_ready() -> bool:
        try:
            pod = core.read_namespaced_pod("web-1", namespace, _request_timeout=10)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return pod.metadata.uid != old_uid and workloads.pod_ready(pod)

    workloads.wait_for("web-1 replaced and Ready", replaced_and_ready, timeout=120, interval=0.05)
    elapsed = time.monotonic() - t_delete
    record_property("deleted_pod_ready_again_s", round(elapsed, 2))
    print(f"\ndeleted pod web-1 Running and Ready again after {elapsed:.2f} s (StatefulSet Ready "
          f"{t_delete - t0:.1f} s after create; old IP {old_ip})")
    new = core.read_namespaced_pod("web-1", namespace, _request_timeout=10)
    container = new.status.container_statuses[0]
    assert container.ready and container.state.running is not None
    assert container.image == cluster_up.base_image() or container.image.endswith(cluster_up.base_image())


def test_headless_service_names_resolve_in_pods(cluster_up: ClusterUnderTest, kube: kubernetes.client.ApiClient,
                                                namespace: str, record_property: pytest.RecordProperty) -> None:
    """CoreDNS answers the per-pod names of a headless Service (what Kafka and Patroni peers use)."""
    core = kubernetes.client.CoreV1Api(kube)
    _create(kube, namespace, workloads.statefulset("dns", cluster_up.base_image(), replicas=2))
    workloads.wait_for("2 Ready pods", lambda: len(_ready_pods(core, namespace, "dns")) == 2, timeout=180)
    ip1 = core.read_namespaced_pod("dns-1", namespace, _request_timeout=10).status.pod_ip
    discovery = kubernetes.client.DiscoveryV1Api(kube)

    def published() -> bool:
        slices = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector="kubernetes.io/service-name=dns", _request_timeout=10).items
        return any(ip1 in (e.addresses or []) and e.conditions and e.conditions.ready
                   for s in slices for e in (s.endpoints or []))

    # the record exists once the EndpointSlice controller has published the Ready pod; asking CoreDNS
    # before that caches the NXDOMAIN for its negative TTL (``cache 30``/``ttl 30``, as kubeadm's Corefile)
    workloads.wait_for(f"EndpointSlice of Service dns listing {ip1} ready", published, timeout=60, interval=0.2)
    name = f"dns-1.dns.{namespace}.svc.cluster.local"
    kubectl = load_manifest(cluster_up.settings).binary("kubectl")
    answers: list[str] = []

    def resolved() -> bool:
        res = subprocess.run([kubectl, "--kubeconfig", str(cluster_up.settings.admin_kubeconfig), "-n", namespace,
                              "exec", "dns-0", "--", "python3", "-c",
                              f"import socket; print(socket.gethostbyname('{name}'))"],
                             capture_output=True, text=True, timeout=30, check=False)
        answers.append(res.stdout.strip() or res.stderr.strip()[-300:])
        return answers[-1] == ip1

    # CoreDNS sees the slice through its watch within a moment; an NXDOMAIN it cached just before
    # lasts up to 30 s, so the wait spans two of those
    t0 = time.monotonic()
    try:
        workloads.wait_for(f"{name} resolved to {ip1}", resolved, timeout=65, interval=0.5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; {len(answers)} answers, first {answers[0]!r}, last {answers[-1]!r}") from exc
    record_property("headless_name_resolved_s", round(time.monotonic() - t0, 2))
