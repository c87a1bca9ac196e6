"""Local backend of :mod:`faults.replicas`: kill members of a supervisor group, within a blast radius."""

import random
from typing import Any

from chaoslib.types import Configuration, Secrets

from faults.blast_radius import check_blast_radius, how_many
from faults.local.processes import Programs, start_again
from target.settings import resolve


def kill_replicas(count: int | None = None, percentage: float | None = None, graceful: bool = False,
                  group: str = "audit-service", allow_all: bool = False, duration: float | None = None,
                  configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.replicas.kill_replicas`."""
    settings = resolve(configuration)
    what = f"kill replicas of {group}"
    programs = Programs(settings)
    programs.require_running(what)
    members = programs.group(group, what)
    n = how_many(count, percentage, len(members))
    running = [m["name"] for m in members if m["statename"] == "RUNNING"]
    check_blast_radius(what, n, len(members), running, settings.max_replicas_killed, allow_all, "kill")
    how = "stop (graceful)" if graceful else "SIGKILL"
    if settings.dry_run:
        return {"would": f"{how} {n} of RUNNING {running} (chosen at random) via {programs.where}", "group": group}
    victims = sorted(random.sample(running, n))
    pids: dict[str, int | None] = {}
    for name in victims:
        pids[name] = programs.stop(name) if graceful else programs.kill(name)
    if graceful and duration is None:
        for name in victims:
            start_again(settings, name, what)
    return {"group": group, "killed": victims, "pids": pids, "of": len(members),
            "changed": f"{how} {', '.join(victims)}" + ("" if not graceful or duration else ", started again")}


def restore_replicas(group: str = "audit-service", configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.replicas.restore_replicas`."""
    settings = resolve(configuration)
    what = f"restore replicas of {group}"
    programs = Programs(settings)
    if not programs.supervisord_running():
        return {"group": group, "changed": "stack not running: nothing to undo", "would": "nothing"}
    members = [m["name"] for m in programs.group(group, what)]
    if settings.dry_run:
        return {"would": f"make {members} RUNNING via {programs.where}", "group": group}
    done = {name: start_again(settings, name, what)["changed"] for name in members}
    started = [n for n, d in done.items() if d != "was RUNNING"]
    return {"group": group, "replicas": done,
            "changed": f"started {', '.join(started)}" if started else "all were RUNNING"}
