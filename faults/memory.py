"""Memory pressure that ends in a real out-of-memory kill of an audit-service replica.

The troubleshooting guide's OOM scenario: the replica gets a memory limit of its own,
a stressor of ours allocates inside it until the kernel's OOM killer kills the
cgroup's largest process (the replica, whatever it runs: Python or a JVM), and the
supervisor (or the kubelet) restarts it with a fresh process. Nothing of the service
is asked to allocate. The remove takes the limit away and makes sure the replica
runs again.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["oom_kill_replica", "release_memory_limit"]


def oom_kill_replica(replica: str | None = None, limit_mb: int = 16, group: str = "audit-service",
                     configuration: Configuration | None = None, secrets: Secrets | None = None) -> dict[str, Any]:
    """Put one replica in a small memory cgroup and fill it until the kernel OOM-kills the replica.

    Args:
        replica: supervisor program to hit (``audit-service-1``); ``null`` picks a RUNNING one at random.
        limit_mb: the cgroup's limit, in MiB (default 16: far below what a replica uses); the
            stressor allocates up to it, so the replica is the largest process there.
        group: supervisor group of the replicas.

    Returns ``fault_id``, ``run_id``, ``journal`` and ``details`` (``program``, ``pid`` killed, the
    ``cgroup``, ``oom_kills`` the kernel counted there: the replica's, and the stressor's when
    it was still allocating); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: no memory cgroup controller writable here, no RUNNING replica, the stack
            not running (nothing injected), or the replica survived the limit for 20 s.
    """
    fault = "oom_kill_replica"
    replica, group = check.optional_name(fault, "replica", replica), check.name(fault, "group", group)
    limit_mb = check.integer(fault, "limit_mb", limit_mb, 1)
    return engine.inject(__name__, "oom_kill_replica", {"replica": replica, "limit_mb": limit_mb, "group": group},
                         "release_memory_limit", {"group": group}, None, configuration, secrets,
                         instant=True)  # the kernel kills it at once; what follows is recovery


def release_memory_limit(group: str = "audit-service", configuration: Configuration | None = None,
                         secrets: Secrets | None = None) -> dict[str, Any]:
    """Remove every memory limit this fault set on ``group`` and make sure its replicas run; idempotent.

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: a cgroup could not be removed, or a replica is not RUNNING within 120 s.
    """
    group = check.name("release_memory_limit", "group", group)
    return engine.remove(__name__, "release_memory_limit", {"group": group}, configuration, secrets)
