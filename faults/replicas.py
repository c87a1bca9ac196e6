"""Kill audit-service replicas (count or percentage), never more than the blast radius allows.

Replicas are the supervisor programs ``audit-service-<i>`` of group
``audit-service`` locally (pods of the Deployment on Kubernetes). The limit:
at least one replica survives, and no more than ``max_replicas_killed``
(configuration) die, unless ``allow_all`` is true.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["kill_replicas", "restore_replicas"]


def kill_replicas(count: int | None = None, percentage: float | None = None, graceful: bool = False,
                  group: str = "audit-service", allow_all: bool = False, duration: float | None = None,
                  configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Kill ``count`` (or ``percentage`` %) of the RUNNING replicas, chosen at random.

    Args:
        count: how many replicas to kill (give this or ``percentage``).
        percentage: share of all replicas, rounded up, at least one.
        graceful: ``false`` (default): SIGKILL, supervisord restarts them like crashed pods;
            ``true``: stop them gracefully, then start them again (after ``duration`` if given).
        group: supervisor group of the replicas (``audit-service``); any group works.
        allow_all: lift the blast-radius limit (all but one survive, ``max_replicas_killed``).
        duration: graceful only: seconds they stay down before a detached timer starts them.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (``killed``: the
    programs, ``pids``, ``of``: group size); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: both or neither of count/percentage, a number out of range, unknown group,
            fewer RUNNING replicas than asked, blast radius exceeded, stack not running (nothing is
            injected in these cases), or a kill failed (undone at once).
    """
    fault = "kill_replicas"
    count, percentage = check.count_or_percentage(fault, count, percentage)
    graceful, allow_all = check.boolean(fault, "graceful", graceful), check.boolean(fault, "allow_all", allow_all)
    group, duration = check.name(fault, "group", group), check.duration(fault, duration)
    check.only_with(fault, "duration", duration, graceful, "graceful=true",
                    "a SIGKILLed replica is restarted at once, as the kubelet restarts a pod")
    return engine.inject(__name__, "kill_replicas",
                         {"count": count, "percentage": percentage, "graceful": graceful, "group": group,
                          "allow_all": allow_all, "duration": duration},
                         "restore_replicas", {"group": group}, duration, configuration, secrets,
                         instant=not graceful)  # a SIGKILL is over at once; supervisord restarts


def restore_replicas(group: str = "audit-service", configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Make sure every replica of ``group`` is RUNNING and answers on its port; idempotent.

    Args:
        group: supervisor group of the replicas.

    Returns ``{"fault", "target", "reverted_entries", "details"}`` (per replica: "started" or "was RUNNING").

    Raises:
        ActivityFailed: unknown group, or a replica not RUNNING and ready within 120 s.
    """
    group = check.name("restore_replicas", "group", group)
    return engine.remove(__name__, "restore_replicas", {"group": group}, configuration, secrets)
