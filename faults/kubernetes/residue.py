"""What the residue audit (:mod:`faults.residue`) reads in a cluster, and when each item is back.

Every read goes through the one guarded, recorded, bounded client (:class:`Kube`, ``client.py``) and
uses only calls the backends already make, so deploy/k8s's Role needs nothing more: NetworkPolicies,
NetworkChaos and (for the ones a fault holds down) StatefulSets are listed, StatefulSets and the ConfigMap
read by name, pods listed by selector.

Items (``READERS``) and their rules (``RULES``; docs/faults.md, "Residue audit"):

``network_policies``  this library's NetworkPolicies (label ``app.kubernetes.io/managed-by``) in
                      ``k8s_namespace``: none new.
``network_chaos``     this library's Chaos Mesh NetworkChaos there (``None`` without Chaos Mesh): none new.
``statefulsets``      the service's, ClickHouse's, the brokers' and PostgreSQL's StatefulSets, and any a
                      fault holds down: ``spec.replicas`` and ``spec.ordinals.start`` equal, no
                      ``sql-audit-resilience/*`` annotation new (``replicas-before``, ``held-by``). A new
                      ``restartedAt`` of the pod template is a note (a config change rolls the set).
``configmap``         the checkers ConfigMap: sha256 of ``k8s_checkers_key`` equal, no
                      ``sql-audit-resilience/*`` annotation new (``checkers-before``, ``restart-pending``).
``toxiproxy``         (``k8s_toxiproxy_urls``) per server and proxy, the toxics of ours (``chaos-*``): none
                      new; ``None`` when the target file lists no server.
``pods``              per selector (the service, each dependency, the PostgreSQL leader): at least as
                      many Ready pods as before; those that are not are named.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from faults.kubernetes import LABEL_PREFIX, MANAGED_BY
from faults.kubernetes.client import Kube, is_ready
from faults.kubernetes.hold import START_BEFORE, first_ordinal, held
from faults.residue import Finding, Item
from faults.toxiproxy import CHAOS_PREFIX, ToxiproxyAPI
from target.settings import TargetSettings

WHAT = "residue audit"
MANAGED = f"app.kubernetes.io/managed-by={MANAGED_BY}"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _kube(settings: TargetSettings) -> Kube:
    return Kube({**settings.journal_configuration(), "dry_run": False}, WHAT)


def _ours(annotations: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (annotations or {}).items() if k.startswith(f"{LABEL_PREFIX}/")}


def instance(settings: TargetSettings) -> str | None:
    """The cluster and namespace (a snapshot of another is no reference): its API server and namespace."""
    with _kube(settings) as kube:
        return f"{kube.server} namespace {kube.settings.namespace}"


def read_network_policies(settings: TargetSettings) -> Item:
    with _kube(settings) as kube:
        ns = kube.settings.namespace
        return {p.metadata.name: {"labels": dict(p.metadata.labels or {}),
                                  "annotations": _ours(p.metadata.annotations)}
                for p in kube.list_policies(ns, MANAGED)}


def read_network_chaos(settings: TargetSettings) -> Item | None:
    with _kube(settings) as kube:
        if not kube.has_chaos_mesh():
            return None
        ns = kube.settings.namespace
        return {o["metadata"]["name"]: {"labels": dict(o["metadata"].get("labels") or {})}
                for o in kube.list_networkchaos(ns, MANAGED)}


def _statefulsets(kube: Kube) -> list[tuple[str, str]]:
    """(namespace, name) of the StatefulSets the faults scale or roll: the service's, ClickHouse's, the ones
    owning the Kafka broker and PostgreSQL pods, and any a fault holds down (faults.kubernetes.hold: a set
    held at 0 has no pod left to lead to it)."""
    s = kube.settings
    found = {(s.namespace, s.service_statefulset), (s.edges["clickhouse"].namespace, s.clickhouse_statefulset)}
    for edge in (s.edges["kafka"], s.edges["postgres"]):
        if not edge.selector:
            continue
        for pod in kube.list_pods(edge.namespace, edge.selector):
            for owner in pod.metadata.owner_references or []:
                if owner.controller and owner.kind == "StatefulSet":
                    found.add((edge.namespace, owner.name))
    for ns in sorted({s.namespace, s.edges["kafka"].namespace, s.edges["postgres"].namespace}):
        found |= {(ns, h.metadata.name) for h in held(kube, ns)}
    return sorted(found)


def read_statefulsets(settings: TargetSettings) -> Item:
    out: dict[str, Any] = {}
    with _kube(settings) as kube:
        for ns, name in _statefulsets(kube):
            try:
                sts = kube.read_statefulset(ns, name)
            except Exception as exc:  # the client's ActivityFailed wrapping a 404: a set this cluster does not have
                if getattr(exc.__cause__, "status", None) == 404:
                    continue
                raise
            template = sts.spec.template.metadata.annotations if sts.spec.template.metadata else None
            out[f"{ns}/{name}"] = {"replicas": sts.spec.replicas, "start": first_ordinal(sts),
                                   "annotations": _ours(sts.metadata.annotations),
                                   "restarted_at": (template or {}).get(RESTARTED_AT)}
    return out


def read_configmap(settings: TargetSettings) -> Item | None:
    with _kube(settings) as kube:
        s = kube.settings
        cm = kube.read_configmap(s.namespace, s.checkers_configmap)
        if cm is None:
            return None
        value = (cm.data or {}).get(s.checkers_key)
        return {"name": f"{s.namespace}/{s.checkers_configmap}", "key": s.checkers_key,
                "sha256": hashlib.sha256(value.encode()).hexdigest() if value is not None else None,
                "annotations": _ours(cm.metadata.annotations)}


def read_pods(settings: TargetSettings) -> Item:
    with _kube(settings) as kube:
        s = kube.settings
        groups = [("audit-service", s.namespace, s.service_selector),
                  ("postgres leader", s.edges["postgres"].namespace, s.postgres_leader_selector)]
        groups += [(edge, e.namespace, e.selector) for edge, e in sorted(s.edges.items()) if e.selector]
        out: dict[str, Any] = {}
        for label, ns, selector in groups:
            pods = [p for p in kube.list_pods(ns, selector)]
            out[label] = {"namespace": ns, "selector": selector,
                          "ready": sorted(p.metadata.name for p in pods if is_ready(p)),
                          "not_ready": sorted(p.metadata.name for p in pods if not is_ready(p))}
        return out


def read_toxiproxy(settings: TargetSettings) -> Item | None:
    """This library's toxics in each replica's toxiproxy (``k8s_toxiproxy_urls``), by ``<url> <proxy>``."""
    with _kube(settings) as kube:
        urls = kube.settings.toxiproxy_urls
    if not urls:
        return None
    return {f"{url} {name}": sorted(t["name"] for t in proxy["toxics"] if t["name"].startswith(CHAOS_PREFIX))
            for url in urls for name, proxy in ToxiproxyAPI(url).snapshot(WHAT).items()}


READERS = {"network_policies": read_network_policies, "network_chaos": read_network_chaos,
           "statefulsets": read_statefulsets, "configmap": read_configmap, "toxiproxy": read_toxiproxy,
           "pods": read_pods}


def _objects_rule(kind: str, item: str) -> Any:
    def rule(ref: Item, now: Item, label: str) -> list[Finding]:
        return [Finding(item, f"{kind} {name}", f"left (not there {label}; labels {now[name].get('labels')})")
                for name in sorted(set(now) - set(ref))]

    return rule


def statefulsets_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    for name in sorted(set(ref) | set(now)):
        subject = f"StatefulSet {name}"
        r, n = ref.get(name), now.get(name)
        if r is None or n is None:
            found.append(Finding("statefulsets", subject, "gone" if n is None else f"new (not there {label})"))
            continue
        if r["replicas"] != n["replicas"]:
            found.append(Finding("statefulsets", subject, f"spec.replicas {n['replicas']} (was {r['replicas']} "
                                                          f"{label})"))
        if r.get("start", 0) != n.get("start", 0):
            found.append(Finding("statefulsets", subject, f"spec.ordinals.start {n.get('start', 0)} (was "
                                                          f"{r.get('start', 0)} {label})"))
        for key in sorted(set(n["annotations"]) - set(r["annotations"])):
            found.append(Finding("statefulsets", subject, f"annotation {key} left"))
        if r.get("restarted_at") != n.get("restarted_at"):
            found.append(Finding("statefulsets", subject, f"rolled during the run ({RESTARTED_AT} "
                                                          f"{n.get('restarted_at')})", leftover=False))
    return found


def configmap_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    subject = f"ConfigMap {now.get('name')}"
    if ref.get("sha256") != now.get("sha256"):
        found.append(Finding("configmap", subject, f"key {now.get('key')} changed (sha256 "
                                                   f"{str(now.get('sha256'))[:12]}, was {str(ref.get('sha256'))[:12]} "
                                                   f"{label})"))
    for key in sorted(set(now.get("annotations") or {}) - set(ref.get("annotations") or {})):
        found.append(Finding("configmap", subject, f"annotation {key} left"))
    return found


def pods_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    found = []
    for group, r in sorted(ref.items()):
        n = now.get(group) or {"ready": [], "not_ready": []}
        if len(n["ready"]) < len(r["ready"]):
            found.append(Finding("pods", f"pods of {group} ({r['namespace']}, {r['selector']})",
                                 f"{len(n['ready'])} Ready (were {len(r['ready'])} {label}); not Ready: "
                                 f"{', '.join(n['not_ready']) or 'none (missing)'}"))
    return found


def toxiproxy_rule(ref: Item, now: Item, label: str) -> list[Finding]:
    return [Finding("toxiproxy", f"toxiproxy {proxy}", f"toxic {toxic} left (not there {label})")
            for proxy, toxics in sorted(now.items()) for toxic in toxics if toxic not in ref.get(proxy, [])]


RULES = {"network_policies": _objects_rule("NetworkPolicy", "network_policies"),
         "network_chaos": _objects_rule("NetworkChaos", "network_chaos"),
         "statefulsets": statefulsets_rule, "configmap": configmap_rule, "toxiproxy": toxiproxy_rule,
         "pods": pods_rule}


def _none(item: Item) -> Item:
    return {}


def _statefulsets_at_rest(item: Item) -> Item:
    out = {}
    for name, s in item.items():
        before = s["annotations"].get(f"{LABEL_PREFIX}/replicas-before")
        replicas = int(before) if before and str(before).isdigit() else s["replicas"]
        start = s["annotations"].get(START_BEFORE)
        out[name] = {**s, "replicas": replicas, "start": int(start) if start and str(start).isdigit()
                     else s.get("start", 0), "annotations": {}}
    return out


def _configmap_at_rest(item: Item) -> Item:
    """No annotation of ours, and the key's value from before a change this library recorded on it."""
    sha = item.get("sha256")
    record = (item.get("annotations") or {}).get(f"{LABEL_PREFIX}/checkers-before")
    if record:
        try:
            sha = hashlib.sha256(str(json.loads(record)["value"]).encode()).hexdigest()
        except (ValueError, KeyError, TypeError):
            sha = None  # unreadable: the content cannot be back either
    return {**item, "sha256": sha, "annotations": {}}


def _pods_at_rest(item: Item) -> Item:
    return {group: {**g, "ready": sorted([*g["ready"], *g["not_ready"]]), "not_ready": []} for group, g in item.items()}


def _toxiproxy_at_rest(item: Item) -> Item:
    return {proxy: [] for proxy in item}


AT_REST = {"network_policies": _none, "network_chaos": _none, "statefulsets": _statefulsets_at_rest,
           "configmap": _configmap_at_rest, "toxiproxy": _toxiproxy_at_rest, "pods": _pods_at_rest}
LIBRARY_ITEMS = ("network_policies", "network_chaos", "statefulsets", "configmap", "toxiproxy")
"""Items whose leftovers only this library makes (a run refuses to start on them)."""
