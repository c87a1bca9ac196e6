"""Hang audit-service replicas: each process frozen (SIGSTOP), alive but not answering, until resumed (SIGCONT).

A crash is restarted by supervisord or the kubelet at once; a replica that *hangs* (a deadlock, a stuck
disk, a stop-the-world pause that never ends) keeps its process, its port and its place in the consumer group
until the session times out, and only its liveness probe can restart it. This fault makes that hang: the
chosen replicas' process groups get SIGSTOP (the kernel still completes TCP handshakes on their ports, nothing
answers). Locally the liveness prober of the stack (``stack/liveness.py``, the kubelet's part) must then
restart them within the probe timing of the StatefulSet manifest; the experiment ``service_hang`` judges it.

The remove sends SIGCONT to every hung process *that is still the one the fault stopped* (same pid and start
time): a replica that liveness restarted meanwhile is left alone (its pid is gone or is another process), so
the rollback is idempotent and never signals a stranger. A ``duration`` resumes them by itself. Never more
replicas than the blast radius allows (all but one, capped by ``max_replicas_killed``) unless ``allow_all``.
On Kubernetes the service container's processes are frozen through pods/exec and the kubelet's own liveness probe
must restart the container; the pods must share their process namespace (docs/faults.md, "A hang on Kubernetes").
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["hang_replicas", "resume_replicas"]


def hang_replicas(count: int | None = None, percentage: float | None = None, group: str = "audit-service",
                  allow_all: bool = False, duration: float | None = None,
                  configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Freeze ``count`` (or ``percentage`` %) of the RUNNING replicas, chosen at random, with SIGSTOP.

    Args:
        count: how many replicas to hang (give this or ``percentage``).
        percentage: share of all replicas, rounded up, at least one.
        group: supervisor group of the replicas (``audit-service``).
        allow_all: lift the blast-radius limit (all but one stay answering, ``max_replicas_killed``).
        duration: seconds until a detached timer resumes those still hung; ``null`` keeps them hung until
            ``resume_replicas`` (or the watchdog, if the runner dies), or until liveness restarts them.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (``hung``: the programs,
    ``pids`` and ``create_times`` per program, ``of``: group size); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: both or neither of count/percentage, a number out of range, unknown group, fewer
            RUNNING and answering replicas than asked, blast radius exceeded, stack not running (nothing is
            injected in these cases), or a signal failed (undone at once).
    """
    fault = "hang_replicas"
    count, percentage = check.count_or_percentage(fault, count, percentage)
    allow_all, group = check.boolean(fault, "allow_all", allow_all), check.name(fault, "group", group)
    duration = check.duration(fault, duration)
    return engine.inject(__name__, "hang_replicas",
                         {"count": count, "percentage": percentage, "group": group, "allow_all": allow_all,
                          "duration": duration},
                         "resume_replicas", {"group": group}, duration, configuration, secrets, instant=False)


def resume_replicas(group: str = "audit-service", configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """SIGCONT every replica of ``group`` a hang stopped that is still that same process; idempotent.

    Args:
        group: supervisor group of the replicas.

    Returns ``{"fault", "target", "reverted_entries", "details"}`` (``details.resumed``: pids that were still
    stopped and got SIGCONT; ``details.restarted``: programs whose hung pid is gone, restarted meanwhile).

    Raises:
        ActivityFailed: a signal could not be sent.
    """
    group = check.name("resume_replicas", "group", group)
    return engine.remove(__name__, "resume_replicas", {"group": group}, configuration, secrets)
