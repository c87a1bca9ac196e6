"""Local backend of :mod:`faults.heap`: the heap hog loaded into one replica's JVM with ``jcmd``.

The agent (``faults/agents/HeapHog.java``) keeps a status file while it holds, in the stack's
``faults/heap-hog/`` directory, named ``<program>-<pid>``: the fault waits on it for the fill to bite,
the release asks every JVM with one to let go, and the leftover audit (:mod:`faults.local.residue`)
names a replica still held. The file is the JVM's to remove (on release, at the hold's end, at exit); one
whose JVM is gone is stale and removed here.
"""

import random
import time
from pathlib import Path
from typing import Any

import psutil
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.wait import wait_until
from faults import agents
from faults.local import local_stack
from faults.local.processes import Programs
from target.settings import TargetSettings, resolve

BITE_TIMEOUT_S = 20.0
RELEASE_TIMEOUT_S = 10.0


def status_dir(data_dir: Path) -> Path:
    """Where the agents of the stack in ``data_dir`` keep their status files."""
    return data_dir / "faults" / "heap-hog"


def marker_dir(settings: TargetSettings) -> Path:
    """:func:`status_dir` of the stack ``settings`` point at."""
    return status_dir(local_stack(settings).data_dir)


def read_markers(directory: Path) -> dict[Path, dict[str, Any]]:
    """Status file -> ``{"program", "pid", "alive", "held_mib", "after_gc_mib", "max_mib"}`` (``alive``: the
    JVM that wrote it still runs)."""
    found: dict[Path, dict[str, Any]] = {}
    for path in sorted(directory.glob("*-[0-9]*")) if directory.is_dir() else []:
        if path.suffix == ".tmp":
            continue
        program, _, pid_text = path.name.rpartition("-")
        try:
            fields = dict(word.split("=", 1) for word in path.read_text().split())
            started = psutil.Process(int(pid_text)).create_time()
            alive = started <= path.stat().st_mtime + 1  # not a later process with a reused pid
        except (OSError, ValueError, psutil.Error):
            fields, alive = {}, False
        found[path] = {"program": program, "pid": int(pid_text), "alive": alive,
                       **{k: int(v) for k, v in fields.items() if k.endswith("_mib")}}
    return found


def _is_jvm(pid: int) -> bool:
    try:
        return Path(psutil.Process(pid).exe()).name == "java"
    except psutil.Error:
        return False


def fill_heap(fill: float = 0.96, replica: str | None = None, duration: float = 150.0, group: str = "audit-service",
              churn: float = 0.0, configuration: Configuration | None = None,
              secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.heap.fill_heap`."""
    settings = resolve(configuration)
    what = f"fill the heap of a {group} replica"
    programs = Programs(settings)
    programs.require_running(what)
    _, running = programs.candidates(group, replica, what)
    not_jvm = [m["name"] for m in running if not _is_jvm(int(m["pid"]))]
    if not_jvm:
        raise ActivityFailed(f"{what}: {', '.join(not_jvm)} is not a JVM (the Python reference service has no heap "
                             "to fill): run it against the Spring service (resilience up --service spring)")
    victim = random.choice(running)
    name, pid = str(victim["name"]), int(victim["pid"])
    directory = marker_dir(settings)
    if any(m["alive"] and m["program"] == name for m in read_markers(directory).values()):
        raise ActivityFailed(f"{what}: {name} already has a heap hog holding (release_heap first)")
    try:
        jar = agents.heap_hog_jar()
        agents.jdk_tool("jcmd")
    except agents.AgentError as exc:
        raise ActivityFailed(f"{what}: {exc}") from exc
    if settings.dry_run:
        return {"would": f"load {jar.name} into {name} (pid {pid}) and hold its heap at {fill:.2f} of its maximum "
                         f"for {duration:.0f} s" + (f", churning {churn:g} MiB/s" if churn else ""),
                "program": name, "pid": pid}
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / f"{name}-{pid}"
    options = (f"fill:{fill},seconds:{duration:g},churn:{churn:g},mark:{settings.run_id or 'fill_heap'},"
               f"marker:{marker}")
    try:
        agents.jcmd(pid, "JVMTI.agent_load", str(jar), options)
    except agents.AgentError as exc:
        raise ActivityFailed(f"{what}: {name} (pid {pid}): {exc}") from exc
    t0 = time.monotonic()

    def filled() -> dict[str, Any] | None:
        status = read_markers(directory).get(marker)
        if status and status.get("max_mib") and status.get("after_gc_mib", 0) >= (fill - 0.05) * status["max_mib"]:
            return status
        return None

    status = wait_until(filled, BITE_TIMEOUT_S, 0.25, lambda: f"{what}: {name} (pid {pid}): the heap did not reach "
                        f"{fill:.2f} of its maximum within {BITE_TIMEOUT_S:.0f} s (last status: "
                        f"{read_markers(directory).get(marker)}): the fault did not bite", error=ActivityFailed)
    return {"program": name, "pid": pid, "heap_max_mb": status["max_mib"], "after_gc_mb": status["after_gc_mib"],
            "held_mb": status["held_mib"], "filled_in_s": round(time.monotonic() - t0, 1),
            "changed": f"heap hog in {name} (pid {pid}) holding {status['held_mib']} MiB of {status['max_mib']} MiB"}


def release_heap(group: str = "audit-service", configuration: Configuration | None = None,
                 secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.heap.release_heap`: every live hog of the stack lets go; stale files go."""
    settings = resolve(configuration)
    what = f"release the heaps of {group}"
    directory = marker_dir(settings)
    markers = read_markers(directory)
    live = {path: m for path, m in markers.items() if m["alive"] and m["program"].startswith(group)}
    if settings.dry_run:
        return {"would": f"release {sorted(m['program'] for m in live.values())}" if live else "nothing (no hog)"}
    for path, m in markers.items():
        if not m["alive"]:
            path.unlink(missing_ok=True)  # its JVM is gone (a restart, an OOM kill): nothing holds
    if live:
        jar = agents.heap_hog_jar()
        for m in live.values():
            try:
                agents.jcmd(m["pid"], "JVMTI.agent_load", str(jar), "release")
            except agents.AgentError as exc:
                if psutil.pid_exists(m["pid"]):
                    raise ActivityFailed(f"{what}: {m['program']} (pid {m['pid']}): {exc}") from exc
        wait_until(lambda: not any(p.exists() for p in live), RELEASE_TIMEOUT_S, 0.2,
                   lambda: f"{what}: still held after {RELEASE_TIMEOUT_S:.0f} s: "
                   f"{[str(p) for p in live if p.exists()]}", error=ActivityFailed)
    released = sorted(m["program"] for m in live.values())
    return {"released": released, "changed": f"released {', '.join(released)}" if released else "nothing held"}
