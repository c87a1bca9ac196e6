"""Kubernetes backend of :mod:`faults.clickhouse_down`: scale the ClickHouse StatefulSet down and back.

``stop_clickhouse`` lowers ``spec.replicas`` of the StatefulSet ``k8s_clickhouse_statefulset`` (namespace
``k8s_clickhouse_namespace``), recording the count before (:func:`faults.kubernetes.hold.hold_set`);
``start_clickhouse`` restores that count, drops the annotations and waits for the pods to be Ready.

``replica`` is a pod ordinal of that StatefulSet (``clickhouse-1`` is replica 1); ``null`` stops every
pod (``spec.replicas: 0``). A StatefulSet can hold down only its highest ordinals (scaling to ``n``
removes pods ``n`` and up), so one replica can be stopped only if it is the highest one: ``replica``
must be ``replicas - 1``; a lower one is refused, naming the pods it would take down too.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.kubernetes.client import Kube
from faults.kubernetes.hold import BEFORE, hold_set, restore

FAULT = "clickhouse_down"


def _no_such_replica(replica: int, replicas: int, where: str, what: str) -> ActivityFailed:
    return ActivityFailed(f"{what}: replica={replica}: StatefulSet {where} has {replicas} replica(s) "
                          f"(ordinals 0..{replicas - 1})")


def stop_clickhouse(duration: float | None = None, replica: int | None = None,
                    configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.clickhouse_down.stop_clickhouse`."""
    what = "stop clickhouse" + (f" replica {replica}" if replica is not None else "")
    with Kube(configuration, what) as kube:
        ns, name = kube.settings.edges["clickhouse"].namespace, kube.settings.clickhouse_statefulset
        sts = kube.read_statefulset(ns, name)
        replicas = sts.spec.replicas or 0
        target = 0
        if replica is not None:
            if replica >= replicas:
                raise _no_such_replica(replica, replicas, f"{ns}/{name}", what)
            if replica != replicas - 1:
                also = ", ".join(f"{name}-{i}" for i in range(replica + 1, replicas))
                raise ActivityFailed(f"{what}: a StatefulSet holds down only its highest ordinals: stopping "
                                     f"{name}-{replica} would stop {also} too; use replica {replicas - 1}, or null "
                                     "for every pod")
            target = replica
        hold_set(kube, ns, sts, replicas - target, FAULT, what, duration=duration)
        stopped = "every pod" if target == 0 else f"pod {name}-{target}"
        if kube.dry_run:
            return {"would": f"scale StatefulSet {ns}/{name} from {replicas} to {target} ({stopped})",
                    "requests": kube.requests}
        return {"statefulset": name, "namespace": ns, "replicas_before": replicas, "replicas": target,
                "requests": kube.requests, "changed": f"scaled {name} from {replicas} to {target} ({stopped})"}


def start_clickhouse(replica: int | None = None, configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.clickhouse_down.start_clickhouse`; idempotent.

    Puts back the replica count a stop recorded, whichever ``replica`` it stopped.
    """
    what = "start clickhouse" + (f" replica {replica}" if replica is not None else "")
    with Kube(configuration, what) as kube:
        edge = kube.settings.edges["clickhouse"]
        ns, name = edge.namespace, kube.settings.clickhouse_statefulset
        sts = kube.read_statefulset(ns, name)
        before = (sts.metadata.annotations or {}).get(BEFORE)
        if before is None:
            if not sts.spec.replicas:
                raise ActivityFailed(f"{what}: StatefulSet {ns}/{name} has 0 replicas and no {BEFORE} annotation: "
                                     "this library did not scale it down; scale it by hand")
            if replica is not None and replica >= sts.spec.replicas:
                raise _no_such_replica(replica, sts.spec.replicas, f"{ns}/{name}", what)
            return {"statefulset": name, "changed": f"was running ({sts.spec.replicas} replicas)",
                    "would": "nothing"}
        restore(kube, ns, sts, edge.selector, what)
        if kube.dry_run:
            return {"would": f"scale StatefulSet {ns}/{name} back to {before}", "requests": kube.requests}
        return {"statefulset": name, "namespace": ns, "replicas": int(before), "requests": kube.requests,
                "changed": f"scaled {name} back to {before}"}
