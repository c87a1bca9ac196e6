"""The system under test's overlay as rendered by ``cluster deploy`` (no cluster needed: kubectl kustomize only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster import ClusterError, ClusterSettings, system
from cluster.install import Image, load_manifest, run_install

IMAGES = {"platform": Image("platform", "localhost/sql-audit/platform:p1", Path("/nonexistent")),
          "patroni": Image("patroni", "localhost/sql-audit/patroni:q1", Path("/nonexistent")),
          "service": Image("service", "localhost/sql-audit/service:s1", Path("/nonexistent")),
          "kube-state-metrics": Image("kube-state-metrics", "localhost/sql-audit/kube-state-metrics:k1",
                                      Path("/nonexistent"))}


@pytest.fixture(scope="module")
def settings() -> ClusterSettings:
    s = ClusterSettings.from_env(env={"RESILIENCE_DATA_ROOT": "/var/tmp/x",
                                      "RESILIENCE_CLUSTER_NODE_CIDR": "10.87.9.0/24",
                                      "RESILIENCE_CLUSTER_POD_CIDR": "10.88.9.0/24"})
    run_install(s)  # cached: seconds; kubectl renders the overlay
    load_manifest(s)
    return s


def _containers(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        out += [(f"{doc['kind']}/{doc['metadata']['name']}", c) for c in spec.get("containers", [])]
    return out


def test_every_container_runs_an_image_built_here_never_pulled_with_a_memory_limit(settings: ClusterSettings) -> None:
    containers = _containers(system.render(settings, IMAGES))
    assert {c["image"] for _, c in containers} == {i.ref for i in IMAGES.values()}
    for where, c in containers:
        assert c["imagePullPolicy"] == "Never", where
        assert c["resources"]["limits"]["memory"], where


def test_the_service_is_a_statefulset_of_three_with_probes_and_a_pdb(settings: ClusterSettings) -> None:
    docs = system.render(settings, IMAGES)
    sts = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "sql-audit-service")
    assert sts["spec"]["replicas"] == 3
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(c)
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2


def test_ingress_is_denied_by_default_and_the_node_policy_uses_the_clusters_ranges(settings: ClusterSettings) -> None:
    policies = {d["metadata"]["name"]: d for d in system.render(settings, IMAGES) if d["kind"] == "NetworkPolicy"}
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    peers = policies["from-the-node"]["spec"]["ingress"][0]["from"]
    assert {p["ipBlock"]["cidr"] for p in peers} == {"10.87.9.0/24", "10.88.9.1/32"}
    assert all(d["metadata"]["namespace"] == system.NAMESPACE for d in policies.values())


def test_an_image_not_built_here_is_refused(settings: ClusterSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "IMAGE_NAMES", {"sql-audit-platform": "platform"})
    with pytest.raises(ClusterError, match="only images built here"):
        system.render(settings, IMAGES)


def test_the_target_file_points_at_the_node_ports(settings: ClusterSettings) -> None:
    keys = system.target_keys(settings)
    assert keys["kafka_bootstrap"] == "10.87.9.10:30092"
    assert keys["prometheus_url"] == "http://10.87.9.10:30090"
    assert keys["k8s_allowed_namespaces"] == [system.NAMESPACE] and keys["k8s_partition_check"] is True


@pytest.mark.parametrize(("key", "container_port", "not_ready_too"),
                         [("replica_urls", 8080, False), ("k8s_toxiproxy_urls", 8474, True)])
def test_each_replica_url_of_the_target_file_is_a_node_port_of_that_pod_alone(settings: ClusterSettings, key: str,
                                                                             container_port: int,
                                                                             not_ready_too: bool) -> None:
    """config_change reads every replica's configuration (replica_urls), and a latency goes on every replica's
    toxiproxy sidecar (k8s_toxiproxy_urls): URL i must reach pod i, not any pod; a sidecar's even while its pod
    is not Ready (a latency that makes the service unready must still come off)."""
    docs = system.render(settings, IMAGES)
    by_port = {p["nodePort"]: (d, p) for d in docs if d["kind"] == "Service" and d["spec"].get("type") == "NodePort"
               for p in d["spec"]["ports"]}
    urls = system.target_keys(settings)[key]
    sts = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "sql-audit-service")
    assert len(urls) == sts["spec"]["replicas"]
    for i, url in enumerate(urls):
        host, port = url.removeprefix("http://").split(":")
        assert host == settings.node_ip
        service, service_port = by_port[int(port)]
        assert service["spec"]["selector"] == {"statefulset.kubernetes.io/pod-name": f"sql-audit-service-{i}"}
        assert service_port["targetPort"] == container_port
        assert bool(service["spec"].get("publishNotReadyAddresses")) == not_ready_too


def test_kube_state_metrics_watches_this_namespace_only_with_read_only_rights(settings: ClusterSettings) -> None:
    """Its flags each one argument (a YAML flow list split `--resources=pods,statefulsets` in two and the container
    crash-looped on "unknown command statefulsets"), and its ServiceAccount may only read pods and StatefulSets."""
    docs = system.render(settings, IMAGES)
    prom = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "prometheus")
    ksm = next(c for c in prom["spec"]["template"]["spec"]["containers"] if c["name"] == "kube-state-metrics")
    assert ksm["image"] == IMAGES["kube-state-metrics"].ref
    assert all(a.startswith("--") for a in ksm["args"]), ksm["args"]
    assert "--namespaces=$(POD_NAMESPACE)" in ksm["args"] and "--resources=pods,statefulsets" in ksm["args"]
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "prometheus")
    assert {v for r in role["rules"] for v in r["verbs"]} == {"get", "list", "watch"}
    assert {res for r in role["rules"] for res in r["resources"]} == {"pods", "statefulsets"}


def test_patroni_finds_its_members_and_the_services_select_the_leader_by_its_label(settings: ClusterSettings) -> None:
    """Patroni's Kubernetes DCS lists its members by ``kubernetes.labels`` and labels the leader ``role=primary``:
    a pod template without those labels leaves each member alone in its own cluster (two primaries behind the
    Service), a Service selecting another value has no endpoint. Its Role reads and writes ConfigMaps (the lock)
    and patches pods (the labels), nothing else."""
    import yaml

    config = yaml.safe_load((system.SYSTEM_DIR / "patroni.yml").read_text())
    docs = system.render(settings, IMAGES)
    sts = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "postgres")
    assert sts["spec"]["replicas"] == 2
    template = sts["spec"]["template"]
    assert config["kubernetes"]["labels"].items() <= template["metadata"]["labels"].items()
    assert "role" not in template["metadata"]["labels"]  # Patroni's to set
    assert template["spec"]["containers"][0]["image"] == IMAGES["patroni"].ref
    leader = {"app": "postgres", config["kubernetes"]["role_label"]: config["kubernetes"]["leader_label_value"]}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert services["postgres"]["spec"]["selector"] == leader
    assert services["postgres-external"]["spec"]["selector"] == leader
    assert sts["spec"]["serviceName"] == "postgres-members"
    keys = system.target_keys(settings)
    assert keys["k8s_postgres_leader_selector"] == "app=postgres,role in (primary,master)"
    assert keys["k8s_patronictl"] == ["patronictl", "-c", "/etc/patroni/patroni.yml"]
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "postgres-patroni")
    assert {res for r in role["rules"] for res in r["resources"]} == {"configmaps", "pods"}
    assert not {"create", "delete"} & {v for r in role["rules"] if r["resources"] == ["pods"] for v in r["verbs"]}


def test_clickhouse_replicas_name_themselves_and_the_bootstrap_creates_the_table_on_each(
        settings: ClusterSettings) -> None:
    """ClickHouse 18.16 merges ``<config>.d/`` and ``conf.d/`` beside its config file, not ``config.d/`` (a replica
    whose macros went there had none: "No macro shard in config"); the bootstrap Job must create the replicated
    table on every replica of the set; the machine's reads go to one replica, not whichever a connection hits."""
    import ast

    docs = system.render(settings, IMAGES)
    sts = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "clickhouse")
    script = sts["spec"]["template"]["spec"]["containers"][0]["args"][0]
    config = "/tmp/clickhouse/clickhouse-config.xml"
    assert f"--config-file={config}" in script
    assert "cat > /tmp/clickhouse/conf.d/replica.xml" in script and "<replica>${POD_NAME}</replica>" in script
    tree = ast.parse((system.SYSTEM_DIR / "bootstrap.py").read_text())
    replicas = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                    and getattr(n.targets[0], "id", None) == "CLICKHOUSE_REPLICAS")
    assert replicas == tuple(f"clickhouse-{i}" for i in range(sts["spec"]["replicas"]))
    assert sts["spec"]["serviceName"] == "clickhouse-replicas"
    external = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "clickhouse-external")
    assert external["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] == "clickhouse-0"
    zookeeper = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "zookeeper")
    assert "zookeeper" in system.STATEFULSETS and zookeeper["spec"]["replicas"] == 1
