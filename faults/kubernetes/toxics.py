"""Latency and loss on a cluster through toxiproxy servers beside the service (``k8s_toxiproxy_urls``).

``tc netem``, which Chaos Mesh's NetworkChaos uses, is missing from some kernels (the local cluster's
machine has none), and not every cluster may run Chaos Mesh. A service whose pods reach their stores
through a toxiproxy sidecar (the local cluster's: ``deploy/k8s/local/system/service-patch.yaml``, one
proxy per edge, named after it, on 127.0.0.1 in the pod) takes the same toxics as the local stack: the
target file lists each replica's toxiproxy API (``k8s_toxiproxy_urls``) and a fault on an edge puts its
toxic on that edge's proxy in **every** listed server, or on none (each server is checked first: it
answers, has the edge's proxy, and carries no toxic of ours yet). Toxics are named
``chaos-<fault>-<stream>`` as on the local target, so a removal, an expiry timer, the watchdog and
``resilience cleanup`` find them by prefix, and the residue audit names any left.

A pod replaced during the fault comes back with a sidecar without toxics: the fault then no longer
applies to that replica (Chaos Mesh would re-inject into a new pod; toxiproxy keeps no state).
"""

from typing import Any

from faults.kubernetes.client import Kube
from faults.toxiproxy import ToxiproxyAPI, add_toxics, remove_toxics


def servers(kube: Kube) -> list[ToxiproxyAPI]:
    """The replicas' toxiproxy servers (``k8s_toxiproxy_urls``), empty when the target file names none."""
    return [ToxiproxyAPI(url) for url in kube.settings.toxiproxy_urls]


def add(kube: Kube, edge: str, prefix: str, kind: str, stream: str, attributes: dict[str, Any],
        toxicity: float, what: str) -> dict[str, Any]:
    """:func:`faults.toxiproxy.add_toxics` on every replica's server: all of them or none."""
    return add_toxics(servers(kube), edge, prefix, kind, stream, attributes, toxicity, what, kube.dry_run)


def remove(kube: Kube, edge: str, prefix: str, what: str) -> dict[str, Any]:
    """:func:`faults.toxiproxy.remove_toxics` on every replica's server."""
    return remove_toxics(servers(kube), edge, prefix, what, kube.dry_run)
