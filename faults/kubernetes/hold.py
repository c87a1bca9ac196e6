"""Holding pods down for a ``duration`` on Kubernetes: scale their StatefulSet down, then back.

A controller recreates a deleted pod at once, so the faults that promise a down-time (``kill_replicas``
with ``graceful`` and ``duration``, ``stop_kafka_broker`` and ``fail_over_postgres(method=stop)`` with
``duration``, ``stop_clickhouse`` always) lower ``spec.replicas`` of the StatefulSet that owns the pods. One
patch records the count before in the annotation ``sql-audit-resilience/replicas-before``, which fault
holds it in ``sql-audit-resilience/held-by`` and until when in ``sql-audit-resilience/expires-at`` (the fault's
``duration``, else ``k8s_policy_max_age``, as a partition's policy: :mod:`faults.kubernetes.expiry`);
:func:`bring_back` puts the count back, drops the three and waits until the pods are Ready. It finds what to
bring back by that annotation (a StatefulSet held at 0 has no pod left to lead to it), so it is idempotent and
works for a runner that died. The residue audit names a
StatefulSet still annotated or at another count (:mod:`faults.kubernetes.residue`). ``python -m faults.cli
sweep`` brings back the sets whose hold expired (:func:`expired_hold`, :mod:`faults.kubernetes.sweep`), for a
runner killed with its watchdog.

A StatefulSet removes its highest ordinals first, so those can be held down by the count alone. Its lowest ordinal
is held down by moving the set's first ordinal (``spec.ordinals.start``) up by one with the count: a Patroni
leader is usually the set's first pod, and a scale-down alone would stop the replica instead. The start before is
recorded in ``sql-audit-resilience/ordinals-start-before`` and put back with the count. A pod in the middle is
refused, naming the pods a scale-down would take down too (:func:`hold_pod_down`). An operator that owns the StatefulSet
(Zalando's postgres-operator) may scale it back on its next sync; Strimzi's brokers are not a StatefulSet's
at all (StrimziPodSet) and are refused.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed

from faults.kubernetes import LABEL_PREFIX
from faults.kubernetes._pods import ordinal
from faults.kubernetes.client import Kube
from faults.kubernetes.expiry import EXPIRES, expired, expires_at

__all__ = ["BEFORE", "HELD_BY", "START_BEFORE", "bring_back", "expired_hold", "first_ordinal", "held", "hold_down",
           "hold_pod_down", "hold_set", "owning_statefulset", "restore"]

BEFORE = f"{LABEL_PREFIX}/replicas-before"
HELD_BY = f"{LABEL_PREFIX}/held-by"
START_BEFORE = f"{LABEL_PREFIX}/ordinals-start-before"


def owning_statefulset(pod: Any, what: str) -> str:
    """The name of the StatefulSet controlling ``pod``; ``ActivityFailed`` naming its owner otherwise."""
    owner = next((o for o in (pod.metadata.owner_references or []) if o.controller), None)
    if owner is None or owner.kind != "StatefulSet":
        by = f"{owner.kind} {owner.name}" if owner is not None else "no controller"
        raise ActivityFailed(f"{what}: a duration holds a pod down by scaling its StatefulSet, but pod "
                             f"{pod.metadata.namespace}/{pod.metadata.name} is owned by {by}; leave duration null "
                             "(the pod is deleted and its controller recreates it at once)")
    return str(owner.name)


def first_ordinal(sts: Any) -> int:
    """The StatefulSet's first ordinal (``spec.ordinals.start``, 0 when unset)."""
    return int((sts.spec.ordinals and sts.spec.ordinals.start) or 0)


def hold_set(kube: Kube, namespace: str, sts: Any, by: int, fault: str, what: str, *,
             duration: float | None, lowest: bool = False) -> int:
    """Scale StatefulSet ``sts`` (as just read) down by ``by`` replicas, recording the count before, ``fault`` and
    the expiry (``duration`` seconds from now, else ``k8s_policy_max_age``); with ``lowest``, its first ``by``
    ordinals go instead of its last (the first ordinal moves up, the start before recorded too).

    Refuses (nothing changed) a set already held or scaled by this library, or one with fewer than ``by``
    replicas. Returns the count before.
    """
    name = sts.metadata.name
    replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
    annotations = sts.metadata.annotations or {}
    if BEFORE in annotations:
        raise ActivityFailed(f"{what}: StatefulSet {namespace}/{name} is already scaled by this library "
                             f"({BEFORE}={annotations[BEFORE]}, {HELD_BY}={annotations.get(HELD_BY)}): restore it "
                             "first (`resilience cleanup`)")
    if by <= 0 or replicas < by:
        raise ActivityFailed(f"{what}: StatefulSet {namespace}/{name} has {replicas} replica(s): nothing to hold "
                             f"down by {by}")
    until = expires_at(duration, kube.settings.policy_max_age)
    annotations = {BEFORE: str(replicas), HELD_BY: fault, EXPIRES: until}
    spec: dict[str, Any] = {"replicas": replicas - by}
    if lowest:
        start = first_ordinal(sts)
        annotations[START_BEFORE] = str(start)
        spec["ordinals"] = {"start": start + by}
    kube.patch_statefulset(namespace, name, {"metadata": {"annotations": annotations}, "spec": spec})
    return replicas


def hold_down(kube: Kube, namespace: str, name: str, by: int, fault: str, what: str, *,
              duration: float | None) -> int:
    """:func:`hold_set` of StatefulSet ``namespace/name`` (its highest ``by`` ordinals); the count before."""
    return hold_set(kube, namespace, kube.read_statefulset(namespace, name), by, fault, what, duration=duration)


def hold_pod_down(kube: Kube, namespace: str, pod: Any, fault: str, what: str, *,
                  duration: float | None) -> tuple[str, int]:
    """Hold ``pod`` down by scaling its StatefulSet down by one: its last ordinal by the count, its first by the
    count and the first ordinal; refused for a pod in between (naming the pods a scale-down would stop too).
    ``(StatefulSet name, count before)``."""
    name = owning_statefulset(pod, what)
    sts = kube.read_statefulset(namespace, name)
    replicas, index, start = sts.spec.replicas or 0, ordinal(pod) or 0, first_ordinal(sts)
    last = start + replicas - 1
    if index == last:
        return name, hold_set(kube, namespace, sts, 1, fault, what, duration=duration)
    if index == start and replicas > 1:
        return name, hold_set(kube, namespace, sts, 1, fault, what, duration=duration, lowest=True)
    also = ", ".join(f"{name}-{i}" for i in range(index + 1, last + 1))
    raise ActivityFailed(f"{what}: with a duration, a StatefulSet holds down only its first or last ordinal "
                         f"({name}-{start} or {name}-{last} of {replicas}); holding {pod.metadata.name} down would "
                         f"stop {also} too: choose one of those, or leave duration null")


def held(kube: Kube, namespace: str, fault: str | None = None) -> list[Any]:
    """The StatefulSets of ``namespace`` that ``fault`` holds down (its ``held-by`` annotation); with ``None``,
    every one this library scaled (``replicas-before``, a scale-out's too)."""
    return [s for s in kube.list_statefulsets(namespace) if BEFORE in (a := s.metadata.annotations or {})
            and (fault is None or a.get(HELD_BY) == fault)]


def expired_hold(sts: Any, now: float) -> bool:
    """Whether ``sts`` is held down by a fault (``replicas-before`` and ``held-by``) whose expiry has passed at
    ``now``. A hold without an expiry (written before holds had one) or a scale of ``scale_replicas`` (no
    ``held-by``) never is."""
    annotations = sts.metadata.annotations or {}
    return BEFORE in annotations and HELD_BY in annotations and expired(annotations, now)


def restore(kube: Kube, namespace: str, sts: Any, selector: str | None, what: str) -> int:
    """Scale ``sts`` (held: it has the ``replicas-before`` annotation) back to its recorded count and drop the
    annotations, then wait until that many pods matching ``selector`` are Ready (``None``: no wait, the sweeper's
    way: the next run's restore waits). Returns the count."""
    name, recorded = sts.metadata.name, sts.metadata.annotations[BEFORE]
    try:
        count = int(recorded)
    except ValueError:
        raise ActivityFailed(f"{what}: annotation {BEFORE}={recorded!r} on StatefulSet {namespace}/{name} is "
                             "not a replica count; set spec.replicas by hand and remove the annotation") from None
    spec: dict[str, Any] = {"replicas": count}
    dropped: dict[str, None] = {BEFORE: None, HELD_BY: None, EXPIRES: None}
    start = sts.metadata.annotations.get(START_BEFORE)
    if start is not None:  # the set's first ordinal was held down: put its start back too
        if not start.isdigit():
            raise ActivityFailed(f"{what}: annotation {START_BEFORE}={start!r} on StatefulSet {namespace}/{name} is "
                                 "not an ordinal; set spec.ordinals.start by hand and remove the annotation")
        spec["ordinals"] = {"start": int(start)}
        dropped[START_BEFORE] = None
    kube.patch_statefulset(namespace, name, {"metadata": {"annotations": dropped}, "spec": spec})
    if not kube.dry_run and selector is not None:
        kube.wait_pods_ready(namespace, selector, count)
    return count


def bring_back(kube: Kube, namespace: str, fault: str, selector: str, what: str) -> dict[str, int]:
    """:func:`restore` every StatefulSet ``fault`` holds in ``namespace``; ``{name: replicas}`` of what it
    brought back, empty when nothing was held."""
    return {sts.metadata.name: restore(kube, namespace, sts, selector, what) for sts in held(kube, namespace, fault)}
