"""Local backend of :mod:`faults.memory`: a real kernel OOM kill through a memory cgroup.

The replica is moved into a child memory cgroup of its own (named
``sqlaudit-<port base>-oom-<program>``) limited to ``limit_mb``, then made to leak
memory (``POST /debug/allocate`` on its HTTP port, which the local stack enables):
the kernel cannot reclaim anonymous memory without swap, so its OOM killer kills the
process — exactly what happens to a pod over its memory limit. supervisord restarts
the replica as a new process outside that cgroup.

cgroup v1 (``/sys/fs/cgroup/memory``) and v2 (unified hierarchy) are both handled.
"""

import functools
import logging
import random
from pathlib import Path
from typing import Any

import psutil
import requests
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.wait import wait_until
from faults.local.processes import Programs, ready_port, start_again
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
    members = programs.group(group, what)
    running = [m for m in members if m["statename"] == "RUNNING" and m["pid"]]
    if replica is not None:
        running = [m for m in running if m["name"] == replica]
        if not running:
            raise ActivityFailed(f"{what}: {replica!r} is not a RUNNING member of {group} "
                                 f"({', '.join(m['name'] for m in members)})")
    if not running:
        raise ActivityFailed(f"{what}: no RUNNING replica in {group}")
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
    _leak(programs, victim["name"], limit_mb * 4, what)
    if not wait_dead(pid, KILL_TIMEOUT_S):
        raise ActivityFailed(f"{what}: {victim['name']} (pid {pid}) still alive {KILL_TIMEOUT_S:.0f} s after "
                             f"its limit was set to {limit_mb} MiB in {cgroup}")
    kills = _oom_kills(cgroup, version)
    return {"program": victim["name"], "pid": pid, "rss_mb": round(rss_mb), "cgroup": str(cgroup), "oom_kills": kills,
            "changed": f"kernel OOM-killed {victim['name']} (pid {pid}); supervisord restarts it"}


def _leak(programs: Programs, program: str, mb: int, what: str) -> None:
    """Ask the replica to allocate ``mb`` MiB; the connection dies with it when the kernel kills it."""
    port = ready_port(programs, program)
    if port is None:
        raise ActivityFailed(f"{what}: no HTTP port known for {program}")
    try:
        requests.post(f"http://127.0.0.1:{port}/debug/allocate", params={"mb": mb}, timeout=10)
    except requests.RequestException as exc:  # expected: killed while answering
        logger.info("%s: %s stopped answering while allocating (%s)", what, program, type(exc).__name__)


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
