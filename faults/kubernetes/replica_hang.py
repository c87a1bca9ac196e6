"""Kubernetes backend of :mod:`faults.replica_hang`: freeze the service container of pods (SIGSTOP through pods/exec).

Every process of the service container of the chosen Ready pods gets SIGSTOP (:mod:`.container`): the pod keeps
its IP, its port accepts connections, nothing answers, and only the kubelet's liveness probe restarts the
container. The pods must share their process namespace (``shareProcessNamespace: true``) or run the service
under an init: a container whose process is PID 1 of its own namespace cannot be stopped from inside the pod,
and the fault says so before it stops anything.

Each hung pod is journaled with its container's ID and the stopped pid and start time. The remove sends
SIGCONT only while the pod runs that same container (a liveness restart gives it a new container ID: left
alone, reported in ``details.restarted``), and to any process of a service pod stopped now (a hang whose
journal entry was lost): idempotent, and it never signals a stranger.
"""

import random
from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import journal
from faults.blast_radius import check_blast_radius, how_many
from faults.kubernetes.client import Kube, is_ready
from faults.kubernetes.container import Proc, container_of, pid1_refusal, processes
from faults.kubernetes.replicas import members_of, selector_of

FAULT = "replica_hang"


def hang_replicas(count: int | None = None, percentage: float | None = None, group: str = "audit-service",
                  allow_all: bool = False, duration: float | None = None,
                  configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.replica_hang.hang_replicas`."""
    what = f"hang replicas of {group}"
    with Kube(configuration, what) as kube:
        ns, _, members = members_of(kube, group, what)
        n = how_many(count, percentage, len(members))
        answering: dict[str, tuple[Any, str, Any, list[Proc]]] = {}  # pod, container, its status, processes
        for pod in members:
            if not is_ready(pod):
                continue
            container, status = container_of(kube, pod, what)
            procs = processes(kube, pod, container, "LIST", what, write=False)
            if any(p.pid == 1 for p in procs):
                raise pid1_refusal(what, pod, container)
            if procs and not any(p.state == "T" for p in procs):
                answering[pod.metadata.name] = (pod, container, status, procs)
        check_blast_radius(what, n, len(members), list(answering), kube.base.max_replicas_killed, allow_all, "hang",
                           state="Ready and not stopped")
        victims = sorted(random.sample(sorted(answering), n))
        if kube.dry_run:
            for name in victims:
                pod, container, _, _ = answering[name]
                processes(kube, pod, container, "STOP", what, write=True)
            return {"would": f"SIGSTOP every process of the service container of {n} of {sorted(answering)} "
                             f"(chosen at random when applied; this time {victims})", "requests": kube.requests,
                    "group": group}
        pids, starts, containers, stopped = {}, {}, {}, {}
        for name in victims:
            pod, container, status, listed = answering[name]
            main = min(listed, key=lambda p: (p.start, p.pid))  # the container's first process: its command
            done = processes(kube, pod, container, "STOP", what, write=True)
            pids[name], starts[name] = main.pid, main.start
            containers[name] = status.container_id
            stopped[name] = [p.pid for p in done]
        return {"group": group, "namespace": ns, "hung": victims, "pids": pids, "starts": starts,
                "containers": containers, "stopped": stopped, "of": len(members), "requests": kube.requests,
                "changed": "SIGSTOP " + ", ".join(f"{name} (pids {stopped[name]})" for name in victims)}


def _recorded(kube: Kube, group: str) -> dict[str, str]:
    """Pod -> container ID of every pod an open hang of ``group`` on this cluster stopped."""
    found: dict[str, str] = {}
    for _, entry in journal.open_entries(kube.base.fault_state_dir):
        details = entry.get("details") or {}
        if (entry.get("fault") == FAULT and journal.same_stack(entry, kube.base)
                and (entry.get("parameters") or {}).get("group") == group):
            found.update({str(k): str(v) for k, v in (details.get("containers") or {}).items()})
    return found


def resume_replicas(group: str = "audit-service", configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.replica_hang.resume_replicas`."""
    what = f"resume replicas of {group}"
    with Kube(configuration, what) as kube:
        ns = kube.settings.namespace
        selector = selector_of(kube.settings, group, what)
        recorded = _recorded(kube, group)
        resumed: dict[str, list[int]] = {}
        restarted: list[str] = []
        for pod in kube.list_pods(ns, selector):
            name = pod.metadata.name
            container, status = container_of(kube, pod, what)
            if status is None or status.state is None or status.state.running is None:
                if name in recorded:
                    restarted.append(name)  # its hung container is gone; the new one is not running yet
                continue
            if name in recorded and status.container_id != recorded[name]:
                restarted.append(name)  # the liveness probe (or someone) restarted it: not ours to signal
                continue
            listed = processes(kube, pod, container, "LIST", what, write=False)
            if not any(p.state == "T" for p in listed):
                continue
            done = processes(kube, pod, container, "CONT", what, write=True)
            resumed[name] = [p.pid for p in done] or [p.pid for p in listed if p.state == "T"]
        if kube.dry_run:
            return {"would": f"SIGCONT the stopped processes of {sorted(resumed)}" if resumed else
                    "nothing (not hung)", "group": group, "requests": kube.requests}
        said = ", ".join(f"{k} (pids {v})" for k, v in sorted(resumed.items()))
        changed = ([f"SIGCONT {said}"] if resumed else []) + (
            [f"{', '.join(sorted(restarted))} restarted meanwhile (a new container): not signalled"]
            if restarted else [])
        return {"group": group, "namespace": ns, "resumed": sorted({p for v in resumed.values() for p in v}),
                "resumed_replicas": sorted(resumed), "restarted": sorted(set(restarted)),
                "requests": kube.requests, "changed": "; ".join(changed) or "not hung"}
