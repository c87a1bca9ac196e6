"""Local backend of :mod:`faults.checker_config`: edit ``conf/checkers.yaml`` and restart replicas one by one.

The edit is :func:`faults.checker_edit.edit_threshold` (the Kubernetes backend's too): one line
changes, and a value the service would refuse is refused before anything is written.
"""

import functools
import logging
import shutil
from pathlib import Path
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.wait import wait_until
from faults.checker_edit import edit_threshold
from faults.local.processes import Programs, ready_port
from stack.components.audit_service import checkers_file
from target.settings import resolve

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0


def _backup(path: Path) -> Path:
    return path.with_name(path.name + ".before-chaos")


def _answers_200(url: str) -> bool:
    return requests.get(url, timeout=2).status_code == 200


def _ready_timeout(programs: Programs, name: str) -> float:
    """How long ``name`` may take to become ready after a restart: its component's start-up allowance (a
    Spring replica's JVM took 104-184 s on this loaded machine), never less than :data:`READY_TIMEOUT_S`."""
    for comp in programs.stack.components():
        if comp.name == name:
            return max(READY_TIMEOUT_S, float(comp.startup_timeout))
    return READY_TIMEOUT_S


def _rolling_restart(programs: Programs, group: str, what: str, since: float) -> list[str]:
    """Stop and start each replica in turn, waiting until it is ready before the next (a rolling update).

    A replica started at or after ``since`` (when the config file it must read was written) already reads
    it: it is only waited for, not restarted. So a revert retried after a timeout converges instead of
    killing, attempt after attempt, the replica that was still starting with the restored file."""
    done = []
    for member in programs.group(group, what):
        name = member["name"]
        fresh = member.get("statename") in ("STARTING", "RUNNING") and float(member.get("start") or 0) >= since
        if not fresh:
            programs.stop(name, what=what)
        timeout = _ready_timeout(programs, name)
        programs.ensure_running(name, timeout, what)
        port = ready_port(programs, name)
        if port is not None:
            url = f"http://127.0.0.1:{port}/actuator/health/readiness"
            wait_until(functools.partial(_answers_200, url), timeout, 0.5,
                       f"{what}: {name} not ready within {timeout:.0f} s after its restart",
                       retry_on=(requests.RequestException,), error=ActivityFailed)
        done.append(name)
        logger.info("%s: %s %s and ready", what, name, "already on the new file" if fresh else "restarted")
    return done


def change_checker_threshold(checker: str, field: str, value: float, group: str = "audit-service",
                             configuration: Configuration | None = None,
                             secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.checker_config.change_checker_threshold`."""
    settings = resolve(configuration)
    what = f"change {checker}.{field}"
    programs = Programs(settings)
    programs.require_running(what)
    path = checkers_file(programs.stack.ctx)
    if not path.exists():
        raise ActivityFailed(f"{what}: {path} does not exist (a stack started before config changes were "
                             "supported: restart it with `resilience down && resilience up`)")
    text, old, new = edit_threshold(path.read_text(), checker, field, value, what, str(path))
    if settings.dry_run:
        return {"would": f"set {checker}.{field} {old} -> {new} in {path}, then restart {group} one by one",
                "old": old}
    backup = _backup(path)
    if not backup.exists():
        shutil.copyfile(path, backup)
    candidate = path.with_name(path.name + ".candidate")
    candidate.write_text(text)
    candidate.replace(path)
    restarted = _rolling_restart(programs, group, what, since=path.stat().st_mtime)
    return {"checker": checker, "field": field, "old": old, "new": new, "file": str(path),
            "restarted": restarted, "changed": f"{checker}.{field} {old} -> {new}, rolled {group}"}


def restore_checker_config(group: str = "audit-service", configuration: Configuration | None = None,
                           secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.checker_config.restore_checker_config`."""
    settings = resolve(configuration)
    programs = Programs(settings)
    path = checkers_file(programs.stack.ctx)
    backup = _backup(path)
    if not backup.exists():
        return {"changed": "nothing to restore (no change recorded)", "would": "nothing"}
    if settings.dry_run:
        return {"would": f"restore {path} from {backup}, then restart {group} one by one"}
    if path.read_bytes() != backup.read_bytes():  # a retried revert leaves the file, and its time, alone
        shutil.copyfile(backup, path)
    restarted: list[str] = []
    if programs.supervisord_running():
        restarted = _rolling_restart(programs, group, "restore checker config", since=path.stat().st_mtime)
    backup.unlink()
    return {"changed": f"restored {path}; rolled {', '.join(restarted) or 'nothing (stack not running)'}",
            "restarted": restarted}
