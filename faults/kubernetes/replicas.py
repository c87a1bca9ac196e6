"""Kubernetes backend of :mod:`faults.replicas`: delete audit-service pods, within a blast radius.

``group`` ``audit-service`` means the pods matching ``k8s_service_selector`` in ``k8s_namespace``;
any other group must itself be a label selector (``app=x``). ``graceful=false`` deletes with
grace period 0 (the kubelet SIGKILLs the containers, like a crash); ``graceful=true`` uses the
pod's own ``terminationGracePeriodSeconds`` (SIGTERM first). The controller (StatefulSet or
Deployment) recreates the pods; ``restore_replicas`` waits until ``k8s_expected_replicas`` are Ready.

With ``duration`` (graceful only, as on the local target) the pods stay down: the StatefulSet
``k8s_service_statefulset`` is scaled down by ``count`` and back when the duration ends
(:mod:`faults.kubernetes.hold`), so the victims are its highest ordinals, not a random choice
(``percentage: 100`` holds every pod down: the whole service lost). ``restore_replicas`` scales it back.
"""

import random
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.blast_radius import how_many
from faults.kubernetes._pods import ordinal
from faults.kubernetes.client import Kube, is_ready
from faults.kubernetes.hold import bring_back, hold_down, owning_statefulset
from target.kubernetes import KubeSettings

FAULT = "replicas"


def selector_of(settings: KubeSettings, group: str, what: str) -> str:
    """The label selector of ``group``: the service's for ``audit-service``, else ``group`` itself."""
    if group == "audit-service":
        return settings.service_selector
    if "=" in group or " in " in group:
        return group
    raise ActivityFailed(f"{what}: unknown group {group!r} on kubernetes: use audit-service or a label "
                         "selector such as app=sql-audit-service")


def members_of(kube: Kube, group: str, what: str) -> tuple[str, str, list[Any]]:
    """``(namespace, selector, pods)`` of ``group``: its pods not being deleted; ``ActivityFailed`` when none."""
    ns = kube.settings.namespace
    selector = selector_of(kube.settings, group, what)
    members = [p for p in kube.list_pods(ns, selector) if p.metadata.deletion_timestamp is None]
    if not members:
        raise ActivityFailed(f"{what}: no pod matches {selector!r} in namespace {ns} on {kube.where}")
    return ns, selector, members


def kill_replicas(count: int | None = None, percentage: float | None = None, graceful: bool = False,
                  group: str = "audit-service", allow_all: bool = False, duration: float | None = None,
                  configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.replicas.kill_replicas`."""
    what = f"kill replicas of {group}"
    with Kube(configuration, what) as kube:
        ns, _, members = members_of(kube, group, what)
        n = how_many(count, percentage, len(members))
        ready = [p for p in members if is_ready(p)]
        names = [p.metadata.name for p in ready]
        limit = len(members) - 1
        if kube.base.max_replicas_killed is not None:
            limit = min(limit, kube.base.max_replicas_killed)
        if not allow_all:
            if n > limit:
                raise ActivityFailed(f"{what}: blast radius: {n} of {len(members)} pods exceeds the limit of "
                                     f"{limit} (all but one, capped by max_replicas_killed); pass allow_all=true "
                                     "to kill more")
            if len(ready) - n < 1:
                raise ActivityFailed(f"{what}: blast radius: only {len(ready)} of {len(members)} pods are Ready "
                                     f"({names}); killing {n} would leave none; pass allow_all=true to do it anyway")
        if n > len(ready):
            raise ActivityFailed(f"{what}: {n} requested but only {len(ready)} pods Ready: {names}")
        if duration is not None:
            return _hold(kube, members, n, ready, group, duration, what)
        grace = None if graceful else 0
        victims = sorted(random.sample(ready, n), key=lambda p: p.metadata.name)
        for pod in victims:
            kube.delete_pod(ns, pod.metadata.name, grace, uid=pod.metadata.uid)
        how = "graceful delete" if graceful else "delete with grace period 0 (SIGKILL)"
        killed = [p.metadata.name for p in victims]
        if kube.dry_run:
            return {"would": f"{how} {n} of Ready pods {names} in {ns} (chosen at random when applied; "
                             f"this time: {killed})", "requests": kube.requests, "group": group}
        return {"group": group, "namespace": ns, "killed": killed, "uids": [p.metadata.uid for p in victims],
                "of": len(members), "requests": kube.requests, "changed": f"{how} {', '.join(killed)}"}


def _hold(kube: Kube, members: list[Any], n: int, ready: list[Any], group: str, duration: float,
          what: str) -> dict[str, Any]:
    """Hold the ``n`` highest-ordinal pods down by scaling the service's StatefulSet (``duration`` given)."""
    ns, name = kube.settings.namespace, kube.settings.service_statefulset
    if group != "audit-service":
        raise ActivityFailed(f"{what}: a duration on kubernetes holds pods down by scaling StatefulSet {name} "
                             f"(k8s_service_statefulset), so it needs group audit-service, not {group!r}")
    owners = {owning_statefulset(p, what) for p in members}
    if owners != {name}:
        raise ActivityFailed(f"{what}: pods matching {kube.settings.service_selector!r} belong to StatefulSet(s) "
                             f"{sorted(owners)}, not {name} (k8s_service_statefulset)")
    replicas = hold_down(kube, ns, name, n, FAULT, what, duration=duration)
    victims = [p for p in members if (ordinal(p) or 0) >= replicas - n]  # what scaling down removes
    killed = [p.metadata.name for p in victims]
    if kube.dry_run:
        return {"would": f"scale StatefulSet {ns}/{name} from {replicas} to {replicas - n} (holds {killed} down "
                         f"until restored; Ready now: {[p.metadata.name for p in ready]})",
                "requests": kube.requests, "group": group}
    return {"group": group, "namespace": ns, "killed": killed, "of": len(members), "statefulset": name,
            "replicas_before": replicas, "requests": kube.requests,
            "changed": f"scaled {name} from {replicas} to {replicas - n}: {', '.join(killed)} held down"}


def restore_replicas(group: str = "audit-service", configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.replicas.restore_replicas`: wait for the controller's pods."""
    what = f"restore replicas of {group}"
    with Kube(configuration, what) as kube:
        ns = kube.settings.namespace
        selector = selector_of(kube.settings, group, what)
        expected = kube.settings.expected_replicas
        if kube.dry_run:
            pods = kube.list_pods(ns, selector)
            return {"would": f"wait until {expected} pods matching {selector!r} in {ns} are Ready (now "
                             f"{sum(map(is_ready, pods))}); the controller recreates them, nothing is sent",
                    "group": group, "requests": kube.requests}
        back = bring_back(kube, ns, FAULT, selector, what)
        before = [p.metadata.name for p in kube.list_pods(ns, selector) if is_ready(p)]
        ready = kube.wait_pods_ready(ns, selector, expected)
        if back:
            return {"group": group, "namespace": ns, "ready": ready,
                    "changed": f"scaled {', '.join(f'{k} back to {v}' for k, v in back.items())}"}
        return {"group": group, "namespace": ns, "ready": ready,
                "changed": "all were Ready" if len(before) >= expected else f"waited for {expected} Ready: {ready}"}
