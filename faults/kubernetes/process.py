"""Kubernetes backend of :mod:`faults.process`: ``program`` is a pod name in ``k8s_namespace``.

``graceful=false`` deletes it with grace period 0, ``true`` with its own grace period. A
StatefulSet recreates a pod under the same name, which ``restore_process`` waits for; for a
Deployment's pods (new names) use ``kill_replicas``/``restore_replicas`` instead.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.kubernetes._pods import no_duration
from faults.kubernetes.client import Kube, is_ready


def kill_process(program: str, graceful: bool = False, duration: float | None = None,
                 configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.process.kill_process`."""
    what = f"kill pod {program}"
    no_duration(duration, what)
    with Kube(configuration, what) as kube:
        ns = kube.settings.namespace
        pod = kube.read_pod(ns, program)
        if pod is None or pod.metadata.deletion_timestamp is not None:
            raise ActivityFailed(f"{what}: no live pod {program!r} in namespace {ns} on {kube.where}")
        if pod.status.phase != "Running":
            raise ActivityFailed(f"{what}: pod {program} is {pod.status.phase}, not Running")
        grace = None if graceful else 0
        kube.delete_pod(ns, program, grace, uid=pod.metadata.uid)
        if kube.dry_run:
            return {"would": f"delete pod {program} in {ns} (grace {grace})", "requests": kube.requests}
        return {"program": program, "namespace": ns, "uid": pod.metadata.uid, "requests": kube.requests,
                "changed": f"deleted pod {program} ({'graceful' if graceful else 'grace period 0'})"}


def restore_process(program: str, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.process.restore_process`: wait until pod ``program`` is Ready."""
    what = f"restore pod {program}"
    with Kube(configuration, what) as kube:
        ns = kube.settings.namespace
        pod = kube.read_pod(ns, program)
        if pod is not None and is_ready(pod):
            return {"program": program, "changed": "was Ready", "would": "nothing"}
        if kube.dry_run:
            return {"would": f"wait until pod {program} in {ns} is Ready (its controller recreates it)",
                    "requests": kube.requests}
        labels = (pod.metadata.labels if pod is not None else None) or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or kube.settings.service_selector
        kube.wait_pods_ready(ns, selector, 1, name=program)
        return {"program": program, "namespace": ns, "changed": "recreated and Ready"}
