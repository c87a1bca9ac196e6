"""ClickHouse stall: the server is frozen (SIGSTOP) for a while, then resumed (SIGCONT).

Clients can still connect (the kernel accepts) but get no answer: the
signature of a long GC pause, a stuck disk or an overloaded node. A detached
timer sends SIGCONT at expiry even if the runner dies. On an ``ha`` stack
``replica`` picks one of the four ClickHouse servers (two shards of two replicas; its
shard's other replica keeps taking writes). On
Kubernetes the signals are sent inside the ClickHouse pods through pods/exec.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["resume_clickhouse", "stall_clickhouse"]


def stall_clickhouse(duration: float | None = 10.0, replica: int | None = None,
                     configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Freeze the ClickHouse server with SIGSTOP for ``duration`` seconds.

    Args:
        duration: seconds until a detached timer sends SIGCONT (default 10); ``null`` keeps it
            frozen until ``resume_clickhouse`` (or the watchdog, if the runner dies).
        replica: server index (ha profile: 0..3, two shards of two replicas; minimal: only 0);
            ``null`` means 0. Kubernetes:
            the pod ordinal (``clickhouse-1`` is 1); ``null`` stalls every Running ClickHouse pod.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (pid stopped);
    on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: a bad ``duration`` or ``replica``, a replica this stack lacks, ClickHouse not
            RUNNING or already stopped, stack not running (nothing is injected in these cases), or the
            signal failed.
    """
    fault = "stall_clickhouse"
    duration, replica = check.duration(fault, duration), check.optional_index(fault, "replica", replica)
    return engine.inject(__name__, "stall_clickhouse", {"duration": duration, "replica": replica},
                         "resume_clickhouse", {"replica": replica}, duration, configuration, secrets, instant=False)


def resume_clickhouse(replica: int | None = None, configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Send SIGCONT to the ClickHouse server (and any pid a stall recorded); idempotent.

    Args:
        replica: replica index whose server is resumed (``null``: every replica); locally, pids
            recorded by open stalls on this stack are resumed in any case. Kubernetes: the pod ordinal.

    Returns ``{"fault", "target", "reverted_entries", "details"}`` (``details.resumed``: pids that
    were stopped).

    Raises:
        ActivityFailed: the signal could not be sent.
    """
    replica = check.optional_index("resume_clickhouse", "replica", replica)
    return engine.remove(__name__, "resume_clickhouse", {"replica": replica}, configuration, secrets)
