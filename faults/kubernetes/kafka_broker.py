"""Kubernetes backend of :mod:`faults.kafka_broker`: delete one Kafka broker pod; its controller recreates it.

The brokers are the pods matching ``k8s_kafka_selector`` in ``k8s_kafka_namespace``; ``broker`` is
a pod's ordinal (``kafka-1`` is broker 1: the trailing ``-<n>`` of its name, as StatefulSets and
Strimzi name them), ``null`` picks a Ready one at random. ``graceful=true`` deletes it with its own
grace period (SIGTERM: a controlled shutdown moves partition leadership first), ``false`` with grace
period 0 (the kubelet SIGKILLs it: leadership moves when the controller notices the lost session).
A ``uid`` precondition makes sure a pod recreated meanwhile is never hit.

How many brokers there should be is ``k8s_kafka_brokers``, else the ``spec.replicas`` of the
StatefulSet(s) owning the broker pods. Blast radius: one broker per call, and only when every
broker is Ready (a second broker down at once could take partitions offline), and only a pod a
controller owns (a bare pod would be gone for good). ``start_kafka_broker`` waits, bounded by
``k8s_ready_timeout``, until that many broker pods (and broker ``broker``) are Ready again.

With ``duration`` the broker stays down: its StatefulSet is scaled down by one and back when the
duration ends (:mod:`faults.kubernetes.hold`), so the broker must be the set's first or last ordinal
(``broker: null`` picks the last); brokers not owned by a StatefulSet (Strimzi's StrimziPodSets) are
refused. Without it the pod is deleted and recreated at once, so the outage lasts as long as the broker
takes to shut down and start again. ``start_kafka_broker`` scales a held set back first.
"""

import random
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.wait import wait_until
from faults.kubernetes._pods import ordinal, with_ordinal
from faults.kubernetes.client import Kube, is_ready
from faults.kubernetes.hold import bring_back, held, hold_pod_down
from target.kubernetes import Edge

FAULT = "kafka_broker"


def _edge(kube: Kube, what: str) -> Edge:
    edge = kube.settings.edges["kafka"]
    if not edge.selector:
        raise ActivityFailed(f"{what}: k8s_kafka_selector is empty (Kafka given only as k8s_kafka_cidrs): "
                             "no broker pods to act on")
    return edge


def _controller(pod: Any) -> Any | None:
    return next((o for o in (pod.metadata.owner_references or []) if o.controller), None)


def expected_brokers(kube: Kube, edge: Edge, pods: list[Any], cache: dict[str, int]) -> tuple[int | None, str]:
    """``(count, source)``: how many broker pods there should be, or ``(None, why it is unknown)``.

    ``k8s_kafka_brokers`` when set, else the sum of ``spec.replicas`` of the StatefulSets owning
    ``pods`` (read once per call into ``cache``).
    """
    if kube.settings.kafka_brokers is not None:
        return kube.settings.kafka_brokers, "k8s_kafka_brokers"
    owners = {(o.kind, o.name) for p in pods if (o := _controller(p)) is not None}
    others = sorted(f"{kind} {name}" for kind, name in owners if kind != "StatefulSet")
    if others:
        return None, (f"broker pods are owned by {', '.join(others)}, not a StatefulSet: set k8s_kafka_brokers "
                      "(how many broker pods there should be), or narrow k8s_kafka_selector to the brokers")
    if not owners:
        return None, ("no broker pod owned by a StatefulSet is visible: set k8s_kafka_brokers (how many broker "
                      "pods there should be)")
    for _, name in sorted(owners):
        if name not in cache:
            cache[name] = kube.read_statefulset(edge.namespace, name).spec.replicas or 0
    return sum(cache[name] for _, name in owners), f"replicas of StatefulSet {', '.join(sorted(n for _, n in owners))}"


def stop_kafka_broker(broker: int | None = None, duration: float | None = None, graceful: bool = True,
                      configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.kafka_broker.stop_kafka_broker`."""
    what = f"{'stop' if graceful else 'kill'} Kafka broker {broker if broker is not None else '(any)'}"
    with Kube(configuration, what) as kube:
        edge = _edge(kube, what)
        ns, selector = edge.namespace, edge.selector
        where = f"k8s_kafka_selector {selector!r} in namespace {ns} on {kube.where}"
        pods = [p for p in kube.list_pods(ns, selector) if p.metadata.deletion_timestamp is None]
        if not pods:
            raise ActivityFailed(f"{what}: no broker pod matches {where}")
        expected, source = expected_brokers(kube, edge, pods, {})
        if expected is None:
            raise ActivityFailed(f"{what}: {source} ({where})")
        ready = [p for p in pods if is_ready(p)]
        names = [p.metadata.name for p in pods]
        if len(ready) < expected:
            raise ActivityFailed(f"{what}: blast radius: only {len(ready)} of {expected} broker pods ({source}) are "
                                 f"Ready ({[p.metadata.name for p in ready]} of {names}, {where}); a broker is down "
                                 "already and stopping another could take partitions offline")
        if duration is not None:
            return _hold(kube, ns, broker, pods, ready, expected, where, duration, what)
        if broker is None:
            owned = [p for p in ready if _controller(p) is not None]
            victim = random.choice(owned or ready)  # none owned: refused below, naming one of them
        else:
            victim = with_ordinal(pods, broker, "broker", where, what)
            if not is_ready(victim):
                raise ActivityFailed(f"{what}: broker pod {ns}/{victim.metadata.name} is not Ready")
        name = victim.metadata.name
        owner = _controller(victim)
        if owner is None:
            raise ActivityFailed(f"{what}: broker pod {ns}/{name} has no controller (ownerReferences): deleting it "
                                 "would lose the broker for good; refused")
        grace = None if graceful else 0
        how = "graceful delete (controlled shutdown)" if graceful else "delete with grace period 0 (SIGKILL)"
        kube.delete_pod(ns, name, grace, uid=victim.metadata.uid)
        only = " (the only broker: a full Kafka outage until it is back)" if expected == 1 else ""
        if kube.dry_run:
            chosen = "" if broker is not None else f" (chosen at random among Ready {names} when applied)"
            return {"would": f"{how} of broker pod {ns}/{name}{chosen}; {owner.kind} {owner.name} recreates it{only}",
                    "requests": kube.requests, "pod": name}
        return {"broker": ordinal(victim), "pod": name, "namespace": ns, "uid": victim.metadata.uid,
                "owner": f"{owner.kind}/{owner.name}", "of": expected, "requests": kube.requests,
                "changed": f"{how} of broker pod {name}{only}"}


def _hold(kube: Kube, ns: str, broker: int | None, pods: list[Any], ready: list[Any], expected: int, where: str,
          duration: float, what: str) -> dict[str, Any]:
    """Hold one broker down for a duration: scale its StatefulSet down by one (its first or last ordinal)."""
    if broker is None:
        victim = max(ready, key=lambda p: ordinal(p) or 0)
    else:
        victim = with_ordinal(pods, broker, "broker", where, what)
        if not is_ready(victim):
            raise ActivityFailed(f"{what}: broker pod {ns}/{victim.metadata.name} is not Ready")
    sts, replicas = hold_pod_down(kube, ns, victim, FAULT, what, duration=duration)
    name = victim.metadata.name
    only = " (the only broker: a full Kafka outage until it is back)" if expected == 1 else ""
    how = f"scale StatefulSet {ns}/{sts} from {replicas} to {replicas - 1}"
    if kube.dry_run:
        return {"would": f"{how}: broker pod {name} held down until restored{only}", "requests": kube.requests,
                "pod": name}
    return {"broker": ordinal(victim), "pod": name, "namespace": ns, "uid": victim.metadata.uid,
            "owner": f"StatefulSet/{sts}", "of": expected, "requests": kube.requests,
            "changed": f"{how}: broker pod {name} held down{only}"}


def start_kafka_broker(broker: int | None = None, configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.kafka_broker.start_kafka_broker`: wait for Ready broker pods."""
    what = f"start Kafka broker {broker if broker is not None else '(all)'}"
    with Kube(configuration, what) as kube:
        edge = _edge(kube, what)
        ns, selector = edge.namespace, edge.selector
        where = f"k8s_kafka_selector {selector!r} in namespace {ns} on {kube.where}"
        timeout = kube.settings.ready_timeout
        cache: dict[str, int] = {}
        seen: dict[str, Any] = {}

        def all_ready() -> bool:
            pods = [p for p in kube.list_pods(ns, selector) if p.metadata.deletion_timestamp is None]
            ready = sorted(p.metadata.name for p in pods if is_ready(p))
            expected, source = expected_brokers(kube, edge, pods, cache) if pods else (None, "no broker pod yet")
            seen.update(ready=ready, source=source, expected="?" if expected is None else expected)
            if expected is None and pods:
                raise ActivityFailed(f"{what}: {source} ({where})")  # waiting would not tell either
            if expected is None or len(ready) < expected:
                return False
            if broker is not None and not any(ordinal(p) == broker for p in pods if is_ready(p)):
                raise ActivityFailed(f"{what}: no broker pod with ordinal {broker} (Ready brokers: {ready}; {where})")
            return True

        if kube.dry_run and (holding := [h.metadata.name for h in held(kube, ns, FAULT)]):
            return {"would": f"scale StatefulSet(s) {holding} in {ns} back, then wait for their broker pods",
                    "requests": kube.requests}
        back = bring_back(kube, ns, FAULT, selector, what)  # before counting: a held set's spec.replicas is low
        if all_ready():
            if back:
                return {"ready": seen["ready"], "namespace": ns,
                        "changed": f"scaled {', '.join(f'{k} back to {v}' for k, v in back.items())}: "
                                   f"{seen['ready']} Ready"}
            return {"ready": seen["ready"], "changed": f"all {seen['expected']} broker pods were Ready",
                    "would": "nothing"}
        if kube.dry_run:
            return {"would": f"wait until {seen['expected']} broker pods ({seen['source']}) matching {where} are "
                             f"Ready (now {len(seen['ready'])}: {seen['ready']}); their controller recreates them, "
                             "nothing is sent", "requests": kube.requests}
        wait_until(all_ready, timeout, 1.0,
                   lambda: f"{what}: only {len(seen['ready'])} of {seen['expected']} broker pods Ready "
                           f"({seen['source']}; Ready: {seen['ready']}) after {timeout:g} s (k8s_ready_timeout); "
                           f"{where}", error=ActivityFailed)
        return {"ready": seen["ready"], "namespace": ns,
                "changed": f"waited for {seen['expected']} Ready broker pods: {seen['ready']}"}
