"""Kubernetes backend of :mod:`faults.postgres_failover`: take the Patroni leader away.

The leader is the one pod matching ``k8s_postgres_leader_selector`` (Patroni's Kubernetes
labels; default ``app=postgres,role in (primary,master)``) in ``k8s_postgres_namespace``.

* ``stop``: delete the leader pod with its grace period (PostgreSQL shuts down, Patroni's
  leader key expires and a replica is promoted; the StatefulSet recreates the pod as a replica);
* ``kill``: the same with grace period 0 (a crash);
* ``switchover``: ``patronictl switchover --force`` run in the leader's container
  (``k8s_patronictl``, e.g. ``patronictl -c /home/postgres/postgres.yml``), through pods/exec.

``stop`` with ``duration`` holds the leader down instead: its StatefulSet is scaled down by one and back
when the duration ends (:mod:`faults.kubernetes.hold`), so the leader must be the set's first or last ordinal
(a single PostgreSQL pod is: the whole database is down for the duration; with Patroni's two members either
is, and the replica is promoted meanwhile; a first ordinal is held by moving ``spec.ordinals.start``).
``restore_postgres`` scales a held set back, then waits until a leader pod is Ready.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.wait import wait_until
from faults.kubernetes.client import Kube, is_ready
from faults.kubernetes.hold import bring_back, held, hold_pod_down

FAULT = "postgres_failover"


def _leaders(kube: Kube) -> list[Any]:
    """The pods matching ``k8s_postgres_leader_selector`` that are not being deleted."""
    ns, selector = kube.settings.edges["postgres"].namespace, kube.settings.postgres_leader_selector
    return [p for p in kube.list_pods(ns, selector) if p.metadata.deletion_timestamp is None]


def _leader(kube: Kube, what: str) -> Any:
    ns = kube.settings.edges["postgres"].namespace
    selector = kube.settings.postgres_leader_selector
    leaders = _leaders(kube)
    if len(leaders) != 1:
        raise ActivityFailed(f"{what}: expected one leader pod matching k8s_postgres_leader_selector {selector!r} "
                             f"in {ns}, found {[p.metadata.name for p in leaders]} on {kube.where}")
    return leaders[0]


def _new_leader(kube: Kube, old: str, what: str, said: str) -> str:
    """The leader pod once it is another than ``old`` (bounded by ``k8s_ready_timeout``)."""
    def other() -> str | None:
        names = [p.metadata.name for p in _leaders(kube)]
        return names[0] if len(names) == 1 and names[0] != old else None

    return wait_until(other, kube.settings.ready_timeout, 0.5,
                      f"{what}: the leader pod is still {old} (or none) {kube.settings.ready_timeout:g} s after "
                      f"patronictl said {said.strip()[-300:]!r}: the switchover did not take effect",
                      error=ActivityFailed)


def fail_over_postgres(method: str = "stop", duration: float | None = None,
                       configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.postgres_failover.fail_over_postgres`."""
    what = f"fail over postgres ({method})"
    with Kube(configuration, what) as kube:
        ns = kube.settings.edges["postgres"].namespace
        leader = _leader(kube, what)
        name = leader.metadata.name
        if not is_ready(leader):
            raise ActivityFailed(f"{what}: leader pod {name} is not Ready; refusing to fail over a sick cluster")
        if method == "switchover":
            command = [*kube.settings.patronictl, "switchover", "--force"]
            code, out, err = kube.exec(ns, name, kube.settings.postgres_container, command, write=True)
            # patronictl exits 0 when Patroni refuses (e.g. "Switchover failed, details: 412, ... no good
            # candidates": a synchronous standby not assigned yet), so success is the leader pod changing.
            if code != 0 or "failed" in out.lower():
                raise ActivityFailed(f"{what}: {' '.join(command)} in {ns}/{name} exited {code}: "
                                     f"{(err or out).strip()[-500:]}")
            if not kube.dry_run:
                new = _new_leader(kube, name, what, out)
                changed = f"patronictl switchover from {name} to {new}"
            else:
                changed = f"patronictl switchover away from {name}"
        elif duration is not None:
            sts, replicas = hold_pod_down(kube, ns, leader, FAULT, what, duration=duration)
            changed = f"scaled StatefulSet {sts} from {replicas} to {replicas - 1}: leader pod {name} held down"
        else:
            kube.delete_pod(ns, name, 0 if method == "kill" else None, uid=leader.metadata.uid)
            changed = f"deleted leader pod {name} ({'grace period 0' if method == 'kill' else 'graceful'})"
        if kube.dry_run:
            return {"would": changed, "requests": kube.requests}
        return {"method": method, "namespace": ns, "old_leader": name, "requests": kube.requests, "changed": changed}


def restore_postgres(configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.postgres_failover.restore_postgres`: wait for a Ready leader."""
    what = "restore postgres"
    with Kube(configuration, what) as kube:
        edge = kube.settings.edges["postgres"]
        ns, selector = edge.namespace, kube.settings.postgres_leader_selector
        if kube.dry_run and (holding := [h.metadata.name for h in held(kube, ns, FAULT)]):
            return {"would": f"scale StatefulSet(s) {holding} in {ns} back, then wait for a Ready leader",
                    "requests": kube.requests}
        back = bring_back(kube, ns, FAULT, edge.selector or selector, what)
        ready = [p.metadata.name for p in kube.list_pods(ns, selector) if is_ready(p)]
        if ready and back:
            return {"leader": ready, "namespace": ns,
                    "changed": f"scaled {', '.join(f'{k} back to {v}' for k, v in back.items())}; leader {ready}"}
        if ready:
            return {"leader": ready, "changed": "leader was Ready", "would": "nothing"}
        if kube.dry_run:
            return {"would": f"wait until a pod matching {selector!r} in {ns} is Ready", "requests": kube.requests}
        leader = kube.wait_pods_ready(ns, selector, 1)
        return {"leader": leader, "namespace": ns, "changed": f"waited for leader {leader}"}
