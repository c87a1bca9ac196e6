"""Local backend of :mod:`faults.memory`: a real kernel OOM kill through a memory cgroup.

The replica is moved into a child memory cgroup of its own (named
``sqlaudit-<port base>-oom-<program>``) limited to ``limit_mb``, and a memory stressor of ours
joins it and allocates until the cgroup is over its limit. The kernel cannot reclaim anonymous
memory without swap, so the cgroup's OOM killer kills its largest process, the replica (the stressor
holds at most ``limit_mb`` and asks to be spared) — what happens to a pod over its limit, and what
Chaos Mesh's StressChaos does inside a pod. Nothing of the service is asked to help: a JVM sitting on
its committed heap is killed like the Python replica (a limit alone killed neither, 2026-12-01).
supervisord restarts the replica as a new process outside that cgroup; the stressor stops once the
replica is dead, and by itself after ``KILL_TIMEOUT_S`` if the runner died meanwhile.

cgroup v1 (``/sys/fs/cgroup/memory``) and v2 (unified hierarchy) are both handled.
"""

import functools
import logging
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.wait import wait_until
from faults.local.processes import Programs, start_again
from stack.supervisor import wait_dead
from target.settings import resolve

logger = logging.getLogger(__name__)

V1_ROOT = Path("/sys/fs/cgroup/memory")
V2_ROOT = Path("/sys/fs/cgroup")
KILL_TIMEOUT_S = 20.0


def _hierarchy() -> tuple[str, Path]:
    """(``v1`` | ``v2``, mount point) of a writable memory controller; ``ActivityFailed`` if none."""
    if (V1_ROOT / "memory.limit_in_bytes").exists():
        return "v1", V1_ROOT
    controllers = V2_ROOT / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():
        return "v2", V2_ROOT
    raise ActivityFailed("oom: no memory cgroup controller here (neither /sys/fs/cgroup/memory nor a cgroup v2 "
                         "hierarchy with the memory controller)")


def _current_cgroup(pid: int, version: str) -> str:
    """The memory cgroup path of ``pid`` relative to the mount point (``/process_api/abc``)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (version == "v1" and "memory" in controllers.split(",")) or (version == "v2" and controllers == ""):
            return path
    raise ActivityFailed(f"oom: no memory cgroup for pid {pid} in /proc/{pid}/cgroup")


def _ours(root: Path, port_base: int, group: str) -> list[Path]:
    """Every cgroup this fault made for ``group`` of the stack at ``port_base``, wherever it sits."""
    return sorted(p for p in root.rglob(f"sqlaudit-{port_base}-oom-{group}-*") if p.is_dir())


def oom_kill_replica(replica: str | None = None, limit_mb: int = 16, group: str = "audit-service",
                     configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.memory.oom_kill_replica`."""
    settings = resolve(configuration)
    what = f"oom kill of a {group} replica"
    version, root = _hierarchy()
    programs = Programs(settings)
    programs.require_running(what)
    members, running = programs.candidates(group, replica, what)
    if len(members) > 1 and sum(1 for m in members if m["statename"] == "RUNNING") < 2:
        raise ActivityFailed(f"{what}: blast radius: it would leave no replica of {group} running")
    victim = random.choice(running)
    pid = int(victim["pid"])
    parent = root / _current_cgroup(pid, version).lstrip("/")
    cgroup = parent / f"sqlaudit-{settings.stack_port_base}-oom-{group}-{victim['name']}"
    rss_mb = psutil.Process(pid).memory_info().rss / 2**20
    if settings.dry_run:
        return {"would": f"move {victim['name']} (pid {pid}, {rss_mb:.0f} MiB RSS) into {cgroup} and limit it to "
                         f"{limit_mb} MiB: the kernel OOM-kills it, supervisord restarts it", "program": victim["name"]}
    cgroup.mkdir(exist_ok=True)
    limit = str(limit_mb * 2**20)
    if version == "v1":
        try:  # bring its anonymous memory along, so the limit bites at once (deprecated in new kernels)
            (cgroup / "memory.move_charge_at_immigrate").write_text("1")
        except OSError as exc:
            logger.info("%s: charges stay behind (%s); the limit bites on its next allocations", what, exc)
        (cgroup / "cgroup.procs").write_text(str(pid))
        (cgroup / "memory.limit_in_bytes").write_text(limit)
    else:
        (cgroup / "memory.max").write_text(limit)
        (cgroup / "cgroup.procs").write_text(str(pid))
    logger.info("%s: %s (pid %s, %.0f MiB) limited to %s MiB in %s", what, victim["name"], pid, rss_mb, limit_mb,
                cgroup)
    stressor = _stress(cgroup, version, pid)
    try:
        dead = wait_dead(pid, KILL_TIMEOUT_S)
    finally:
        stressor.kill()
        stressor.wait()
    if not dead:
        raise ActivityFailed(f"{what}: {victim['name']} (pid {pid}) still alive {KILL_TIMEOUT_S:.0f} s after "
                             f"its limit was set to {limit_mb} MiB in {cgroup} and a stressor filled it")
    kills = _oom_kills(cgroup, version)
    return {"program": victim["name"], "pid": pid, "rss_mb": round(rss_mb), "cgroup": str(cgroup), "oom_kills": kills,
            "changed": f"kernel OOM-killed {victim['name']} (pid {pid}); supervisord restarts it"}


STRESSOR = r"""
import os, sys, time
procs, counter, victim, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
try:  # the kernel kills the largest process of the cgroup, the replica; spare me if allowed to
    with open("/proc/self/oom_score_adj", "w") as fh:
        fh.write("-1000")
except OSError:  # no CAP_SYS_RESOURCE (this machine): I hold at most the limit, far less than a replica
    pass
with open(procs, "w") as fh:  # into the replica's cgroup: what I allocate now is charged to it
    fh.write(str(os.getpid()))

def alive():
    try:
        with open(f"/proc/{victim}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False

def kills():  # the cgroup's OOM kills so far: the first one is the replica's, then I stop
    try:
        with open(counter) as fh:
            return sum(int(v) for k, v in (line.split() for line in fh) if k == "oom_kill")
    except (OSError, ValueError):
        return 0

held, deadline, before = [], time.monotonic() + seconds, kills()
while alive() and kills() == before and time.monotonic() < deadline:
    block = bytearray(1 << 20)
    block[::4096] = b"\x01" * len(block[::4096])  # touch every page: anonymous memory, charged
    held.append(block)
    time.sleep(0.002)
"""


def _stress(cgroup: Path, version: str, victim: int) -> subprocess.Popen[bytes]:
    """A process of ours in ``cgroup`` that allocates 1 MiB every ~2 ms until the cgroup's first OOM kill or
    ``victim``'s death (at most ``KILL_TIMEOUT_S``, even if nobody stops it)."""
    counter = cgroup / ("memory.oom_control" if version == "v1" else "memory.events")
    return subprocess.Popen([sys.executable, "-c", STRESSOR, str(cgroup / "cgroup.procs"), str(counter), str(victim),
                             str(KILL_TIMEOUT_S)], stdin=subprocess.DEVNULL, start_new_session=True)


def _oom_kills(cgroup: Path, version: str) -> int | None:
    """How many OOM kills the kernel counted in ``cgroup`` (None where the kernel does not say)."""
    path = cgroup / ("memory.oom_control" if version == "v1" else "memory.events")
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except OSError:
        return None
    return None


def _remove(cgroup: Path) -> bool:
    cgroup.rmdir()
    return True


def release_memory_limit(group: str = "audit-service", configuration: Configuration | None = None,
                         secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.memory.release_memory_limit`."""
    settings = resolve(configuration)
    _, root = _hierarchy()
    found = _ours(root, settings.stack_port_base, group)
    if settings.dry_run:
        return {"would": f"move any process out of and remove {[str(p) for p in found] or 'no cgroup'}; "
                         f"make sure {group} runs"}
    for cgroup in found:
        procs = [p for p in (cgroup / "cgroup.procs").read_text().split() if p]
        for pid in procs:  # a process still inside goes back to the parent cgroup
            try:
                (cgroup.parent / "cgroup.procs").write_text(pid)
            except OSError as exc:
                logger.warning("moving pid %s out of %s: %s", pid, cgroup, exc)
        wait_until(functools.partial(_remove, cgroup), 10, 0.2,  # busy until its last process has left
                   f"release memory limit: cannot remove {cgroup} within 10 s", retry_on=(OSError,),
                   error=ActivityFailed)
    programs = Programs(settings)
    started = []
    if programs.supervisord_running():
        for member in programs.group(group, f"release memory limit of {group}"):
            started.append(start_again(settings, member["name"], f"release memory limit of {group}")["changed"])
    changed = f"removed {len(found)} cgroup(s)" if found else "no limit was set"
    return {"changed": f"{changed}; replicas: {', '.join(started) or 'stack not running'}",
            "removed": [str(p) for p in found]}
