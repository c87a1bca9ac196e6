"""Chaos Mesh ``NetworkChaos`` (latency, loss) between the audit service and one dependency.

Used when the cluster serves ``chaos-mesh.org/v1alpha1`` NetworkChaos (detected through API
discovery, which any authenticated user may read). Chaos Mesh applies ``tc netem`` in the
selected pods and removes it itself after ``duration``; the object stays until deleted.
Objects carry the same labels as this library's NetworkPolicies.
"""

import time
from typing import Any

from chaoslib.exceptions import ActivityFailed

from faults.kubernetes import LABEL_PREFIX, MANAGED_BY
from faults.kubernetes.client import Kube
from faults.kubernetes.selectors import label_selector, label_value
from target.kubernetes import Edge
from target.topology import STREAM_CHOICES

DIRECTIONS = dict(zip(STREAM_CHOICES, ("to", "from", "both"), strict=True))
"""Chaos Mesh's ``direction`` for each ``stream`` (:data:`target.topology.STREAM_CHOICES`): upstream is
traffic from the service *to* the dependency, downstream *from* it."""


def managed_selector(fault: str, edge: str) -> str:
    """Label selector of this library's NetworkChaos objects for ``fault`` on ``edge``."""
    return f"app.kubernetes.io/managed-by={MANAGED_BY},{LABEL_PREFIX}/fault={fault},{LABEL_PREFIX}/edge={edge}"


def _pod_selector(namespace: str, selector: str) -> dict[str, Any]:
    parsed = label_selector(selector)
    out: dict[str, Any] = {"namespaces": [namespace]}
    if parsed.get("matchLabels"):
        out["labelSelectors"] = parsed["matchLabels"]
    if parsed.get("matchExpressions"):
        out["expressionSelectors"] = parsed["matchExpressions"]
    return out


def require(kube: Kube, what: str) -> None:
    """Raise ``ActivityFailed`` unless Chaos Mesh's NetworkChaos is installed in the cluster."""
    if not kube.has_chaos_mesh():
        raise ActivityFailed(f"{what}: Chaos Mesh is not installed on {kube.where} (the API serves no "
                             "chaos-mesh.org/v1alpha1 NetworkChaos); latency and loss on kubernetes need it. "
                             "Install Chaos Mesh or drop this experiment (partitions use a NetworkPolicy)")


def inject(kube: Kube, fault: str, action: str, edge: Edge, stream: str, spec: dict[str, Any],
           duration: float | None, what: str) -> dict[str, Any]:
    """Create a NetworkChaos ``action`` (``delay``, ``loss``) on ``edge``; the backend's return value."""
    require(kube, what)
    ns = kube.settings.namespace
    existing = [o["metadata"]["name"] for o in kube.list_networkchaos(ns, managed_selector(fault, edge.name))]
    if existing:
        raise ActivityFailed(f"{what}: already there (NetworkChaos {existing} in {ns}); remove it first")
    name = f"chaos-{fault}-{edge.name}-{int(time.time())}"
    body: dict[str, Any] = {
        "apiVersion": "chaos-mesh.org/v1alpha1",
        "kind": "NetworkChaos",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"app.kubernetes.io/managed-by": MANAGED_BY, f"{LABEL_PREFIX}/fault": fault,
                                f"{LABEL_PREFIX}/edge": edge.name,
                                f"{LABEL_PREFIX}/run-id": label_value(kube.base.run_id)}},
        "spec": {"action": action, "mode": "all", "selector": _pod_selector(ns, kube.settings.service_selector),
                 "direction": DIRECTIONS[stream], **spec},
    }
    if edge.selector:
        body["spec"]["target"] = {"mode": "all", "selector": _pod_selector(edge.namespace, edge.selector)}
    if edge.cidrs:
        body["spec"]["externalTargets"] = list(edge.cidrs)
    if duration:
        body["spec"]["duration"] = f"{round(duration)}s"
    kube.create_networkchaos(ns, body)
    if kube.dry_run:
        return {"would": f"create NetworkChaos {name} in {ns}", "object": body, "requests": kube.requests}
    return {"edge": edge.name, "namespace": ns, "networkchaos": name, "spec": body["spec"],
            "requests": kube.requests, "changed": f"created NetworkChaos {name} ({action}) in {ns}"}


def remove(kube: Kube, fault: str, edge: Edge) -> dict[str, Any]:
    """Delete this library's NetworkChaos objects for ``fault`` on ``edge``; idempotent."""
    if not kube.has_chaos_mesh():
        return {"edge": edge.name, "changed": "Chaos Mesh not installed: nothing to undo", "would": "nothing"}
    ns = kube.settings.namespace
    names = [o["metadata"]["name"] for o in kube.list_networkchaos(ns, managed_selector(fault, edge.name))]
    for name in names:
        kube.delete_networkchaos(ns, name)
    if kube.dry_run:
        return {"would": f"delete NetworkChaos {names} in {ns}", "requests": kube.requests}
    return {"edge": edge.name, "namespace": ns, "deleted": names,
            "changed": f"deleted NetworkChaos {', '.join(names)}" if names else "already healed"}
