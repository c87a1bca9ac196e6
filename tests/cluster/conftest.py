"""A real single-node cluster for the session (marker ``k8s_cluster``).

The ``local_cluster`` session fixture installs what is missing (deploy/k8s/local/install.sh: cached,
seconds when done; about 20 min cold — never a skip), takes a snapshot of the machine
(:mod:`tests.cluster.hoststate`), brings the cluster up, and at the end takes it down with
``--purge`` whatever happened. ``cluster_up`` (per test) brings it back up if a test took it down,
so the tests do not depend on their order. State lives in ``$RESILIENCE_CLUSTER_DIR`` or
``$RESILIENCE_DATA_ROOT/test-cluster``; name, ranges and API port default to :data:`TEST_DEFAULTS`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import kubernetes
import pytest

from cluster import ClusterSettings, LocalCluster, system, workloads
from cluster.install import load_manifest, run_install
from cluster.settings import DEFAULT_DATA_ROOT
from tests.cluster.hoststate import HostState


@dataclass
class ClusterUnderTest:
    cluster: LocalCluster
    before: HostState            # the machine before the session's first `up`
    ns_inodes: set[int]          # the node's namespaces, as seen while it ran
    markers: tuple[str, ...]     # command-line fragments only cluster processes have

    @property
    def settings(self) -> ClusterSettings:
        return self.cluster.settings

    def base_image(self) -> str:
        return load_manifest(self.settings).images["base"].ref


# The test cluster's own name, ranges and port unless the environment sets them: it can run beside a
# cluster started with the defaults.
TEST_DEFAULTS = {"RESILIENCE_CLUSTER_NAME": "sartest", "RESILIENCE_CLUSTER_NODE_CIDR": "10.87.1.0/24",
                 "RESILIENCE_CLUSTER_POD_CIDR": "10.88.1.0/24", "RESILIENCE_CLUSTER_SERVICE_CIDR": "10.96.1.0/24",
                 "RESILIENCE_CLUSTER_API_PORT": "16444"}


def _settings() -> ClusterSettings:
    env = {**TEST_DEFAULTS, **os.environ}
    state_dir = env.get("RESILIENCE_CLUSTER_DIR")
    root = Path(env.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT))
    return ClusterSettings.from_env(Path(state_dir) if state_dir else root / "test-cluster", env=env)


@pytest.fixture(scope="session")
def local_cluster(claim_resource: Callable[[str], None]) -> Iterator[ClusterUnderTest]:
    settings = _settings()
    run_install(settings)
    load_manifest(settings)
    claim_resource(f"cluster-{settings.state_dir.name}")
    lc = LocalCluster(settings)
    problems = lc.down(purge=True)  # a session killed mid-way may have left one behind
    assert not problems, problems
    before = HostState.capture()
    # every component's command line names the state dir (its config, certificates or data), except the
    # API forward's (socat), named by its port; binaries are no marker: another cluster runs the same ones
    markers = (str(settings.state_dir), f"TCP-LISTEN:{settings.api_port},")
    try:
        status = lc.up()
        assert status.healthy, status.as_dict()
        yield ClusterUnderTest(lc, before, set(lc.ns.inodes().values()), markers)
    finally:
        lc.down(purge=True)


@pytest.fixture
def cluster_up(local_cluster: ClusterUnderTest) -> ClusterUnderTest:
    """The session's cluster, healthy (brought back up when a test took it down)."""
    if not local_cluster.cluster.status().healthy:
        status = local_cluster.cluster.up()
        assert status.healthy, status.as_dict()
        local_cluster.ns_inodes |= set(local_cluster.cluster.ns.inodes().values())
    return local_cluster


@pytest.fixture
def kube(cluster_up: ClusterUnderTest) -> Iterator[kubernetes.client.ApiClient]:
    """An admin API client."""
    api = kubernetes.config.new_client_from_config(str(cluster_up.settings.admin_kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(cluster_up: ClusterUnderTest, kube: kubernetes.client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted after it (pods included) when the cluster still runs."""
    core = kubernetes.client.CoreV1Api(kube)
    name = f"sar-test-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}}, _request_timeout=10)
    try:
        # pods are refused until the controller-manager has made the namespace's default ServiceAccount
        workloads.wait_for(f"ServiceAccount default in {name}", lambda: core.list_namespaced_service_account(
            name, field_selector="metadata.name=default", _request_timeout=10).items, timeout=30)
        yield name
    finally:
        if cluster_up.cluster.is_running():
            core.delete_namespace(name, grace_period_seconds=0, _request_timeout=10)


def service_pods(kube: kubernetes.client.ApiClient, selector: str = "app=sql-audit-service") -> dict[str, str]:
    """The system's service pods (or those of ``selector``): name -> uid (a replaced pod has a new uid)."""
    pods = kubernetes.client.CoreV1Api(kube).list_namespaced_pod(
        system.NAMESPACE, label_selector=selector, _request_timeout=10).items
    return {p.metadata.name: p.metadata.uid for p in pods}


def lasting_experiment(experiment: str, fault: str, seconds: int = 900) -> str:
    """experiments/<experiment>.yaml with its ``fault`` action (and the load) made to last ``seconds``, its first
    pause cut to 8 s: a run that is still in its fault when a test kills it. Returns the YAML text."""
    import yaml

    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "experiments" / f"{experiment}.yaml").read_text())
    doc["method"][0]["pauses"] = {"after": 8}
    action = next(a for a in doc["method"] if a.get("provider", {}).get("func") == fault)
    action["provider"]["arguments"]["duration"] = seconds
    action["pauses"] = {"after": seconds}
    doc["configuration"]["load_duration"]["default"] = str(seconds)
    return str(yaml.safe_dump(doc, sort_keys=False))
