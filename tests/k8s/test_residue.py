"""The residue audit against a real kube-apiserver, as the suite's ServiceAccount (deploy/k8s/base's Role).

Every read of the audit goes through the guarded client and the Role must allow it (the API server
answers 403 otherwise); each fault left in place is named, its removal leaves nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from faults import checker_config as config_fault
from faults import clickhouse_down, network_partition, postgres_failover, residue
from faults.cleanup import cleanup
from faults.kubernetes.client import rollout_status
from target.settings import resolve
from tests.k8s.conftest import NAMESPACE, ROOT, Envtest, kustomize

pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def workloads(envtest: Envtest) -> None:
    """The example service and its dependencies as tests/k8s/test_apiserver.py makes them (kept if there)."""
    docs = [d for d in kustomize(ROOT / "deploy/k8s/example-service") if d["kind"] in ("StatefulSet", "Service",
                                                                                         "ConfigMap")]
    for doc in docs:
        doc["metadata"]["namespace"] = NAMESPACE
        try:
            kubernetes.utils.create_from_dict(envtest.admin, doc, namespace=NAMESPACE)
        except kubernetes.utils.FailToCreateError as exc:
            if not all(isinstance(e, ApiException) and e.status == 409 for e in exc.api_exceptions):
                raise
    apps = kubernetes.client.AppsV1Api(envtest.admin)
    for name, labels, count in (("kafka", {"app": "kafka"}, 3), ("clickhouse", {"app": "clickhouse"}, 1),
                                ("postgres", {"app": "postgres", "role": "primary"}, 1)):
        try:
            apps.create_namespaced_stateful_set(NAMESPACE, {
                "metadata": {"name": name},
                "spec": {"replicas": count, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": name, "image": f"{name}:test"}]}}}})
        except ApiException as exc:
            if exc.status != 409:
                raise


@pytest.fixture
def run(envtest: Envtest, workloads: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    state = tmp_path / "journal"
    run_id = f"k8s-residue-{uuid.uuid4().hex[:8]}"
    try:
        yield envtest.configuration(state, run_id)
    finally:
        cleanup(state, run_id)


def _settled(envtest: Envtest) -> None:
    apps = kubernetes.client.AppsV1Api(envtest.admin)
    core = kubernetes.client.CoreV1Api(envtest.admin)

    def done() -> bool:
        sets = [apps.read_namespaced_stateful_set(n, NAMESPACE) for n in ("sql-audit-service", "clickhouse", "kafka")]
        ready = sum(any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
                    for p in core.list_namespaced_pod(NAMESPACE).items)
        return all(rollout_status(s)[0] for s in sets) and ready >= 8

    envtest.wait("every set rolled and 8 pods Ready", done, timeout=60)


def _named(before: dict[str, Any], settings: Any) -> str:
    return " | ".join(map(str, residue.diff(before, residue.snapshot(settings)).leftovers))


def test_each_kubernetes_fault_left_in_place_is_named_and_its_removal_leaves_nothing(envtest: Envtest,
                                                                                    run: dict[str, Any]) -> None:
    _settled(envtest)
    settings = resolve(run)
    before = residue.snapshot(settings)
    errors = {k: v for k, v in before["items"].items() if isinstance(v, dict) and "error" in v}
    assert not errors, errors  # every read allowed by the Role
    assert residue.diff(residue.at_rest(before), before, "at rest").clean
    assert before["items"]["network_chaos"] is None  # no Chaos Mesh here
    assert set(before["items"]["statefulsets"]) == {f"{NAMESPACE}/{n}" for n in ("sql-audit-service", "clickhouse",
                                                                                 "kafka", "postgres")}

    network_partition.partition_network("kafka", configuration=run)
    found = _named(before, settings)
    assert "NetworkPolicy chaos-partition-kafka: left" in found, found
    assert "NetworkPolicy chaos-partition-kafka" in " | ".join(map(str, residue.library_leftovers(
        residue.snapshot(settings))))
    network_partition.remove_partition("kafka", configuration=run)

    clickhouse_down.stop_clickhouse(configuration=run)
    envtest.wait("clickhouse pods gone", lambda: "pods of clickhouse" in _named(before, settings))
    found = _named(before, settings)
    assert f"StatefulSet {NAMESPACE}/clickhouse: spec.replicas 0 (was 1" in found, found
    assert "annotation sql-audit-resilience/replicas-before left" in found, found
    clickhouse_down.start_clickhouse(configuration=run)

    # Held at 0, PostgreSQL's set has no pod left to lead to it: the audit finds it by its annotation.
    postgres_failover.fail_over_postgres(method="stop", duration=600, configuration=run)
    envtest.wait("postgres pods gone", lambda: "pods of postgres" in _named(before, settings))
    found = _named(before, settings)
    assert f"StatefulSet {NAMESPACE}/postgres: spec.replicas 0 (was 1" in found, found
    assert "annotation sql-audit-resilience/held-by left" in found, found
    postgres_failover.restore_postgres(configuration=run)

    config_fault.change_checker_threshold("slow_query", "threshold_ms", 3000, configuration=run)
    found = _named(before, settings)
    assert f"ConfigMap {NAMESPACE}/sql-audit-service-checkers: key checkers.yaml changed" in found, found
    assert "annotation sql-audit-resilience/checkers-before left" in found, found
    config_fault.restore_checker_config(configuration=run)

    _settled(envtest)
    _, audit, waited = residue.settle(settings, before, timeout=60)
    assert audit.clean, f"after {waited:.0f} s: {audit.describe()}"
    assert "sql-audit-service: rolled during the run" in " | ".join(map(str, audit.notes))


def test_cleanup_audits_against_the_runs_snapshot(envtest: Envtest, run: dict[str, Any]) -> None:
    _settled(envtest)
    settings = resolve(run)
    residue.save_before(settings, residue.snapshot(settings))
    network_partition.partition_network("postgres", configuration=run)
    audit = residue.audit_stack(run, run["run_id"])
    assert audit.reference.startswith(f"before run {run['run_id']}")
    assert "NetworkPolicy chaos-partition-postgres: left" in audit.describe()
    cleanup(Path(run["fault_state_dir"]), run["run_id"])
    assert residue.audit_stack(run, run["run_id"]).clean
