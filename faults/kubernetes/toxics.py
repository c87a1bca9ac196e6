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

from chaoslib.exceptions import ActivityFailed

from faults.kubernetes.client import Kube
from faults.toxiproxy import ToxiproxyAPI, conflicting
from target.topology import streams


def servers(kube: Kube) -> list[ToxiproxyAPI]:
    """The replicas' toxiproxy servers (``k8s_toxiproxy_urls``), empty when the target file names none."""
    return [ToxiproxyAPI(url) for url in kube.settings.toxiproxy_urls]


def add(kube: Kube, edge: str, prefix: str, kind: str, stream: str, attributes: dict[str, Any],
        toxicity: float, what: str) -> dict[str, Any]:
    """Add toxic ``kind`` named ``<prefix>-<stream>`` on each stream of the edge's proxies in every server;
    refuses, changing nothing, if a server does not answer, lacks the proxy or has one of ours already."""
    chosen = streams(stream)
    members = {tp.url: (tp, tp.members(edge, what)) for tp in servers(kube)}
    present = {f"{url} {name}": conflicting(proxy, prefix) for url, (_, found) in members.items()
               for name, proxy in found.items() if conflicting(proxy, prefix)}
    if present:
        raise ActivityFailed(f"{what}: already there ({present}); remove it first")
    names = [f"{prefix}-{s}" for s in chosen]
    proxies = sorted(f"{url}/proxies/{name}" for url, (_, found) in members.items() for name in found)
    plan = f"add {kind} toxics {names} ({attributes}, toxicity {toxicity:g}) to {', '.join(proxies)}"
    if kube.dry_run:
        return {"would": plan, "edge": edge, "proxies": proxies}
    for tp, found in members.values():
        for proxy_name in found:
            for name, s in zip(names, chosen, strict=True):
                tp.add_toxic(proxy_name, name, kind, s, attributes, toxicity, what)
    return {"edge": edge, "proxies": proxies, "toxics": names, "changed": plan}


def remove(kube: Kube, edge: str, prefix: str, what: str) -> dict[str, Any]:
    """Remove every toxic named ``<prefix>-*`` from the edge's proxies in every server; none there is success.
    A server that does not answer fails the removal (its toxics cannot be seen gone), naming it."""
    present = {(tp, name): conflicting(proxy, prefix) for tp in servers(kube)
               for name, proxy in tp.members(edge, what).items()}
    if kube.dry_run:
        return {"would": "remove toxics " + ", ".join(f"{tp.url}/proxies/{name}: {toxics}"
                                                       for (tp, name), toxics in present.items()), "edge": edge}
    removed = [f"{tp.url}/proxies/{name}:{toxic}" for (tp, name), toxics in present.items() for toxic in toxics
               if tp.remove_toxic(name, toxic, what)]
    return {"edge": edge, "changed": f"removed {', '.join(removed)}" if removed else "already gone"}
