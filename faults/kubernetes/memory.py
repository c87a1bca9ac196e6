"""Kubernetes backend of :mod:`faults.memory`: a real kernel OOM kill of a pod's service container.

The limit is the container's own ``resources.limits.memory`` (``limit_mb`` is the local backend's: a pod
already has its limit, and the fault changes no spec). Holders of ours, exec'd into the container, fill its
memory cgroup: each keeps a block of zeros in ``tail``'s buffer (``{ head -c N /dev/zero; sleep S; } | tail``)
and each block is half the service's resident memory, so when the cgroup is full the service is the largest
process in it and the kernel's OOM killer kills it — what happens to a pod over its limit under real memory
pressure, Python or JVM alike, with nothing of the service asked to allocate. The kubelet restarts the container
and reports ``OOMKilled``, which the fault waits for (else it fails: the fault did not bite).

When the service dies its container goes, and the holders with it (the kernel ends a PID namespace with its init;
with a shared process namespace the runtime kills the container's cgroup). Each holder also ends by itself after
:data:`HOLD_S` if nothing else ends it, and the remove kills any left in a service pod, found by the mark in
their command line.
"""

import math
import random
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes.utils.quantity import parse_quantity

from faults.kubernetes.client import Kube, is_ready
from faults.kubernetes.container import container_of, processes
from faults.kubernetes.replicas import members_of, selector_of

MARK = "sql-audit-resilience-oom"
"""In the command line of every holder's shell: what the remove looks for."""
HOLD_S = 60
"""A holder's own end: the longest it holds its block if neither the OOM kill nor the remove ends it."""
KILL_TIMEOUT_S = 45.0
"""How long the fault waits for the kubelet to report the container OOMKilled."""
MAX_HOLDERS = 400

FILL = r"""
block="$1"; n="$2"; hold="$3"; i=0
while [ "$i" -lt "$n" ]; do
  sh -c '{ head -c "$1" /dev/zero; sleep "$2"; } | tail' "$0" "$block" "$hold" </dev/null >/dev/null 2>&1 &
  i=$((i+1))
done
echo "started $n"
"""

SWEEP = r"""
mark="$1-$2"; me=$$; marked=""
for d in /proc/[0-9]*; do
  [ "${d#/proc/}" = "$me" ] && continue
  cat "$d/cmdline" 2>/dev/null | tr '\0' ' ' | grep -q -- "$mark" && marked="$marked ${d#/proc/}"
done
doomed="$marked"
for d in /proc/[0-9]*; do
  stat=$(cat "$d/stat" 2>/dev/null) || continue
  set -- ${stat##*) }
  for m in $marked; do [ "$2" = "$m" ] && doomed="$doomed ${d#/proc/}" && break; done
done
n=0
for p in $doomed; do kill -KILL "$p" 2>/dev/null && n=$((n+1)); done
echo "killed $n"
"""


def _limit_bytes(pod: Any, container: str, what: str) -> int:
    spec = next(c for c in pod.spec.containers if c.name == container)
    limit = ((spec.resources and spec.resources.limits) or {}).get("memory")
    if not limit:
        raise ActivityFailed(f"{what}: container {container!r} of {pod.metadata.namespace}/{pod.metadata.name} has no "
                             "memory limit: an OOM there would be the node's, not the pod's; set "
                             "resources.limits.memory")
    return int(parse_quantity(limit))


def oom_kill_replica(replica: str | None = None, limit_mb: int = 16, group: str = "audit-service",
                     configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.memory.oom_kill_replica` (``replica``: a pod name)."""
    what = f"oom kill of a {group} pod"
    with Kube(configuration, what) as kube:
        ns, selector, members = members_of(kube, group, what)
        ready = [p for p in members if is_ready(p)]
        if replica is not None:
            ready = [p for p in ready if p.metadata.name == replica]
            if not ready:
                raise ActivityFailed(f"{what}: {replica!r} is not a Ready pod of {selector!r} in {ns} "
                                     f"({sorted(p.metadata.name for p in members)})")
        if not ready:
            raise ActivityFailed(f"{what}: no Ready pod matches {selector!r} in namespace {ns} on {kube.where}")
        if len(members) > 1 and sum(map(is_ready, members)) < 2:
            raise ActivityFailed(f"{what}: blast radius: it would leave no Ready pod of {group}")
        pod = random.choice(ready)
        name = pod.metadata.name
        container, status = container_of(kube, pod, what)
        limit = _limit_bytes(pod, container, what)
        procs = processes(kube, pod, container, "LIST", what, write=False)
        main = min(procs, key=lambda p: (p.start, p.pid))
        used_kib = sum(p.rss_kib for p in procs)
        block = max(4 << 20, min(main.rss_kib * 1024 // 2, 64 << 20))
        if main.rss_kib * 1024 <= block + (2 << 20):
            raise ActivityFailed(f"{what}: the service in {ns}/{name} holds only {main.rss_kib // 1024} MiB: a holder "
                                 "of ours would be as large, and the OOM killer could pick it instead")
        n = min(MAX_HOLDERS, math.ceil(1.25 * max(limit - used_kib * 1024, 0) / block) + 2)
        restarts = status.restart_count if status is not None else 0
        plan = (f"fill container {container!r} of {ns}/{name} (limit {limit >> 20} MiB, service pid {main.pid} "
                f"{main.rss_kib // 1024} MiB) with {n} holders of {block >> 20} MiB: the kernel OOM-kills the service")
        code, out, err = kube.exec(ns, name, container, ["sh", "-c", FILL, MARK, str(block), str(n), str(HOLD_S)],
                                   write=True)  # on a dry run only recorded
        if kube.dry_run:
            return {"would": plan, "requests": kube.requests, "program": name}
        deadline, terminated = time.monotonic() + KILL_TIMEOUT_S, None
        while time.monotonic() < deadline:
            now = kube.read_pod(ns, name)
            st = container_of(kube, now, what)[1] if now is not None else None
            if st is not None and st.restart_count > restarts and st.last_state and st.last_state.terminated:
                terminated = st.last_state.terminated
                break
            time.sleep(0.5)
        if terminated is None:
            _sweep(kube, ns, name, container)
            raise ActivityFailed(f"{what}: container {container!r} of {ns}/{name} not restarted {KILL_TIMEOUT_S:.0f} s "
                                 f"after {n} holders of {block >> 20} MiB were started against its {limit >> 20} MiB "
                                 f"limit (holders removed; their start exited {code}: "
                                 f"{(err or out).strip()[-200:] or 'no output'}): the fault did not bite")
        if terminated.reason != "OOMKilled":
            raise ActivityFailed(f"{what}: container {container!r} of {ns}/{name} ended {terminated.reason!r} "
                                 f"(exit {terminated.exit_code}), not OOMKilled: not the memory limit")
        return {"program": name, "namespace": ns, "container": container, "pid": main.pid,
                "rss_mb": main.rss_kib // 1024, "limit_mb": limit >> 20, "holders": n, "block_mb": block >> 20,
                "reason": terminated.reason, "exit_code": terminated.exit_code, "restarts": restarts + 1,
                "limit_mb_argument": f"{limit_mb} (the local backend's; a pod has its own limit)",
                "requests": kube.requests,
                "changed": f"kernel OOM-killed the service in {name} (OOMKilled, exit {terminated.exit_code}); "
                           "the kubelet restarts it"}


def _sweep(kube: Kube, ns: str, pod: str, container: str) -> int:
    """Kill the holders left in ``container`` of ``pod``; how many processes went."""
    first, _, second = MARK.rpartition("-")  # given in two parts: this shell's own command line must not match
    code, out, _ = kube.exec(ns, pod, container, ["sh", "-c", SWEEP, "sweep", first, second], write=True)
    if kube.dry_run or code != 0:
        return 0
    return int(out.split()[-1]) if out.split() and out.split()[-1].isdigit() else 0


def release_memory_limit(group: str = "audit-service", configuration: Configuration | None = None,
                         secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.memory.release_memory_limit`: kill holders left in a service pod, wait
    until the expected replicas are Ready."""
    what = f"release memory of {group}"
    with Kube(configuration, what) as kube:
        ns = kube.settings.namespace
        selector = selector_of(kube.settings, group, what)
        swept = {}
        for pod in kube.list_pods(ns, selector):
            container, status = container_of(kube, pod, what)
            if status is None or status.state is None or status.state.running is None:
                continue
            killed = _sweep(kube, ns, pod.metadata.name, container)
            if killed:
                swept[pod.metadata.name] = killed
        if kube.dry_run:
            return {"would": f"kill any holder of ours in the pods of {selector!r}; wait for "
                             f"{kube.settings.expected_replicas} Ready", "requests": kube.requests}
        ready = kube.wait_pods_ready(ns, selector, kube.settings.expected_replicas)
        return {"group": group, "namespace": ns, "swept": swept, "ready": ready, "requests": kube.requests,
                "changed": (f"killed holders {swept}; " if swept else "") + f"{len(ready)} Ready"}
