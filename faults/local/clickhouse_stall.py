"""Local backend of :mod:`faults.clickhouse_stall`: SIGSTOP the server, SIGCONT to resume.

supervisord still reports a stopped process RUNNING; clients see a server that
accepts TCP connections (the kernel completes the handshake) but never answers.
On an ``ha`` stack ``replica`` picks ``clickhouse`` or ``clickhouse-2``.
"""

import signal
from typing import Any

import psutil
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults import journal
from faults.local import _ha
from faults.local.clickhouse_down import program
from faults.local.processes import Programs, freeze, killpg
from stack.components import clickhouse
from target.settings import TargetSettings, resolve

PROGRAM = "clickhouse"


def stall_clickhouse(duration: float | None = 10.0, replica: int | None = None,
                     configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.clickhouse_stall.stall_clickhouse`."""
    settings = resolve(configuration)
    what = "stall ClickHouse" + (f" replica {replica}" if replica is not None else "")
    target = program(settings, replica, what)
    programs = Programs(settings)
    info = programs.running_info(target, what)
    pid = int(info["pid"])
    try:
        proc = psutil.Process(pid)
        status, created = proc.status(), proc.create_time()
    except psutil.Error as exc:
        raise ActivityFailed(f"{what}: {target} pid {pid}: {exc}") from exc
    if status == psutil.STATUS_STOPPED:
        raise ActivityFailed(f"{what}: {target} pid {pid} is already stopped; resume_clickhouse first")
    if settings.dry_run:
        return {"would": f"SIGSTOP {target} pid {pid} (process group)", "pid": pid}
    freeze(pid, what)
    return {"program": target, "pid": pid, "create_time": created, "changed": f"SIGSTOP pid {pid}"}


def _stalled_pids(settings: TargetSettings, current: list[int]) -> dict[int, float | None]:
    """Current clickhouse pid(s) plus pids recorded by open stall entries that are still the same process."""
    pids: dict[int, float | None] = dict.fromkeys(current)
    for _, entry in journal.open_entries(settings.fault_state_dir):
        details = entry.get("details") or {}
        if (entry.get("fault") == "clickhouse_stall" and journal.same_stack(entry, settings)
                and details.get("pid")):
            pids[int(details["pid"])] = details.get("create_time")
    return pids


def resume_clickhouse(replica: int | None = None, configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.clickhouse_stall.resume_clickhouse`."""
    settings = resolve(configuration)
    what = "resume ClickHouse"
    programs = Programs(settings)
    current: list[int] = []
    if programs.supervisord_running():
        if replica is None and _ha.is_ha(settings):
            targets = [r.program for r in clickhouse.CH_REPLICAS]
        else:
            targets = [program(settings, replica, what)]
        infos = programs.infos(what)
        current = [int(infos[t]["pid"]) for t in targets if t in infos and infos[t]["pid"]]
    resumed = []
    for pid, created in _stalled_pids(settings, current).items():
        try:
            proc = psutil.Process(pid)
            if created is not None and abs(proc.create_time() - float(created)) > 0.01:
                continue  # pid reused by another process
            stopped = proc.status() == psutil.STATUS_STOPPED
        except psutil.Error:
            continue
        if settings.dry_run:
            if stopped:
                resumed.append(pid)
            continue
        killpg(pid, signal.SIGCONT, what)
        if stopped:
            resumed.append(pid)
    if settings.dry_run:
        return {"would": f"SIGCONT {resumed}" if resumed else "nothing (not stalled)"}
    return {"program": PROGRAM if replica is None else program(settings, replica, what), "resumed": resumed,
            "changed": f"SIGCONT pid {', '.join(map(str, resumed))}" if resumed else "not stalled"}
