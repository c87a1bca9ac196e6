"""PostgreSQL failover.

Minimal profile (one server): there is nothing to fail over to, so the fault is
an outage of the primary: ``stop`` (fast shutdown, down until the expiry or the
remove) or ``kill`` (SIGKILL of the server's process group, supervisord restarts
it and PostgreSQL runs crash recovery). HA profile (Patroni pair): a
switchover, a hard kill or a stop of the current leader, behind the same activity.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["fail_over_postgres", "restore_postgres"]

METHODS = ("stop", "kill", "switchover")


def fail_over_postgres(method: str = "stop", duration: float | None = None,
                       configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Take the PostgreSQL primary away.

    Args:
        method: ``stop`` (default): stop the server; ``kill``: SIGKILL it (supervisord restarts
            it at once). HA profile: ``switchover`` (Patroni REST API, leader -> streaming standby),
            ``kill`` (SIGKILL of the leader's Patroni and postmaster; the standby takes over) or
            ``stop`` (the leader's member stopped gracefully).
        duration: ``stop`` only: seconds until a detached timer starts it again; ``null`` keeps it
            down until ``restore_postgres``.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details``; on a dry run
    ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: unknown method, ``duration`` with ``kill`` or ``switchover``, postgres not
            RUNNING, HA profile without a leader or a streaming standby, stack not running (nothing
            is injected in these cases).
    """
    fault = "fail_over_postgres"
    method, duration = check.choice(fault, "method", method, METHODS), check.duration(fault, duration)
    check.only_with(fault, "duration", duration, method == "stop", "method=stop",
                    "a switchover is permanent and a killed server is restarted at once")
    return engine.inject(__name__, "fail_over_postgres", {"method": method, "duration": duration},
                         "restore_postgres", {}, duration, configuration, secrets,
                         instant=method == "kill")  # a crash: what follows is recovery


def restore_postgres(configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Make sure PostgreSQL runs and accepts connections (``SELECT 1`` as the audit user); idempotent.

    HA profile: every Patroni member RUNNING, a leader elected and the standby streaming.

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: postgres not RUNNING and accepting connections within 120 s (HA: no leader
            and streaming standby within 120 s).
    """
    return engine.remove(__name__, "restore_postgres", {}, configuration, secrets)
