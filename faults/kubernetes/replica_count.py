"""Kubernetes backend of :mod:`faults.replica_count`: the audit service's StatefulSet, through its scale subresource.

``scale_replicas`` records the replica count in the annotation ``sql-audit-resilience/replicas-before`` of
StatefulSet ``k8s_service_statefulset`` (namespace ``k8s_namespace``) unless a scale recorded it already,
then patches ``statefulsets/scale`` (what ``kubectl scale`` and an HPA write); ``restore_replica_count``
scales back to the recorded count, drops the annotation and waits until that many pods are Ready.

Why not chaostoolkit-kubernetes' ``chaosk8s.statefulset.actions.scale_statefulset``: it patches the
StatefulSet object itself (not the scale subresource), with a client of its own built from the
environment, so it would bypass this library's guard (allowed contexts and namespaces, production names),
its dry run, and the request record that deploy/k8s's Role is checked against.

Where an HPA manages the StatefulSet, the HPA's next reconciliation overrides a manual scale; the
experiment then measures the HPA, not this action.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.kubernetes import LABEL_PREFIX
from faults.kubernetes.client import Kube

BEFORE = f"{LABEL_PREFIX}/replicas-before"


def scale_replicas(to: int, duration: float | None = None, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.replica_count.scale_replicas`."""
    what = f"scale the audit service to {to} replicas"
    with Kube(configuration, what) as kube:
        ns, name = kube.settings.namespace, kube.settings.service_statefulset
        sts = kube.read_statefulset(ns, name)
        current = sts.spec.replicas if sts.spec.replicas is not None else 1
        recorded = (sts.metadata.annotations or {}).get(BEFORE)
        if recorded is None:
            kube.patch_statefulset(ns, name, {"metadata": {"annotations": {BEFORE: str(current)}}})
        kube.patch_statefulset_scale(ns, name, to)
        if kube.dry_run:
            return {"would": f"scale StatefulSet {ns}/{name} from {current} to {to}", "requests": kube.requests,
                    "before": current}
        return {"statefulset": name, "namespace": ns, "before": current, "after": to,
                "replicas_before": int(recorded) if recorded is not None else current, "requests": kube.requests,
                "changed": f"scaled {name} from {current} to {to}"}


def restore_replica_count(configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.replica_count.restore_replica_count`; idempotent."""
    what = "restore the audit service's replica count"
    with Kube(configuration, what) as kube:
        ns, name = kube.settings.namespace, kube.settings.service_statefulset
        sts = kube.read_statefulset(ns, name)
        before = (sts.metadata.annotations or {}).get(BEFORE)
        if before is None:
            return {"statefulset": name, "changed": f"not scaled: nothing to restore ({sts.spec.replicas} replicas)",
                    "would": "nothing"}
        try:
            original = int(before)
        except ValueError:
            raise ActivityFailed(f"{what}: annotation {BEFORE}={before!r} on StatefulSet {ns}/{name} is not a "
                                 "replica count; set spec.replicas by hand and remove the annotation") from None
        kube.patch_statefulset_scale(ns, name, original)
        kube.patch_statefulset(ns, name, {"metadata": {"annotations": {BEFORE: None}}})
        if kube.dry_run:
            return {"would": f"scale StatefulSet {ns}/{name} back to {original}", "requests": kube.requests}
        ready = kube.wait_pods_ready(ns, kube.settings.service_selector, original)
        return {"statefulset": name, "namespace": ns, "before": sts.spec.replicas, "after": original,
                "ready": ready, "requests": kube.requests, "changed": f"scaled {name} back to {original}"}
