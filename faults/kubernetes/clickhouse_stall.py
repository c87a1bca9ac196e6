"""Kubernetes backend of :mod:`faults.clickhouse_stall`: SIGSTOP the ClickHouse server through pods/exec.

Runs a shell in the container ``k8s_clickhouse_container`` of every Running pod matching
``k8s_clickhouse_selector`` (``replica``: only the pod with that ordinal, ``clickhouse-1`` is
replica 1) that sends ``STOP`` (``CONT`` to resume) to each process whose name starts with
``clickhouse``. The kernel does not deliver SIGSTOP to a PID namespace's
init from inside that namespace, so ClickHouse must not be PID 1 in its pod: set
``shareProcessNamespace: true`` (the pause container is then PID 1) or run it under an init
(tini). The stall refuses, and says so, when it would only hit PID 1.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.kubernetes._pods import ordinal, with_ordinal
from faults.kubernetes.client import Kube

_SCRIPT = r"""
sig="$1"; n=0
for d in /proc/[0-9]*; do
  c=$(cat "$d/comm" 2>/dev/null) || continue
  case "$c" in clickhouse*) ;; *) continue ;; esac
  p=${d#/proc/}
  if [ "$p" = 1 ]; then echo "pid1 $c"; continue; fi
  if [ "$sig" = LIST ]; then echo "pid $p $c"; else kill -"$sig" "$p" && echo "pid $p $c"; fi
  n=$((n+1))
done
[ "$n" -gt 0 ] || exit 3
"""


def _running(kube: Kube, replica: int | None, what: str, required: bool) -> list[str]:
    """Names of the Running ClickHouse pods ``replica`` picks (``None``: every one).

    ``required``: none is an ``ActivityFailed``; else an empty list (nothing to resume)."""
    edge = kube.settings.edges["clickhouse"]
    where = f"k8s_clickhouse_selector {edge.selector!r} in {edge.namespace} on {kube.where}"
    pods = [p for p in kube.list_pods(edge.namespace, edge.selector)
            if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
    if replica is not None:
        if not required and not any(ordinal(p) == replica for p in pods):
            return []
        pods = [with_ordinal(pods, replica, "Running ClickHouse", where, what)] if pods else []
    if not pods and required:
        raise ActivityFailed(f"{what}: no Running pod matches {where}")
    return [p.metadata.name for p in pods]


def _signal(kube: Kube, pods: list[str], sig: str, what: str, write: bool) -> dict[str, list[str]]:
    edge = kube.settings.edges["clickhouse"]
    done: dict[str, list[str]] = {}
    for pod in pods:
        code, out, err = kube.exec(edge.namespace, pod, kube.settings.clickhouse_container,
                                   ["sh", "-c", _SCRIPT, "chaos", sig], write=write)
        if kube.dry_run and write:
            continue
        if code == 3:
            raise ActivityFailed(f"{what}: in {edge.namespace}/{pod} ClickHouse is PID 1 ({out.strip()}), which "
                                 "cannot be stopped from inside the pod: set shareProcessNamespace: true")
        if code != 0:
            raise ActivityFailed(f"{what}: signalling ClickHouse in {edge.namespace}/{pod} exited {code}: "
                                 f"{(err or out).strip()[-300:]}")
        done[pod] = [line.split()[1] for line in out.splitlines() if line.startswith("pid ")]
    return done


def stall_clickhouse(duration: float | None = 10.0, replica: int | None = None,
                     configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.clickhouse_stall.stall_clickhouse`."""
    what = "stall clickhouse" + (f" replica {replica}" if replica is not None else "")
    with Kube(configuration, what) as kube:
        pods = _running(kube, replica, what, required=True)
        found = _signal(kube, pods, "LIST", what, write=False)
        if kube.dry_run:
            _signal(kube, pods, "STOP", what, write=True)
            return {"would": f"SIGSTOP ClickHouse processes {found}", "requests": kube.requests}
        stopped = _signal(kube, pods, "STOP", what, write=True)
        return {"stopped": stopped, "requests": kube.requests, "changed": f"SIGSTOP {stopped}"}


def resume_clickhouse(replica: int | None = None, configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.clickhouse_stall.resume_clickhouse`: SIGCONT; idempotent."""
    what = "resume clickhouse" + (f" replica {replica}" if replica is not None else "")
    with Kube(configuration, what) as kube:
        pods = _running(kube, replica, what, required=False)
        if not pods:
            return {"changed": "no Running ClickHouse pod: nothing to resume", "would": "nothing"}
        resumed = _signal(kube, pods, "CONT", what, write=True)
        if kube.dry_run:
            return {"would": f"SIGCONT every ClickHouse process in {pods}", "requests": kube.requests}
        return {"resumed": resumed, "changed": f"SIGCONT {resumed}"}
