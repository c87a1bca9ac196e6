"""Holding pods down for a ``duration`` on Kubernetes: scale their StatefulSet down, then back.

A controller recreates a deleted pod at once, so the faults that promise a down-time (``kill_replicas``
with ``graceful`` and ``duration``, ``stop_kafka_broker`` and ``fail_over_postgres(method=stop)`` with
``duration``, ``stop_clickhouse`` always) lower ``spec.replicas`` of the StatefulSet that owns the pods. One
patch records the count before in the annotation ``sql-audit-resilience/replicas-before`` and which fault
holds it in ``sql-audit-resilience/held-by``; :func:`bring_back` puts the count back, drops both and waits
until the pods are Ready. It finds what to bring back by that annotation (a StatefulSet held at 0 has no pod
left to lead to it), so it is idempotent and works for a runner that died. The residue audit names a
StatefulSet still annotated or at another count (:mod:`faults.kubernetes.residue`).

A StatefulSet removes its highest ordinals first, so only those can be held down: a lower one is refused,
naming the pods it would take down too (:func:`highest_ordinals`). An operator that owns the StatefulSet
(Zalando's postgres-operator) may scale it back on its next sync; Strimzi's brokers are not a StatefulSet's
at all (StrimziPodSet) and are refused.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed

from faults.kubernetes import LABEL_PREFIX
from faults.kubernetes.client import Kube

__all__ = ["BEFORE", "HELD_BY", "bring_back", "held", "highest_ordinals", "hold_down", "owning_statefulset",
           "restore"]

BEFORE = f"{LABEL_PREFIX}/replicas-before"
HELD_BY = f"{LABEL_PREFIX}/held-by"


def owning_statefulset(pod: Any, what: str) -> str:
    """The name of the StatefulSet controlling ``pod``; ``ActivityFailed`` naming its owner otherwise."""
    owner = next((o for o in (pod.metadata.owner_references or []) if o.controller), None)
    if owner is None or owner.kind != "StatefulSet":
        by = f"{owner.kind} {owner.name}" if owner is not None else "no controller"
        raise ActivityFailed(f"{what}: a duration holds a pod down by scaling its StatefulSet, but pod "
                             f"{pod.metadata.namespace}/{pod.metadata.name} is owned by {by}; leave duration null "
                             "(the pod is deleted and its controller recreates it at once)")
    return str(owner.name)


def highest_ordinals(name: str, replicas: int, ordinals: list[int], what: str) -> None:
    """Refuse unless ``ordinals`` are the highest of StatefulSet ``name`` (what scaling it down removes)."""
    top = list(range(replicas - len(ordinals), replicas))
    if sorted(ordinals) != top:
        also = sorted(set(range(min(ordinals), replicas)) - set(ordinals)) if ordinals else []
        pods = ", ".join(f"{name}-{i}" for i in also)
        raise ActivityFailed(f"{what}: with a duration, a StatefulSet holds down only its highest ordinals "
                             f"({', '.join(f'{name}-{i}' for i in top)} of {replicas}); holding "
                             f"{', '.join(f'{name}-{i}' for i in sorted(ordinals))} down would stop {pods} too: "
                             "choose the highest, or leave duration null")


def hold_down(kube: Kube, namespace: str, name: str, to: int, fault: str, what: str) -> int:
    """Scale StatefulSet ``namespace/name`` to ``to`` replicas, recording the count before and ``fault``.

    Refuses (nothing changed) a set already held or scaled by this library, or one already at ``to`` or below.
    Returns the count before.
    """
    sts = kube.read_statefulset(namespace, name)
    replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
    annotations = sts.metadata.annotations or {}
    if BEFORE in annotations:
        raise ActivityFailed(f"{what}: StatefulSet {namespace}/{name} is already scaled by this library "
                             f"({BEFORE}={annotations[BEFORE]}, {HELD_BY}={annotations.get(HELD_BY)}): restore it "
                             "first (`resilience cleanup`)")
    if replicas <= to:
        raise ActivityFailed(f"{what}: StatefulSet {namespace}/{name} has {replicas} replica(s): nothing to hold "
                             f"down to {to}")
    kube.patch_statefulset(namespace, name, {"metadata": {"annotations": {BEFORE: str(replicas), HELD_BY: fault}},
                                             "spec": {"replicas": to}})
    return replicas


def held(kube: Kube, namespace: str, fault: str | None = None) -> list[Any]:
    """The StatefulSets of ``namespace`` that ``fault`` holds down (its ``held-by`` annotation); with ``None``,
    every one this library scaled (``replicas-before``, a scale-out's too)."""
    return [s for s in kube.list_statefulsets(namespace) if BEFORE in (a := s.metadata.annotations or {})
            and (fault is None or a.get(HELD_BY) == fault)]


def restore(kube: Kube, namespace: str, sts: Any, selector: str, what: str) -> int:
    """Scale ``sts`` (held: it has the ``replicas-before`` annotation) back to its recorded count and drop the
    annotations, then wait until that many pods matching ``selector`` are Ready. Returns the count."""
    name, recorded = sts.metadata.name, sts.metadata.annotations[BEFORE]
    try:
        count = int(recorded)
    except ValueError:
        raise ActivityFailed(f"{what}: annotation {BEFORE}={recorded!r} on StatefulSet {namespace}/{name} is "
                             "not a replica count; set spec.replicas by hand and remove the annotation") from None
    kube.patch_statefulset(namespace, name, {"metadata": {"annotations": {BEFORE: None, HELD_BY: None}},
                                             "spec": {"replicas": count}})
    if not kube.dry_run:
        kube.wait_pods_ready(namespace, selector, count)
    return count


def bring_back(kube: Kube, namespace: str, fault: str, selector: str, what: str) -> dict[str, int]:
    """:func:`restore` every StatefulSet ``fault`` holds in ``namespace``; ``{name: replicas}`` of what it
    brought back, empty when nothing was held."""
    return {sts.metadata.name: restore(kube, namespace, sts, selector, what) for sts in held(kube, namespace, fault)}
