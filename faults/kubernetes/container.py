"""The processes of one container, seen and signalled from a shell exec'd into it (pods/exec).

A process exec'd into a container joins the container's cgroups, so "the container's processes" are those
whose ``/proc/<pid>/cgroup`` reads as the exec'd shell's own — whatever the image runs, with no tool but a
POSIX shell and ``cat``. The shell and its children are left out. The service hang freezes them all
(SIGSTOP) and resumes those still stopped (SIGCONT); the OOM fault reads their memory.

The kernel does not deliver SIGSTOP to the init of a PID namespace from inside it, so a container whose main
process is PID 1 (the default: its own PID namespace) cannot be frozen this way: the script says so (exit
:data:`PID1`) and the fault refuses. ``shareProcessNamespace: true`` on the pod (the pause container is then
PID 1) or an init in the image (tini) lift it.
"""

from dataclasses import dataclass
from typing import Any

from chaoslib.exceptions import ActivityFailed

from faults.kubernetes.client import Kube

PID1 = 3
"""Exit code of :data:`SCRIPT` when asked to stop a container whose process is its PID namespace's init."""

SCRIPT = r"""
action="$1"; me=$$
mine=$(cat /proc/$me/cgroup)
found=0; pid1=0
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$me" ] && continue
  cg=$(cat "$d/cgroup" 2>/dev/null) || continue
  [ "$cg" = "$mine" ] || continue
  stat=$(cat "$d/stat" 2>/dev/null) || continue
  comm=$(cat "$d/comm" 2>/dev/null)
  rss=$(sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' "$d/status" 2>/dev/null)
  set -- ${stat##*) }
  [ "$2" = "$me" ] && continue
  state=$1; start=${20}
  [ "$p" = 1 ] && pid1=1
  case "$action" in
    STOP) [ "$p" = 1 ] || kill -STOP "$p" 2>/dev/null || continue ;;
    CONT) [ "$state" = T ] || continue; kill -CONT "$p" 2>/dev/null || continue ;;
  esac
  echo "proc $p $start $state ${rss:-0} $comm"
  found=$((found+1))
done
if [ "$action" = STOP ] && [ "$pid1" = 1 ]; then exit 3; fi
[ "$found" -gt 0 ] || [ "$action" = CONT ] || exit 4
"""
# A STOP never signals PID 1 (and exits PID1 when it saw it): callers LIST first and refuse before anything.


@dataclass(frozen=True)
class Proc:
    """One process of the container, as the script printed it."""

    pid: int
    start: int  # clock ticks after boot: with the pid, who it is (a pid is reused, a start time is not)
    state: str  # R, S, D, T (stopped)...
    rss_kib: int
    comm: str


def container_of(kube: Kube, pod: Any, what: str) -> tuple[str, Any]:
    """``(name, status)`` of the service container of ``pod``: ``k8s_service_container``, else its first one."""
    wanted = kube.settings.service_container or pod.spec.containers[0].name
    if wanted not in [c.name for c in pod.spec.containers]:
        raise ActivityFailed(f"{what}: pod {pod.metadata.name} has no container {wanted!r} (k8s_service_container; "
                             f"it has {[c.name for c in pod.spec.containers]})")
    status = next((s for s in pod.status.container_statuses or [] if s.name == wanted), None)
    return wanted, status


def pid1_refusal(what: str, pod: Any, container: str) -> ActivityFailed:
    """The error for a container whose process is the init of its own PID namespace."""
    return ActivityFailed(f"{what}: in {pod.metadata.namespace}/{pod.metadata.name} container {container!r} runs "
                          "as PID 1 of its own PID namespace, which the kernel will not stop from inside the pod: "
                          "set shareProcessNamespace: true on the pod (or run it under an init such as tini)")


def processes(kube: Kube, pod: Any, container: str, action: str, what: str, *, write: bool) -> list[Proc]:
    """Run :data:`SCRIPT` with ``action`` (``LIST``, ``STOP``, ``CONT``) in ``container`` of ``pod``; the processes
    it saw (``LIST``) or signalled. ``ActivityFailed`` naming the pod for PID 1 on ``STOP``, a container
    without a shell, or one with no process of its own."""
    ns, name = pod.metadata.namespace, pod.metadata.name
    code, out, err = kube.exec(ns, name, container, ["sh", "-c", SCRIPT, "sql-audit-resilience", action],
                               write=write)
    if kube.dry_run and write:
        return []
    if code == PID1:
        raise pid1_refusal(what, pod, container)
    if code == 4:
        raise ActivityFailed(f"{what}: in {ns}/{name} container {container!r} has no process of its own to {action}")
    if code != 0:
        raise ActivityFailed(f"{what}: the process script in {ns}/{name} container {container!r} exited {code}: "
                             f"{(err or out).strip()[-300:] or 'no output (does the image have sh and cat?)'}")
    found = []
    for line in out.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) >= 5 and parts[0] == "proc":
            found.append(Proc(int(parts[1]), int(parts[2]), parts[3], int(parts[4] or 0),
                              parts[5] if len(parts) > 5 else ""))
    return found
