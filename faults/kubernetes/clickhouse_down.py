"""Kubernetes backend of :mod:`faults.clickhouse_down`: scale the ClickHouse StatefulSet to 0 and back.

``stop_clickhouse`` records the replica count in the annotation
``sql-audit-resilience/replicas-before`` and sets ``spec.replicas: 0`` in one patch of the
StatefulSet ``k8s_clickhouse_statefulset`` (namespace ``k8s_clickhouse_namespace``);
``start_clickhouse`` restores that count, drops the annotation and waits for the pods to be Ready.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.kubernetes import LABEL_PREFIX
from faults.kubernetes.client import Kube

BEFORE = f"{LABEL_PREFIX}/replicas-before"


def stop_clickhouse(duration: float | None = None, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.clickhouse_down.stop_clickhouse`."""
    what = "stop clickhouse"
    with Kube(configuration, what) as kube:
        ns, name = kube.settings.edges["clickhouse"].namespace, kube.settings.clickhouse_statefulset
        sts = kube.read_statefulset(ns, name)
        replicas = sts.spec.replicas or 0
        if replicas == 0 or BEFORE in (sts.metadata.annotations or {}):
            raise ActivityFailed(f"{what}: StatefulSet {ns}/{name} is already scaled down (replicas {replicas}, "
                                 f"annotations {sts.metadata.annotations}); start_clickhouse first")
        kube.patch_statefulset(ns, name, {"metadata": {"annotations": {BEFORE: str(replicas)}},
                                          "spec": {"replicas": 0}})
        if kube.dry_run:
            return {"would": f"scale StatefulSet {ns}/{name} from {replicas} to 0", "requests": kube.requests}
        return {"statefulset": name, "namespace": ns, "replicas_before": replicas, "requests": kube.requests,
                "changed": f"scaled {name} from {replicas} to 0"}


def start_clickhouse(configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.clickhouse_down.start_clickhouse`; idempotent."""
    what = "start clickhouse"
    with Kube(configuration, what) as kube:
        edge = kube.settings.edges["clickhouse"]
        ns, name = edge.namespace, kube.settings.clickhouse_statefulset
        sts = kube.read_statefulset(ns, name)
        before = (sts.metadata.annotations or {}).get(BEFORE)
        if before is None:
            if not sts.spec.replicas:
                raise ActivityFailed(f"{what}: StatefulSet {ns}/{name} has 0 replicas and no {BEFORE} annotation: "
                                     "this library did not scale it down; scale it by hand")
            return {"statefulset": name, "changed": f"was running ({sts.spec.replicas} replicas)",
                    "would": "nothing"}
        kube.patch_statefulset(ns, name, {"metadata": {"annotations": {BEFORE: None}},
                                          "spec": {"replicas": int(before)}})
        if kube.dry_run:
            return {"would": f"scale StatefulSet {ns}/{name} back to {before}", "requests": kube.requests}
        kube.wait_pods_ready(ns, edge.selector, int(before))
        return {"statefulset": name, "namespace": ns, "replicas": int(before), "requests": kube.requests,
                "changed": f"scaled {name} back to {before}"}
