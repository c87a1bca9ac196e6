"""Local backend of :mod:`faults.replica_hang`: SIGSTOP replicas' process groups, SIGCONT those still stopped.

supervisord reports a stopped process RUNNING (it did not exit), so only the stack's liveness prober
(``stack/liveness.py``) restarts it. Each hung process is recorded with its pid *and start time*: the resume
signals a pid only while it is still that process and still stopped, so after a liveness restart (the pid
gone, or reused by another process) the rollback does nothing to it and says it was restarted.
"""

import random
import signal
from typing import Any

import psutil
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults import journal
from faults.blast_radius import check_blast_radius, how_many
from faults.local.processes import Programs, freeze, killpg
from target.settings import TargetSettings, resolve

FAULT = "replica_hang"


def hang_replicas(count: int | None = None, percentage: float | None = None, group: str = "audit-service",
                  allow_all: bool = False, duration: float | None = None,
                  configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.replica_hang.hang_replicas`."""
    settings = resolve(configuration)
    what = f"hang replicas of {group}"
    programs = Programs(settings)
    programs.require_running(what)
    members = programs.group(group, what)
    n = how_many(count, percentage, len(members))
    answering = {}
    for m in members:
        if m["statename"] != "RUNNING" or not m["pid"]:
            continue
        try:
            proc = psutil.Process(int(m["pid"]))
            if proc.status() != psutil.STATUS_STOPPED:
                answering[m["name"]] = (int(m["pid"]), proc.create_time())
        except psutil.Error:
            continue
    check_blast_radius(what, n, len(members), list(answering), settings.max_replicas_killed, allow_all, "hang",
                       state="RUNNING and not stopped")
    if settings.dry_run:
        return {"would": f"SIGSTOP {n} of {sorted(answering)} (chosen at random) via {programs.where}", "group": group}
    victims = sorted(random.sample(sorted(answering), n))
    pids = {name: answering[name][0] for name in victims}
    for name in victims:
        freeze(pids[name], f"{what}: {name}")
    return {"group": group, "hung": victims, "pids": pids,
            "create_times": {name: answering[name][1] for name in victims}, "of": len(members),
            "changed": "SIGSTOP " + ", ".join(f"{name} (pid {pids[name]})" for name in victims)}


def _recorded(settings: TargetSettings, group: str) -> dict[int, tuple[str, float | None]]:
    """pid -> (program, start time) of every process an open hang of ``group`` on this stack stopped."""
    found: dict[int, tuple[str, float | None]] = {}
    for _, entry in journal.open_entries(settings.fault_state_dir):
        details = entry.get("details") or {}
        if (entry.get("fault") == FAULT and journal.same_stack(entry, settings)
                and (entry.get("parameters") or {}).get("group") == group):
            times = details.get("create_times") or {}
            for name, pid in (details.get("pids") or {}).items():
                found[int(pid)] = (str(name), times.get(name))
    return found


def resume_replicas(group: str = "audit-service", configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.replica_hang.resume_replicas`."""
    settings = resolve(configuration)
    what = f"resume replicas of {group}"
    targets = _recorded(settings, group)
    programs = Programs(settings)
    if programs.supervisord_running():
        # Members stopped now count too (a hang whose journal entry is closed or lost): they are the group's.
        for m in programs.infos(what).values():
            if m["group"] == group and m["statename"] == "RUNNING" and m["pid"]:
                targets.setdefault(int(m["pid"]), (str(m["name"]), None))
    resumed: list[int] = []
    restarted: list[str] = []
    for pid, (name, created) in sorted(targets.items()):
        try:
            proc = psutil.Process(pid)
            same = created is None or abs(proc.create_time() - float(created)) <= 0.01
            stopped = proc.status() == psutil.STATUS_STOPPED
        except psutil.Error:
            same, stopped = False, False
        if not same:
            if created is not None:
                restarted.append(name)  # the hung process is gone: liveness (or someone) restarted it
            continue
        if not stopped:
            continue
        resumed.append(pid)
        if not settings.dry_run:
            try:
                killpg(pid, signal.SIGCONT, f"{what}: {name}")
            except ActivityFailed:
                if psutil.pid_exists(pid):
                    raise
                resumed.remove(pid)  # died between the look and the signal: nothing left to resume
                restarted.append(name)
    if settings.dry_run:
        return {"would": f"SIGCONT {resumed}" if resumed else "nothing (not hung)", "group": group}
    changed = ([f"SIGCONT pid {', '.join(map(str, resumed))}"] if resumed else []) + (
        [f"{', '.join(restarted)} restarted meanwhile (hung pid gone): not signalled"] if restarted else [])
    return {"group": group, "resumed": resumed, "restarted": sorted(set(restarted)),
            "changed": "; ".join(changed) or "not hung"}
