"""The kubernetes fault backends against a real kube-apiserver (see conftest.py), as the suite's ServiceAccount.

Through the public activities (``faults.replicas.kill_replicas`` ...) with
``configuration: {target: kubernetes}``: dispatch, dry run, journal, expiry timer and
``cleanup`` are the real ones. RBAC is the Role of deploy/k8s/base.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

from faults import checker_config as config_fault
from faults import (
    clickhouse_down,
    clickhouse_stall,
    kafka_broker,
    memory,
    network_latency,
    network_loss,
    network_partition,
    postgres_failover,
    process,
    replica_count,
    replica_hang,
    replicas,
)
from faults import journal as fault_journal
from faults.cleanup import cleanup
from faults.kubernetes import residue as kube_residue
from faults.kubernetes.checker_config import BEFORE, PENDING, RESTARTED_AT
from faults.kubernetes.client import CALLS, Call, record_calls, rollout_status
from faults.kubernetes.expiry import EXPIRES, stamp
from faults.toxiproxy import ToxiproxyAPI
from stack.context import Tools
from target.settings import resolve
from tests.k8s.conftest import NAMESPACE, ROOT, Envtest, free_port, kustomize
from tests.k8s.test_offline import role_calls

pytestmark = pytest.mark.k8s

RECORDED: set[Call] = set()


@pytest.fixture(autouse=True)
def _record_api_calls() -> Iterator[None]:
    """Collect every API call the backends make in this module (checked against the Role at the end)."""
    with record_calls() as calls:
        yield
    RECORDED.update(calls)


@pytest.fixture(scope="module")
def workloads(envtest: Envtest) -> Iterator[None]:
    """The example audit service (3-replica StatefulSet, its ConfigMaps), three kafka brokers, one-pod
    clickhouse and postgres sets."""
    docs = [d for d in kustomize(ROOT / "deploy/k8s/example-service")
            if d["kind"] in ("StatefulSet", "Service", "ConfigMap")]
    for doc in docs:
        doc["metadata"]["namespace"] = NAMESPACE
    kubernetes.utils.create_from_yaml(envtest.admin, yaml_objects=docs, namespace=NAMESPACE)
    apps = kubernetes.client.AppsV1Api(envtest.admin)
    for name, labels, count in (("kafka", {"app": "kafka"}, 3), ("clickhouse", {"app": "clickhouse"}, 1),
                                ("postgres", {"app": "postgres", "role": "primary"}, 1)):
        apps.create_namespaced_stateful_set(NAMESPACE, {
            "metadata": {"name": name},
            "spec": {"replicas": count, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name, "image": f"{name}:test"}]}}}})
    core = kubernetes.client.CoreV1Api(envtest.admin)
    envtest.wait("8 pods Running and Ready", lambda: sum(
        p.status.phase == "Running" for p in core.list_namespaced_pod(NAMESPACE).items) >= 8)
    yield


@pytest.fixture
def run(envtest: Envtest, workloads: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A private journal and run id; teardown reverts whatever the test left open."""
    run_id = f"k8s-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "journal"
    try:
        yield envtest.configuration(state, run_id)
    finally:
        cleanup(state, run_id)


def pods(envtest: Envtest, selector: str) -> dict[str, str]:
    items = kubernetes.client.CoreV1Api(envtest.admin).list_namespaced_pod(NAMESPACE, label_selector=selector).items
    return {p.metadata.name: p.metadata.uid for p in items if p.metadata.deletion_timestamp is None}


def policies(envtest: Envtest) -> list[Any]:
    return kubernetes.client.NetworkingV1Api(envtest.admin).list_namespaced_network_policy(NAMESPACE).items


def test_kill_replicas_deletes_a_pod_the_controller_recreates(envtest: Envtest, run: dict[str, Any]) -> None:
    before = envtest.wait("3 audit pods", lambda: (p := pods(envtest, "app=sql-audit-service")) and len(p) == 3 and p)
    with record_calls() as calls:
        result = replicas.kill_replicas(count=1, configuration=run)
    killed = result["details"]["killed"]
    assert len(killed) == 1 and killed[0] in before
    assert set(calls) <= CALLS and any(c.verb == "delete" for c in calls)
    after = envtest.wait("a new pod under the killed name", lambda: (p := pods(envtest, "app=sql-audit-service"))
                         and len(p) == 3 and p[killed[0]] != before[killed[0]] and p)
    assert {n for n in after if after[n] != before[n]} == set(killed)  # only the victim was replaced
    restored = replicas.restore_replicas(configuration=run)
    assert result["fault_id"] in restored["reverted_entries"]
    assert fault_journal.open_entries(Path(run["fault_state_dir"]), run["run_id"]) == []


def test_kill_process_deletes_one_named_pod_and_restore_waits_for_it(envtest: Envtest,
                                                                    run: dict[str, Any]) -> None:
    before = envtest.wait("3 audit pods", lambda: (p := pods(envtest, "app=sql-audit-service")) and len(p) == 3 and p)
    result = process.kill_process("sql-audit-service-1", graceful=True, configuration=run)
    assert result["details"]["uid"] == before["sql-audit-service-1"]
    restored = process.restore_process("sql-audit-service-1", configuration=run)
    assert result["fault_id"] in restored["reverted_entries"]
    after = pods(envtest, "app=sql-audit-service")
    assert after["sql-audit-service-1"] != before["sql-audit-service-1"]
    assert after["sql-audit-service-0"] == before["sql-audit-service-0"]
    with pytest.raises(ActivityFailed, match="no live pod 'nope'"):
        process.kill_process("nope", configuration=run)


def test_blast_radius_refuses_all_pods_and_changes_nothing(envtest: Envtest, run: dict[str, Any]) -> None:
    before = envtest.wait("3 audit pods", lambda: (p := pods(envtest, "app=sql-audit-service")) and len(p) == 3 and p)
    with pytest.raises(ActivityFailed, match="blast radius"):
        replicas.kill_replicas(percentage=100, configuration=run)
    with pytest.raises(ActivityFailed, match="blast radius"):
        replicas.kill_replicas(count=2, configuration={**run, "max_replicas_killed": 1})
    assert pods(envtest, "app=sql-audit-service") == before
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []


def test_dry_run_lists_requests_and_sends_no_write(envtest: Envtest, run: dict[str, Any]) -> None:
    before = envtest.wait("3 audit pods", lambda: (p := pods(envtest, "app=sql-audit-service")) and len(p) == 3 and p)
    out = replicas.kill_replicas(count=1, configuration={**run, "dry_run": True})
    assert out["dry_run"] is True
    assert any(r.startswith("DELETE /api/v1/namespaces/sql-audit/pods/") for r in out["plan"]["requests"])
    part = network_partition.partition_network("kafka", configuration={**run, "dry_run": True})
    assert any(r.startswith("POST /apis/networking.k8s.io/v1/namespaces/sql-audit/networkpolicies")
               for r in part["plan"]["requests"])
    assert pods(envtest, "app=sql-audit-service") == before
    assert policies(envtest) == []
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []


def test_partition_creates_a_labelled_policy_and_remove_deletes_it(envtest: Envtest, run: dict[str, Any]) -> None:
    result = network_partition.partition_network("kafka", configuration=run)
    [policy] = policies(envtest)
    labels, notes = policy.metadata.labels, policy.metadata.annotations
    assert labels["app.kubernetes.io/managed-by"] == "sql-audit-resilience"
    assert labels["sql-audit-resilience/run-id"] == run["run_id"]
    assert labels["sql-audit-resilience/edge"] == "kafka"
    assert "sql-audit-resilience/expires-at" in notes
    assert policy.spec.pod_selector.match_labels == {"app": "sql-audit-service"}
    assert policy.spec.policy_types == ["Egress"]
    kafka_ips = {f"{p.status.pod_ip}/32" for p in kubernetes.client.CoreV1Api(envtest.admin)
                 .list_namespaced_pod(NAMESPACE, label_selector="app=kafka").items}
    blocks = [peer.ip_block for peer in policy.spec.egress[0].to if peer.ip_block]
    assert kafka_ips and kafka_ips <= set(blocks[0].var_except)
    with pytest.raises(ActivityFailed, match="already partitioned"):
        network_partition.partition_network("kafka", configuration=run)
    removed = network_partition.remove_partition("kafka", configuration=run)
    assert result["fault_id"] in removed["reverted_entries"]
    assert policies(envtest) == []
    again = network_partition.remove_partition("kafka", configuration=run)
    assert again["details"]["changed"] == "already healed"


def test_cleanup_removes_a_partition_a_dead_runner_left(envtest: Envtest, run: dict[str, Any]) -> None:
    network_partition.partition_network("postgres", configuration=run)
    assert len(policies(envtest)) == 1
    # the runner "dies": only the journal remains; cleanup uses the configuration recorded in it
    results = cleanup(Path(run["fault_state_dir"]), run["run_id"])
    assert [r.ok for r in results] == [True], results
    assert policies(envtest) == []


def test_partition_expires_by_itself(envtest: Envtest, run: dict[str, Any]) -> None:
    network_partition.partition_network("clickhouse", duration=2, configuration=run)
    assert len(policies(envtest)) == 1
    envtest.wait("the expiry timer to delete the policy", lambda: policies(envtest) == [], timeout=30)


def test_remove_sweeps_expired_policies_by_label(envtest: Envtest, run: dict[str, Any]) -> None:
    from faults.kubernetes.network_partition import EXPIRES, managed_selector

    labels = dict(kv.split("=") for kv in managed_selector("kafka").split(","))
    net = kubernetes.client.NetworkingV1Api(envtest.admin)
    for name, expiry in (("stale", "2000-01-01T00:00:00Z"), ("fresh", "2999-01-01T00:00:00Z")):
        net.create_namespaced_network_policy(NAMESPACE, {
            "metadata": {"name": f"chaos-partition-{name}", "labels": {**labels, "sql-audit-resilience/edge": name},
                         "annotations": {EXPIRES: expiry}},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}})
    out = network_partition.remove_partition("postgres", configuration=run)
    assert out["details"]["expired_deleted"] == ["chaos-partition-stale"]
    assert [p.metadata.name for p in policies(envtest)] == ["chaos-partition-fresh"]
    net.delete_namespaced_network_policy("chaos-partition-fresh", NAMESPACE)


def test_clickhouse_down_scales_to_zero_and_back(envtest: Envtest, run: dict[str, Any]) -> None:
    result = clickhouse_down.stop_clickhouse(configuration=run)
    assert result["details"]["replicas_before"] == 1
    envtest.wait("clickhouse pods gone", lambda: pods(envtest, "app=clickhouse") == {})
    restored = clickhouse_down.start_clickhouse(configuration=run)
    assert restored["details"]["replicas"] == 1
    assert len(pods(envtest, "app=clickhouse")) == 1
    sts = kubernetes.client.AppsV1Api(envtest.admin).read_namespaced_stateful_set("clickhouse", NAMESPACE)
    assert "sql-audit-resilience/replicas-before" not in (sts.metadata.annotations or {})


def test_clickhouse_down_of_one_replica_stops_only_the_highest_ordinal(envtest: Envtest, run: dict[str, Any]) -> None:
    """``replica`` is a pod ordinal; a StatefulSet holds down only its highest ones, so a lower one is refused."""
    apps = kubernetes.client.AppsV1Api(envtest.admin)
    apps.patch_namespaced_stateful_set("clickhouse", NAMESPACE, {"spec": {"replicas": 2}})
    try:
        before = envtest.wait("2 clickhouse pods", lambda: (p := ready_pods(envtest, "app=clickhouse"))
                              and len(p) == 2 and p)
        refused = ((0, "stopping clickhouse-0 would stop clickhouse-1 too; use replica 1"),
                   (2, r"replica=2: StatefulSet sql-audit/clickhouse has 2 replica\(s\) \(ordinals 0\.\.1\)"))
        for replica, match in refused:
            with pytest.raises(ActivityFailed, match=match):
                clickhouse_down.stop_clickhouse(replica=replica, configuration=run)
        assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []
        result = clickhouse_down.stop_clickhouse(replica=1, configuration=run)
        assert (result["details"]["replicas_before"], result["details"]["replicas"]) == (2, 1)
        envtest.wait("clickhouse-1 gone", lambda: pods(envtest, "app=clickhouse") == {"clickhouse-0":
                                                                                      before["clickhouse-0"]})
        restored = clickhouse_down.start_clickhouse(replica=1, configuration=run)
        assert result["fault_id"] in restored["reverted_entries"] and restored["details"]["replicas"] == 2
        assert ready_pods(envtest, "app=clickhouse").keys() == {"clickhouse-0", "clickhouse-1"}
    finally:
        apps.patch_namespaced_stateful_set("clickhouse", NAMESPACE, {"spec": {"replicas": 1}})
        envtest.wait("1 clickhouse pod", lambda: len(pods(envtest, "app=clickhouse")) == 1)


def test_clickhouse_stall_of_one_replica_execs_in_that_pod_only(envtest: Envtest, run: dict[str, Any]) -> None:
    with pytest.raises(ActivityFailed, match=r"no Running ClickHouse pod with ordinal 3 \(Running ClickHouses: "
                                             r"\['clickhouse-0'\]"):
        clickhouse_stall.stall_clickhouse(replica=3, configuration=run)
    with pytest.raises(ActivityFailed, match=r"pods/clickhouse-0/exec.*does not have a host assigned"):
        clickhouse_stall.stall_clickhouse(replica=0, configuration=run)
    assert clickhouse_stall.resume_clickhouse(replica=3, configuration=run)["details"]["changed"].startswith(
        "no Running ClickHouse pod")
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []


def test_postgres_failover_kills_the_leader_pod(envtest: Envtest, run: dict[str, Any]) -> None:
    before = envtest.wait("a postgres leader", lambda: pods(envtest, "app=postgres"))
    result = postgres_failover.fail_over_postgres(method="kill", configuration=run)
    assert result["details"]["old_leader"] == "postgres-0"
    envtest.wait("the leader pod recreated", lambda: (p := pods(envtest, "app=postgres"))
                 and p.get("postgres-0") not in (None, before["postgres-0"]))
    postgres_failover.restore_postgres(configuration=run)


def test_exec_faults_are_authorized_and_fail_only_for_want_of_a_kubelet(envtest: Envtest,
                                                                       run: dict[str, Any]) -> None:
    """pods/exec goes through the real authorizer (get + create); with no node the server answers 400."""
    with pytest.raises(ActivityFailed, match="does not have a host assigned") as err:
        clickhouse_stall.stall_clickhouse(configuration=run)
    assert "forbidden" not in str(err.value).lower()
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []  # failed in validation
    for fault in (lambda: replica_hang.hang_replicas(count=1, configuration=run),  # they list the processes first
                  lambda: memory.oom_kill_replica(configuration=run)):
        with pytest.raises(ActivityFailed, match="does not have a host assigned"):
            fault()
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []
    with pytest.raises(ActivityFailed, match="does not have a host assigned"):
        postgres_failover.fail_over_postgres("switchover", configuration=run)
    [(_, entry)] = fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"])
    assert entry["status"] == "failed"  # journaled first, apply failed, undone at once


@pytest.mark.parametrize(("said", "match"), [
    ("Switchover failed, details: 412, candidate name does not match with sync_standby",
     r"exited 0: Switchover failed, details: 412"),
    ('Successfully switched over to "postgres-1"',
     r"the leader pod is still postgres-0 \(or none\) 2 s after patronictl said .*did not take effect"),
], ids=["refused", "no-new-leader"])
def test_a_switchover_patroni_refused_or_that_moved_no_leader_did_not_take_effect(
        envtest: Envtest, run: dict[str, Any], monkeypatch: pytest.MonkeyPatch, said: str, match: str) -> None:
    """patronictl exits 0 when Patroni refuses a switchover (no synchronous standby yet, seen on the local
    cluster): the fault succeeds only once the leader pod is another, else it fails and is journaled failed."""
    from faults.kubernetes.client import Kube

    envtest.wait("a postgres leader", lambda: pods(envtest, "app=postgres"))
    monkeypatch.setattr(Kube, "exec", lambda self, *args, **kwargs: (0, "" if self.dry_run else said, ""))
    with pytest.raises(ActivityFailed, match=match):
        postgres_failover.fail_over_postgres("switchover", configuration={**run, "k8s_ready_timeout": 2})
    [(_, entry)] = fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"])
    assert entry["status"] == "failed"


def test_latency_without_chaos_mesh_says_so_and_changes_nothing(envtest: Envtest, run: dict[str, Any]) -> None:
    with pytest.raises(ActivityFailed, match="Chaos Mesh is not installed"):
        network_latency.add_latency("kafka", 100, configuration=run)
    assert network_latency.remove_latency("kafka", configuration=run)["details"]["changed"].startswith(
        "Chaos Mesh not installed")
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []


def test_latency_with_chaos_mesh_creates_and_deletes_networkchaos(envtest: Envtest, run: dict[str, Any]) -> None:
    ext = kubernetes.client.ApiextensionsV1Api(envtest.admin)
    ext.create_custom_resource_definition({
        "metadata": {"name": "networkchaos.chaos-mesh.org"},
        "spec": {"group": "chaos-mesh.org", "scope": "Namespaced",
                 "names": {"plural": "networkchaos", "singular": "networkchaos", "kind": "NetworkChaos",
                           "listKind": "NetworkChaosList"},
                 "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]}})
    custom = kubernetes.client.CustomObjectsApi(envtest.admin)
    try:
        envtest.wait("NetworkChaos served", lambda: _served(custom))
        result = network_latency.add_latency("kafka", 150, jitter_ms=10, duration=60, configuration=run)
        [obj] = custom.list_namespaced_custom_object("chaos-mesh.org", "v1alpha1", NAMESPACE, "networkchaos")["items"]
        assert obj["spec"]["action"] == "delay" and obj["spec"]["delay"]["latency"] == "150ms"
        assert obj["spec"]["duration"] == "60s"
        assert obj["spec"]["target"]["selector"]["labelSelectors"] == {"app": "kafka"}
        removed = network_latency.remove_latency("kafka", configuration=run)
        assert result["fault_id"] in removed["reverted_entries"]
        assert custom.list_namespaced_custom_object("chaos-mesh.org", "v1alpha1", NAMESPACE,
                                                    "networkchaos")["items"] == []
    finally:
        ext.delete_custom_resource_definition("networkchaos.chaos-mesh.org")


@pytest.fixture
def sidecars(tmp_path: Path) -> Iterator[list[str]]:
    """Two real toxiproxy servers as the local cluster's sidecars run them (one proxy per store edge, named
    after it): the base URLs ``k8s_toxiproxy_urls`` lists."""
    binary = Tools.discover().toxiproxy
    if not binary.exists():
        pytest.fail(f"no toxiproxy server at {binary}: deploy/local/install.sh builds it")
    urls, procs = [], []
    try:
        for i in range(2):
            config = tmp_path / f"proxies-{i}.json"
            config.write_text(json.dumps([
                {"name": edge, "listen": f"127.0.0.1:{free_port()}", "upstream": f"127.0.0.1:{free_port()}",
                 "enabled": True} for edge in ("postgres", "clickhouse")]))
            port = free_port()
            procs.append(subprocess.Popen([str(binary), "-host", "127.0.0.1", "-port", str(port), "-config",
                                           str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            _wait_until(lambda u=url: len(_proxies_or_none(u)) == 2, f"toxiproxy at {url} with its two proxies")
        yield urls
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)


def _proxies_or_none(url: str) -> dict[str, Any]:
    try:
        return ToxiproxyAPI(url).proxies("test")
    except ActivityFailed:
        return {}


def _wait_until(predicate: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def _toxics(url: str) -> dict[str, list[str]]:
    return {name: [t["name"] for t in p["toxics"]] for name, p in ToxiproxyAPI(url).snapshot("test").items()}


def test_latency_through_the_sidecars_toxiproxy_goes_on_every_replica_and_comes_off(
        envtest: Envtest, sidecars: list[str], run: dict[str, Any]) -> None:
    """With ``k8s_toxiproxy_urls`` the latency is a toxic on the edge's proxy in every replica's server (not a
    NetworkChaos), journaled; its removal takes it off everywhere, and the residue audit sees it while it is on."""
    run = {**run, "k8s_toxiproxy_urls": sidecars}
    result = network_latency.add_latency("clickhouse", 250, jitter_ms=20, duration=60, configuration=run)
    assert all(_toxics(url) == {"clickhouse": ["chaos-latency-downstream"], "postgres": []} for url in sidecars)
    [toxic] = ToxiproxyAPI(sidecars[1]).proxy("clickhouse", "test")["toxics"]
    assert (toxic["type"], toxic["stream"], toxic["attributes"]) == ("latency", "downstream",
                                                                     {"latency": 250, "jitter": 20})
    settings = resolve(run)
    on = kube_residue.read_toxiproxy(settings)
    assert on is not None and on[f"{sidecars[0]} clickhouse"] == ["chaos-latency-downstream"]
    found = kube_residue.toxiproxy_rule({k: [] for k in on}, on, "before the run")
    assert sorted(f.subject for f in found) == sorted(f"toxiproxy {u} clickhouse" for u in sidecars)
    with pytest.raises(ActivityFailed, match="already there"):
        network_latency.add_latency("clickhouse", 100, configuration=run)
    removed = network_latency.remove_latency("clickhouse", configuration=run)
    assert result["fault_id"] in removed["reverted_entries"]
    assert all(_toxics(url) == {"clickhouse": [], "postgres": []} for url in sidecars)
    assert kube_residue.toxiproxy_rule(on, kube_residue.read_toxiproxy(settings) or {}, "before") == []


def test_loss_a_dead_runner_left_on_the_sidecars_is_taken_off_by_cleanup(
        envtest: Envtest, sidecars: list[str], run: dict[str, Any]) -> None:
    run = {**run, "k8s_toxiproxy_urls": sidecars}
    network_loss.add_packet_loss("postgres", 30, stream="both", configuration=run)
    assert all(_toxics(url)["postgres"] == ["chaos-loss-downstream", "chaos-loss-upstream"] for url in sidecars)
    cleanup(Path(run["fault_state_dir"]), run["run_id"])  # what the watchdog or `resilience cleanup` runs
    assert all(_toxics(url) == {"clickhouse": [], "postgres": []} for url in sidecars)


def test_a_sidecar_that_does_not_answer_refuses_the_fault_on_every_replica(
        envtest: Envtest, sidecars: list[str], run: dict[str, Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    run = {**run, "k8s_toxiproxy_urls": [*sidecars, dead]}
    with pytest.raises(ActivityFailed, match=f"toxiproxy at {dead}"):
        network_latency.add_latency("clickhouse", 250, configuration=run)
    assert all(_toxics(url) == {"clickhouse": [], "postgres": []} for url in sidecars)
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []
    with pytest.raises(ActivityFailed, match="has no proxy for 'kafka'"):
        network_latency.add_latency("kafka", 250, configuration={**run, "k8s_toxiproxy_urls": sidecars})


def _served(custom: kubernetes.client.CustomObjectsApi) -> bool:
    try:
        custom.list_namespaced_custom_object("chaos-mesh.org", "v1alpha1", NAMESPACE, "networkchaos")
        return True
    except kubernetes.client.ApiException:
        return False


def test_guard_refuses_unlisted_and_production_like_targets(envtest: Envtest, run: dict[str, Any]) -> None:
    with pytest.raises(ActivityFailed, match="not in k8s_allowed_contexts"):
        replicas.kill_replicas(count=1, configuration={**run, "k8s_allowed_contexts": ["other"]})
    with pytest.raises(ActivityFailed, match="not in k8s_allowed_namespaces"):
        replicas.kill_replicas(count=1, configuration={**run, "k8s_namespace": "payments"})
    prod = {**run, "k8s_namespace": "sql-audit-prod", "k8s_allowed_namespaces": ["sql-audit-prod"]}
    with pytest.raises(ActivityFailed, match="looks like production"):
        replicas.kill_replicas(count=1, configuration=prod)
    with pytest.raises(ActivityFailed, match="looks like production"):  # removes are guarded too
        network_partition.remove_partition("kafka", configuration=prod)


# ----------------------------------------------------------------------------- Kafka broker
def ready_pods(envtest: Envtest, selector: str) -> dict[str, str]:
    items: list[Any] = kubernetes.client.CoreV1Api(envtest.admin).list_namespaced_pod(
        NAMESPACE, label_selector=selector).items
    return {p.metadata.name: p.metadata.uid for p in items if p.metadata.deletion_timestamp is None
            and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))}


def brokers(envtest: Envtest) -> dict[str, str]:
    return envtest.wait("3 Ready kafka brokers", lambda: (p := ready_pods(envtest, "app=kafka")) and len(p) == 3 and p)


def test_stop_kafka_broker_deletes_that_broker_pod_and_start_waits_for_it(envtest: Envtest,
                                                                         run: dict[str, Any]) -> None:
    before = brokers(envtest)
    result = kafka_broker.stop_kafka_broker(1, graceful=False, configuration=run)
    details = result["details"]
    assert (details["pod"], details["broker"], details["uid"]) == ("kafka-1", 1, before["kafka-1"])
    assert (details["of"], details["owner"]) == (3, "StatefulSet/kafka")
    assert details["requests"] == ["DELETE /api/v1/namespaces/sql-audit/pods/kafka-1?gracePeriodSeconds=0"]
    started = kafka_broker.start_kafka_broker(1, configuration=run)  # returns once all three are Ready again
    assert started["reverted_entries"] == [result["fault_id"]]
    after = ready_pods(envtest, "app=kafka")
    assert after.keys() == before.keys() and after["kafka-1"] != before["kafka-1"]
    assert {n: u for n, u in after.items() if n != "kafka-1"} == {n: u for n, u in before.items() if n != "kafka-1"}
    assert fault_journal.open_entries(Path(run["fault_state_dir"]), run["run_id"]) == []
    again = kafka_broker.start_kafka_broker(1, configuration=run)
    assert again["details"]["changed"] == "all 3 broker pods were Ready"


def test_stop_kafka_broker_without_a_broker_picks_a_ready_one_gracefully(envtest: Envtest,
                                                                        run: dict[str, Any]) -> None:
    before = brokers(envtest)
    result = kafka_broker.stop_kafka_broker(configuration=run)
    victim = result["details"]["pod"]
    assert victim in before and result["details"]["uid"] == before[victim]
    assert result["details"]["requests"] == [f"DELETE /api/v1/namespaces/sql-audit/pods/{victim}"]  # own grace period
    started = kafka_broker.start_kafka_broker(configuration=run)
    assert started["reverted_entries"] == [result["fault_id"]]
    assert ready_pods(envtest, "app=kafka")[victim] != before[victim]


@pytest.mark.parametrize(("kwargs", "extra", "match"), [
    ({"broker": 7}, {}, r"no broker pod with ordinal 7 \(brokers: \['kafka-0', 'kafka-1', 'kafka-2'\]; "
                        r"k8s_kafka_selector 'app=kafka' in namespace sql-audit on context envtest-sandbox"),
    ({"broker": -1}, {}, "broker=-1: expected an integer >= 0"),
    ({"broker": 1, "duration": 30}, {}, r"with a duration, a StatefulSet holds down only its first or last ordinal "
                                        r"\(kafka-0 or kafka-2 of 3\); holding kafka-1 down would stop kafka-2 too"),
    ({}, {"k8s_kafka_selector": "app=nokafka"},
     "no broker pod matches k8s_kafka_selector 'app=nokafka' in namespace sql-audit"),
    ({"broker": 0}, {"k8s_kafka_brokers": 4}, r"blast radius: only 3 of 4 broker pods \(k8s_kafka_brokers\) are Ready"),
])
def test_stop_kafka_broker_refuses_bad_input_and_injects_nothing(envtest: Envtest, run: dict[str, Any],
                                                                  kwargs: dict[str, Any], extra: dict[str, Any],
                                                                  match: str) -> None:
    before = brokers(envtest)
    with pytest.raises(ActivityFailed, match=match):
        kafka_broker.stop_kafka_broker(**kwargs, configuration={**run, **extra})
    assert ready_pods(envtest, "app=kafka") == before
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []


def held_replicas(envtest: Envtest, name: str) -> tuple[int, dict[str, str]]:
    """``(spec.replicas, this library's annotations)`` of StatefulSet ``name``."""
    sts = kubernetes.client.AppsV1Api(envtest.admin).read_namespaced_stateful_set(name, NAMESPACE)
    ours = {k: v for k, v in (sts.metadata.annotations or {}).items() if k.startswith("sql-audit-resilience/")}
    return sts.spec.replicas, ours


def test_stop_kafka_broker_with_a_duration_holds_the_highest_ordinal_down_until_started(envtest: Envtest,
                                                                                        run: dict[str, Any]) -> None:
    before = brokers(envtest)
    result = kafka_broker.stop_kafka_broker(duration=600, configuration=run)
    details = result["details"]
    assert (details["pod"], details["owner"]) == ("kafka-2", "StatefulSet/kafka")
    replicas, notes = held_replicas(envtest, "kafka")
    until = notes.pop(EXPIRES)
    assert (replicas, notes) == (2, {"sql-audit-resilience/replicas-before": "3",
                                     "sql-audit-resilience/held-by": "kafka_broker"})
    assert stamp(time.time() + 590) <= until <= stamp(time.time() + 600)  # the duration: what the sweeper reads
    envtest.wait("kafka-2 held down", lambda: set(pods(envtest, "app=kafka")) == {"kafka-0", "kafka-1"})
    time.sleep(2)  # held: the controller does not bring it back by itself
    assert set(pods(envtest, "app=kafka")) == {"kafka-0", "kafka-1"}
    with pytest.raises(ActivityFailed, match=r"already scaled by this library"):
        kafka_broker.stop_kafka_broker(duration=600, configuration=run)
    started = kafka_broker.start_kafka_broker(configuration=run)
    assert started["reverted_entries"] == [result["fault_id"]]
    assert started["details"]["changed"].startswith("scaled kafka back to 3")
    assert held_replicas(envtest, "kafka") == (3, {})
    after = brokers(envtest)
    assert after["kafka-0"] == before["kafka-0"] and after["kafka-2"] != before["kafka-2"]


def test_a_duration_holds_the_first_ordinal_down_by_moving_the_sets_first_ordinal(envtest: Envtest,
                                                                                   run: dict[str, Any]) -> None:
    """A Patroni leader is usually its set's pod 0: a scale-down alone would stop the last pod instead."""
    before = brokers(envtest)
    result = kafka_broker.stop_kafka_broker(broker=0, duration=600, configuration=run)
    assert result["details"]["pod"] == "kafka-0"
    replicas, notes = held_replicas(envtest, "kafka")
    notes.pop(EXPIRES)
    assert (replicas, notes) == (2, {"sql-audit-resilience/replicas-before": "3",
                                     "sql-audit-resilience/held-by": "kafka_broker",
                                     "sql-audit-resilience/ordinals-start-before": "0"})
    apps = kubernetes.client.AppsV1Api(envtest.admin)
    assert apps.read_namespaced_stateful_set("kafka", NAMESPACE).spec.ordinals.start == 1
    envtest.wait("kafka-0 held down", lambda: set(pods(envtest, "app=kafka")) == {"kafka-1", "kafka-2"})
    started = kafka_broker.start_kafka_broker(broker=0, configuration=run)
    assert started["reverted_entries"] == [result["fault_id"]]
    assert held_replicas(envtest, "kafka") == (3, {})
    assert apps.read_namespaced_stateful_set("kafka", NAMESPACE).spec.ordinals.start == 0
    after = brokers(envtest)
    assert after["kafka-2"] == before["kafka-2"] and after["kafka-0"] != before["kafka-0"]


def test_a_duration_holds_the_whole_service_down_until_its_timer_brings_it_back(envtest: Envtest,
                                                                              run: dict[str, Any]) -> None:
    """cluster_loss's first action on Kubernetes: every replica down for ``duration``, then the expiry timer."""
    envtest.wait("3 audit pods", lambda: len(pods(envtest, "app=sql-audit-service")) == 3)
    result = replicas.kill_replicas(percentage=100, graceful=True, allow_all=True, duration=4, configuration=run)
    assert result["details"]["killed"] == [f"sql-audit-service-{i}" for i in range(3)]
    assert held_replicas(envtest, "sql-audit-service")[0] == 0
    envtest.wait("every audit pod gone", lambda: pods(envtest, "app=sql-audit-service") == {})
    envtest.wait("the timer to scale the set back", lambda: held_replicas(envtest, "sql-audit-service") == (3, {}),
                 timeout=60)
    envtest.wait("3 audit pods again", lambda: len(ready_pods(envtest, "app=sql-audit-service")) == 3)
    envtest.wait("the timer to close the journal entry once they were Ready", lambda: fault_journal.open_entries(
        Path(run["fault_state_dir"]), run["run_id"]) == [], timeout=30)


def test_postgres_stop_with_a_duration_holds_the_leader_down_until_restored(envtest: Envtest,
                                                                           run: dict[str, Any]) -> None:
    envtest.wait("a postgres leader", lambda: pods(envtest, "app=postgres"))
    result = postgres_failover.fail_over_postgres(method="stop", duration=600, configuration=run)
    assert result["details"]["changed"] == ("scaled StatefulSet postgres from 1 to 0: leader pod postgres-0 held "
                                            "down")
    envtest.wait("postgres-0 gone", lambda: pods(envtest, "app=postgres") == {})
    restored = postgres_failover.restore_postgres(configuration=run)
    assert restored["reverted_entries"] == [result["fault_id"]]
    assert held_replicas(envtest, "postgres") == (1, {})
    assert "postgres-0" in ready_pods(envtest, "app=postgres")


def test_stop_kafka_broker_refuses_a_pod_no_controller_would_recreate(envtest: Envtest,
                                                                      run: dict[str, Any]) -> None:
    core = kubernetes.client.CoreV1Api(envtest.admin)
    bare: Any = {"metadata": {"name": "kafka-9", "labels": {"app": "kafka"}},
                 "spec": {"containers": [{"name": "kafka", "image": "kafka:test"}]}}
    core.create_namespaced_pod(NAMESPACE, bare)
    try:
        envtest.wait("bare broker pod Ready", lambda: "kafka-9" in ready_pods(envtest, "app=kafka"))
        with pytest.raises(ActivityFailed, match="broker pod sql-audit/kafka-9 has no controller"):
            kafka_broker.stop_kafka_broker(9, configuration=run)
        assert "kafka-9" in ready_pods(envtest, "app=kafka")
    finally:
        core.delete_namespaced_pod("kafka-9", NAMESPACE)
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []


def test_a_broker_down_already_blocks_another_and_start_waits_a_bounded_time(envtest: Envtest,
                                                                           run: dict[str, Any]) -> None:
    before = brokers(envtest)
    core = kubernetes.client.CoreV1Api(envtest.admin)
    core.patch_namespaced_pod_status("kafka-2", NAMESPACE, {"status": {"conditions": [
        {"type": "Ready", "status": "False"}]}})  # the mini kubelet leaves a Running pod's conditions alone
    try:
        envtest.wait("kafka-2 not Ready", lambda: "kafka-2" not in ready_pods(envtest, "app=kafka"))
        with pytest.raises(ActivityFailed, match=r"blast radius: only 2 of 3 broker pods \(replicas of StatefulSet "
                                                 r"kafka\) are Ready"):
            kafka_broker.stop_kafka_broker(0, configuration=run)
        with pytest.raises(ActivityFailed, match=r"only 2 of 3 broker pods Ready .* after 2 s \(k8s_ready_timeout\)"):
            kafka_broker.start_kafka_broker(configuration={**run, "k8s_ready_timeout": 2})
    finally:
        core.patch_namespaced_pod_status("kafka-2", NAMESPACE, {"status": {"conditions": [
            {"type": "Ready", "status": "True"}]}})
    assert brokers(envtest) == before
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []


# ----------------------------------------------------------------------------- checker config change
def checkers(envtest: Envtest) -> Any:
    return kubernetes.client.CoreV1Api(envtest.admin).read_namespaced_config_map("sql-audit-service-checkers",
                                                                                  NAMESPACE)


def settled(envtest: Envtest) -> Any:
    """The audit service's StatefulSet once its roll (if any) is complete."""
    apps = kubernetes.client.AppsV1Api(envtest.admin)
    return envtest.wait("sql-audit-service settled", lambda: (
        s := apps.read_namespaced_stateful_set("sql-audit-service", NAMESPACE)) and rollout_status(s)[0] and s)


def restarted_at(sts: Any) -> str | None:
    return (sts.spec.template.metadata.annotations or {}).get(RESTARTED_AT)


def test_config_change_patches_the_configmap_rolls_the_set_and_restore_is_byte_exact(envtest: Envtest,
                                                                                    run: dict[str, Any]) -> None:
    sts0, cm0 = settled(envtest), checkers(envtest)
    pods0 = pods(envtest, "app=sql-audit-service")
    original = cm0.data["checkers.yaml"]
    result = config_fault.change_checker_threshold("slow_query", "threshold_ms", 3000, configuration=run)
    details = result["details"]
    assert (details["old"], details["new"], details["previous"]) == (1000, 3000, original)
    [(_, entry)] = fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"])
    assert entry["plan"]["previous"] == original  # journaled before the change
    assert entry["details"]["previous"] == original
    # the ConfigMap: one line changed (comments kept), the old value recorded beside it
    cm1 = checkers(envtest)
    changed = [(a, b) for a, b in zip(original.splitlines(), cm1.data["checkers.yaml"].splitlines(), strict=True)
               if a != b]
    assert changed == [("  threshold_ms: 1000        # WARNING when duration_ms > threshold_ms",
                        "  threshold_ms: 3000        # WARNING when duration_ms > threshold_ms")]
    assert json.loads(cm1.metadata.annotations[BEFORE])["value"] == original
    assert PENDING not in cm1.metadata.annotations
    # the StatefulSet: restarted as kubectl rollout restart does, and the inject returned once it had rolled
    sts1: Any = kubernetes.client.AppsV1Api(envtest.admin).read_namespaced_stateful_set("sql-audit-service", NAMESPACE)
    assert restarted_at(sts1) == details["restarted_at"] != restarted_at(sts0)
    assert rollout_status(sts1)[0] and sts1.status.update_revision != sts0.status.update_revision
    assert any(r.startswith("PATCH /apis/apps/v1/namespaces/sql-audit/statefulsets/sql-audit-service")
               for r in details["requests"])
    pods1 = pods(envtest, "app=sql-audit-service")
    assert pods1.keys() == pods0.keys() and all(pods1[n] != pods0[n] for n in pods0)  # every pod restarted

    restored = config_fault.restore_checker_config(configuration=run)
    assert restored["reverted_entries"] == [result["fault_id"]]
    cm2 = checkers(envtest)
    assert cm2.data == cm0.data  # byte for byte
    assert BEFORE not in (cm2.metadata.annotations or {}) and PENDING not in (cm2.metadata.annotations or {})
    sts2 = kubernetes.client.AppsV1Api(envtest.admin).read_namespaced_stateful_set("sql-audit-service", NAMESPACE)
    assert restarted_at(sts2) == restored["details"]["restarted_at"] != restarted_at(sts1)
    assert rollout_status(sts2)[0]
    pods2 = pods(envtest, "app=sql-audit-service")
    assert all(pods2[n] != pods1[n] for n in pods1)  # rolled again, onto the old config
    again = config_fault.restore_checker_config(configuration=run)
    assert again["details"]["changed"].startswith("nothing to restore")
    assert fault_journal.open_entries(Path(run["fault_state_dir"]), run["run_id"]) == []


@pytest.mark.parametrize(("args", "extra", "match"), [
    ({}, {"k8s_checkers_configmap": "nope"}, r"no ConfigMap sql-audit/nope \(k8s_checkers_configmap\) on context"),
    ({}, {"k8s_checkers_key": "other.yaml"},
     r"ConfigMap sql-audit/sql-audit-service-checkers has no key 'other.yaml' \(k8s_checkers_key"),
    ({"checker": "nope"}, {}, "no checker 'nope' in ConfigMap sql-audit/sql-audit-service-checkers key checkers.yaml"),
    ({"field": "colour"}, {}, "slow_query has no numeric field 'colour'"),
    ({"field": "enabled"}, {}, "slow_query has no numeric field 'enabled'"),
    ({"value": -5}, {}, "the service would refuse -5: ConfigMap sql-audit/sql-audit-service-checkers key "
                        "checkers.yaml: field slow_query.threshold_ms"),
    ({"value": 2.5}, {}, "slow_query.threshold_ms is an integer; value=2.5 is not"),
    ({"group": "other"}, {}, "unknown group 'other' on kubernetes"),
    ({}, {"k8s_service_statefulset": "nope"}, "statefulsets/nope on context envtest-sandbox .*: 404"),
    ({}, {"k8s_service_statefulset": "clickhouse"},
     "blast radius: StatefulSet sql-audit/clickhouse has 1 replica.s.; a rolling restart would leave none serving"),
])
def test_bad_config_change_fails_clearly_and_changes_nothing(envtest: Envtest, run: dict[str, Any],
                                                             args: dict[str, Any], extra: dict[str, Any],
                                                             match: str) -> None:
    sts0, cm0 = settled(envtest), checkers(envtest)
    call = {"checker": "slow_query", "field": "threshold_ms", "value": 3000, **args}
    with pytest.raises(ActivityFailed, match=match):
        config_fault.change_checker_threshold(**call, configuration={**run, **extra})
    cm1 = checkers(envtest)
    assert (cm1.data, cm1.metadata.annotations) == (cm0.data, cm0.metadata.annotations)
    assert cm1.metadata.resource_version == cm0.metadata.resource_version
    assert settled(envtest).metadata.generation == sts0.metadata.generation
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []


def test_dry_runs_of_the_broker_and_config_faults_change_nothing(envtest: Envtest, run: dict[str, Any]) -> None:
    before, sts0, cm0 = brokers(envtest), settled(envtest), checkers(envtest)
    dry = {**run, "dry_run": True}
    stop = kafka_broker.stop_kafka_broker(2, configuration=dry)
    assert stop["dry_run"] is True
    assert stop["plan"]["requests"] == ["DELETE /api/v1/namespaces/sql-audit/pods/kafka-2"]
    assert "StatefulSet kafka recreates it" in stop["plan"]["would"]
    assert kafka_broker.start_kafka_broker(configuration=dry)["dry_run"] is True
    change = config_fault.change_checker_threshold("frequency", "threshold", 250, configuration=dry)
    plan = change["plan"]
    assert plan["previous"] == cm0.data["checkers.yaml"] and "frequency.threshold 100 -> 250" in plan["would"]
    configmap = "PATCH /api/v1/namespaces/sql-audit/configmaps/sql-audit-service-checkers ("
    assert [r[:len(configmap)] for r in plan["requests"][::2]] == [configmap, configmap]  # data, then restart-pending
    assert plan["requests"][1].startswith("PATCH /apis/apps/v1/namespaces/sql-audit/statefulsets/sql-audit-service ")
    assert RESTARTED_AT in plan["requests"][1] and len(plan["requests"]) == 3
    assert config_fault.restore_checker_config(configuration=dry)["plan"]["would"] == "nothing"
    assert ready_pods(envtest, "app=kafka") == before
    cm1 = checkers(envtest)
    assert (cm1.data, cm1.metadata.resource_version) == (cm0.data, cm0.metadata.resource_version)
    assert settled(envtest).metadata.generation == sts0.metadata.generation
    assert fault_journal.entries(Path(run["fault_state_dir"]), run["run_id"]) == []


def test_config_change_twice_is_refused_and_cleanup_reverts_a_dead_runners_change(envtest: Envtest,
                                                                                 run: dict[str, Any]) -> None:
    settled(envtest)
    cm0 = checkers(envtest)
    config_fault.change_checker_threshold("error_rate", "threshold", 0.75, configuration=run)
    doc = yaml.safe_load(checkers(envtest).data["checkers.yaml"])
    assert doc["error_rate"]["threshold"] == 0.75 and doc["frequency"]["threshold"] == 100
    with pytest.raises(ActivityFailed, match="already carries a change of this library"):
        config_fault.change_checker_threshold("error_rate", "threshold", 0.8, configuration=run)
    # the runner "dies": cleanup reverts with the configuration recorded in the journal
    results = cleanup(Path(run["fault_state_dir"]), run["run_id"])
    assert [r.ok for r in results] == [True], results
    assert checkers(envtest).data == cm0.data


def test_restore_finishes_a_restart_an_earlier_restore_left_pending(envtest: Envtest, run: dict[str, Any]) -> None:
    """A revert that died between its ConfigMap patch and its restart: the next one still rolls the pods."""
    sts0 = settled(envtest)
    core = kubernetes.client.CoreV1Api(envtest.admin)
    core.patch_namespaced_config_map("sql-audit-service-checkers", NAMESPACE,
                                     {"metadata": {"annotations": {PENDING: "2000-01-01T00:00:00Z"}}})
    out = config_fault.restore_checker_config(configuration=run)
    assert "a restart was pending" in out["details"]["changed"]
    assert restarted_at(settled(envtest)) not in (None, restarted_at(sts0))
    assert PENDING not in (checkers(envtest).metadata.annotations or {})
    assert config_fault.restore_checker_config(configuration=run)["details"]["changed"].startswith("nothing")


# ----------------------------------------------------------------------------- RBAC
def _allowed(envtest: Envtest, verb: str, group: str, resource: str, namespace: str = NAMESPACE) -> bool:
    api = kubernetes.config.new_client_from_config(str(envtest.sa_kubeconfig))
    try:
        sub = resource.split("/", 1)
        review = kubernetes.client.AuthorizationV1Api(api).create_self_subject_access_review({
            "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "group": group,
                                            "resource": sub[0], "subresource": sub[1] if len(sub) > 1 else ""}}})
        return bool(review.status.allowed)
    finally:
        api.close()


def test_the_role_allows_every_call_the_backends_make(envtest: Envtest) -> None:
    denied = [c for c in sorted(CALLS) if not _allowed(envtest, c.verb, c.group, c.resource)]
    assert denied == []


@pytest.mark.parametrize(("verb", "group", "resource", "namespace"), [
    ("create", "", "pods", NAMESPACE),
    ("patch", "", "pods", NAMESPACE),
    ("get", "", "secrets", NAMESPACE),
    ("list", "", "secrets", NAMESPACE),
    ("update", "networking.k8s.io", "networkpolicies", NAMESPACE),
    ("delete", "apps", "statefulsets", NAMESPACE),
    ("patch", "apps", "deployments", NAMESPACE),
    ("create", "rbac.authorization.k8s.io", "rolebindings", NAMESPACE),
    ("delete", "", "pods", "kube-system"),
    ("create", "networking.k8s.io", "networkpolicies", "default"),
    ("list", "", "configmaps", NAMESPACE),
    ("create", "", "configmaps", NAMESPACE),
    ("update", "", "configmaps", NAMESPACE),
    ("delete", "", "configmaps", NAMESPACE),
    ("patch", "", "configmaps", "default"),
    ("patch", "apps", "statefulsets", "kube-system"),
])
def test_the_role_denies_the_rest(envtest: Envtest, verb: str, group: str, resource: str, namespace: str) -> None:
    assert not _allowed(envtest, verb, group, resource, namespace)


def test_a_denied_request_really_gets_403(envtest: Envtest) -> None:
    api = kubernetes.config.new_client_from_config(str(envtest.sa_kubeconfig))
    try:
        with pytest.raises(kubernetes.client.ApiException) as err:
            kubernetes.client.CoreV1Api(api).list_namespaced_secret(NAMESPACE)
        assert err.value.status == 403
        with pytest.raises(kubernetes.client.ApiException) as err:
            kubernetes.client.CoreV1Api(api).delete_namespaced_pod("anything", "kube-system")
        assert err.value.status == 403
    finally:
        api.close()


def test_manifests_pass_server_side_dry_run(envtest: Envtest) -> None:
    """Every rendered manifest is accepted by the real API server's validation (strict fields)."""
    import yaml

    for path in ("deploy/k8s/overlays/staging", "deploy/k8s/example-service"):
        docs = kustomize(ROOT / path)
        ns = docs[0]["metadata"].get("namespace", NAMESPACE)
        envtest.kubectl("create", "namespace", ns, check=False)
        out = envtest.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                              stdin=yaml.safe_dump_all(docs), check=False)
        assert out.returncode == 0, f"{path}: {out.stderr}"
        assert out.stdout.count("(server dry run)") == len(docs), out.stdout


def test_server_is_the_pinned_version(envtest: Envtest) -> None:
    """The session's server is the version install.sh pins (guards against a stale cache)."""
    info = kubernetes.client.VersionApi(envtest.admin).get_code()
    assert info.git_version == "v1.37.2"


def test_scale_replicas_patches_the_scale_subresource_and_restore_scales_back(envtest: Envtest,
                                                                               run: dict[str, Any]) -> None:
    """3 -> 5 through ``statefulsets/scale`` (the Role's patch on it), the count before in the annotation; a second
    scale keeps the first count; the restore (by ``cleanup``, as a rollback left undone would be) returns to 3."""
    apps = kubernetes.client.AppsV1Api(envtest.admin)
    envtest.wait("3 audit pods", lambda: len(pods(envtest, "app=sql-audit-service")) == 3)
    result = replica_count.scale_replicas(5, configuration=run)
    assert result["details"]["before"] == 3 and result["details"]["after"] == 5
    assert any(r.startswith("PATCH /apis/apps/v1/namespaces/sql-audit/statefulsets/sql-audit-service/scale")
               for r in result["details"]["requests"])
    envtest.wait("5 audit pods", lambda: len(pods(envtest, "app=sql-audit-service")) == 5)
    again = replica_count.scale_replicas(4, configuration=run)
    assert again["details"]["replicas_before"] == 3
    sts = apps.read_namespaced_stateful_set("sql-audit-service", NAMESPACE)
    assert sts.spec.replicas == 4 and sts.metadata.annotations["sql-audit-resilience/replicas-before"] == "3"
    cleanup(Path(run["fault_state_dir"]), run["run_id"])
    sts = apps.read_namespaced_stateful_set("sql-audit-service", NAMESPACE)
    assert sts.spec.replicas == 3
    assert "sql-audit-resilience/replicas-before" not in (sts.metadata.annotations or {})
    envtest.wait("3 audit pods again", lambda: len(pods(envtest, "app=sql-audit-service")) == 3)
    assert not fault_journal.open_entries(Path(run["fault_state_dir"]), run["run_id"])
    nothing = replica_count.restore_replica_count(configuration=run)
    assert nothing["details"]["changed"].startswith("not scaled")


def sweep_once(target: Path, *args: str) -> tuple[int, list[str]]:
    """``python -m faults.cli sweep`` once with ``target`` as its target file: (exit code, printed lines)."""
    from click.testing import CliRunner

    from faults.cli import main

    out = CliRunner().invoke(main, ["sweep", "--target-config", str(target), *args])
    return out.exit_code, out.output.splitlines()


def test_the_sweep_reverts_exactly_the_expired_partitions_and_holds(envtest: Envtest, tmp_path: Path) -> None:
    """An expired, a fresh and an old (no expiry) partition policy and hold, made by hand as a killed runner
    would leave them: one sweep, as the ServiceAccount, deletes the expired policy and scales the expired set
    back to its recorded count without the annotations; the rest stays as it was; a second sweep has nothing
    to do. A dry run first changes nothing."""
    from faults.kubernetes import sweep
    from faults.kubernetes.hold import BEFORE, HELD_BY
    from faults.kubernetes.network_partition import managed_selector

    target = tmp_path / "target.yaml"
    target.write_text(yaml.safe_dump(envtest.configuration(tmp_path / "journal", "sweeper")))
    net, apps = kubernetes.client.NetworkingV1Api(envtest.admin), kubernetes.client.AppsV1Api(envtest.admin)
    core = kubernetes.client.CoreV1Api(envtest.admin)
    labels = dict(kv.split("=") for kv in managed_selector().split(","))
    past, future = stamp(time.time() - 60), stamp(time.time() + 600)
    cases = {"expired": {EXPIRES: past}, "fresh": {EXPIRES: future}, "old": {}}
    for case, expiry in cases.items():
        net.create_namespaced_network_policy(NAMESPACE, {
            "metadata": {"name": f"chaos-partition-sweep-{case}", "annotations": expiry,
                         "labels": {**labels, "sql-audit-resilience/edge": f"sweep-{case}"}},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}})
        apps.create_namespaced_stateful_set(NAMESPACE, {
            "metadata": {"name": f"sweep-{case}", "annotations": {BEFORE: "2", HELD_BY: "replicas", **expiry}},
            "spec": {"replicas": 0, "serviceName": f"sweep-{case}",
                     "selector": {"matchLabels": {"app": f"sweep-{case}"}},
                     "template": {"metadata": {"labels": {"app": f"sweep-{case}"}},
                                  "spec": {"containers": [{"name": "c", "image": "c:test"}]}}}})

    def state() -> dict[str, Any]:
        names = [p.metadata.name for p in policies(envtest) if p.metadata.name.startswith("chaos-partition-sweep-")]
        sets = {c: apps.read_namespaced_stateful_set(f"sweep-{c}", NAMESPACE) for c in cases}
        return {"policies": sorted(names), **{c: (s.spec.replicas, {k: v for k, v in (s.metadata.annotations or {})
                                                                    .items() if k.startswith("sql-audit-resilience/")})
                                              for c, s in sets.items()}}

    try:
        before = state()
        assert before["expired"] == (0, {BEFORE: "2", HELD_BY: "replicas", EXPIRES: past})
        code, lines = sweep_once(target, "--dry-run")
        assert code == 0 and [line.split()[:4] for line in lines] == [
            ["would", "revert", "NetworkPolicy", f"{NAMESPACE}/chaos-partition-sweep-expired"],
            ["would", "revert", "StatefulSet", f"{NAMESPACE}/sweep-expired"]], lines
        assert state() == before
        with record_calls() as calls:
            code, lines = sweep_once(target)
        assert code == 0 and lines == [
            f"reverted     NetworkPolicy {NAMESPACE}/chaos-partition-sweep-expired (expired at {past}): deleted",
            f"reverted     StatefulSet {NAMESPACE}/sweep-expired (expired at {past}): replicas 0 -> 2 (held by "
            f"replicas, {BEFORE}=2)"], lines
        assert set(calls) <= sweep.CALLS and set(calls) <= role_calls()
        assert state() == {"policies": ["chaos-partition-sweep-fresh", "chaos-partition-sweep-old"],
                           "expired": (2, {}), "fresh": before["fresh"], "old": before["old"]}
        envtest.wait("the expired set's 2 pods", lambda: len(ready_pods(envtest, "app=sweep-expired")) == 2)
        assert pods(envtest, "app=sweep-fresh") == pods(envtest, "app=sweep-old") == {}
        assert sweep_once(target) == (0, ["nothing expired"])
    finally:
        for case in cases:
            with contextlib.suppress(kubernetes.client.ApiException):  # 404: the sweep deleted it
                net.delete_namespaced_network_policy(f"chaos-partition-sweep-{case}", NAMESPACE)
            apps.delete_namespaced_stateful_set(f"sweep-{case}", NAMESPACE)
            core.delete_collection_namespaced_pod(NAMESPACE, label_selector=f"app=sweep-{case}")


def test_the_next_cleanup_closes_what_the_sweeper_reverted(envtest: Envtest, run: dict[str, Any],
                                                           tmp_path: Path) -> None:
    """A partition and a broker hold of a run, their journal entries open, their expiries passed (written into
    the past by hand: the runner died long ago): the sweep reverts both and closes nothing; the next run's
    cleanup then calls each entry's remove, which finds the fault gone, succeeds and closes it."""
    state = Path(run["fault_state_dir"])
    brokers(envtest)
    network_partition.partition_network("kafka", duration=600, configuration=run)
    kafka_broker.stop_kafka_broker(duration=600, configuration=run)
    envtest.wait("kafka-2 held down", lambda: set(pods(envtest, "app=kafka")) == {"kafka-0", "kafka-1"})
    past = stamp(time.time() - 1)
    net, apps = kubernetes.client.NetworkingV1Api(envtest.admin), kubernetes.client.AppsV1Api(envtest.admin)
    net.patch_namespaced_network_policy("chaos-partition-kafka", NAMESPACE, {"metadata": {"annotations": {
        EXPIRES: past}}})
    apps.patch_namespaced_stateful_set("kafka", NAMESPACE, {"metadata": {"annotations": {EXPIRES: past}}})
    target = tmp_path / "target.yaml"
    target.write_text(yaml.safe_dump(run))
    code, lines = sweep_once(target)
    assert code == 0 and [line.split()[1:3] for line in lines] == [
        ["NetworkPolicy", f"{NAMESPACE}/chaos-partition-kafka"], ["StatefulSet", f"{NAMESPACE}/kafka"]], lines
    assert policies(envtest) == [] and held_replicas(envtest, "kafka") == (3, {})
    assert len(fault_journal.open_entries(state, run["run_id"])) == 2  # the sweeper has no journal
    results = cleanup(state, run["run_id"])
    assert [(r.fault, r.ok) for r in results] == [("network_partition", True), ("kafka_broker", True)], results
    # nothing left to scale back: the start only waits for the brokers the sweep brought back (it does not wait)
    assert results[0].detail == "already healed" and "scaled" not in results[1].detail, results
    assert "3" in results[1].detail and len(ready_pods(envtest, "app=kafka")) == 3
    assert fault_journal.open_entries(state, run["run_id"]) == []
    assert cleanup(state, run["run_id"]) == []


def test_zz_every_recorded_call_is_granted_by_the_role() -> None:
    """Runs last in this module: the calls the backends really made above, against the Role in git."""
    assert RECORDED, "nothing recorded"
    assert RECORDED - role_calls() == set()
    assert not CALLS - RECORDED, "calls no test exercised against the server"
