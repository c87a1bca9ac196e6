"""Local backend of :mod:`faults.replica_count`: scale the supervisor group ``audit-service`` (:mod:`stack.scale`)."""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.local.processes import Programs, failing_as_activity
from stack.components.audit_service import GROUP
from stack.scale import scale, scale_back, scaled_from
from target.settings import resolve


def scale_replicas(to: int, duration: float | None = None, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.replica_count.scale_replicas`."""
    settings = resolve(configuration)
    what = f"scale {GROUP} to {to} replicas"
    programs = Programs(settings)
    programs.require_running(what)
    stack = programs.stack
    with failing_as_activity(what):
        if not stack.supervisor.can_change_groups():
            raise ActivityFailed(f"{what}: the stack's supervisord ({programs.where}) was started before scaling "
                                 "existed; restart the stack (`resilience down`, then `resilience up`)")
        members = [m["name"] for m in programs.group(GROUP, what)]
        if settings.dry_run:
            return {"would": f"scale {GROUP} from {len(members)} ({', '.join(members)}) to {to} via {programs.where}",
                    "group": GROUP, "before": len(members)}
        result = scale(stack, to)
    changed = f"scaled {GROUP} from {result.before} to {result.after}"
    if result.added:
        changed += f": added {', '.join(result.added)}"
    if result.removed:
        changed += f": removed {', '.join(result.removed)}"
    return {"group": GROUP, **result.as_dict(), "changed": changed}


def restore_replica_count(configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.replica_count.restore_replica_count`."""
    settings = resolve(configuration)
    what = f"restore the replica count of {GROUP}"
    programs = Programs(settings)
    stack = programs.stack
    original = scaled_from(stack)
    if original is None:
        return {"group": GROUP, "changed": "not scaled: nothing to restore", "would": "nothing"}
    if settings.dry_run:
        return {"would": f"scale {GROUP} back to {original} via {programs.where}", "group": GROUP}
    with failing_as_activity(what):
        result = scale_back(stack)
    if result is None:
        return {"group": GROUP, "changed": "not scaled: nothing to restore"}
    return {"group": GROUP, **result.as_dict(),
            "changed": f"scaled {GROUP} back from {result.before} to {result.after}"
                       + (f": removed {', '.join(result.removed)}" if result.removed else "")}
