"""ClickHouse down: the server is stopped, and started again on expiry or removal.

On an ``ha`` stack ``replica`` picks one of the four ClickHouse servers (two shards of two replicas). On Kubernetes the
ClickHouse StatefulSet is scaled down (every pod, or only its highest ordinal) and back.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["start_clickhouse", "stop_clickhouse"]


def stop_clickhouse(duration: float | None = None, replica: int | None = None,
                    configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Stop the ClickHouse server (graceful stop; SIGKILL after the stop timeout).

    Args:
        duration: seconds until a detached timer starts it again; ``null`` keeps it down until
            ``start_clickhouse``.
        replica: server index (ha profile: 0..3, two shards of two replicas; minimal: only 0);
            ``null`` means 0. Kubernetes:
            a pod ordinal of the StatefulSet ``k8s_clickhouse_statefulset``, which must be its highest
            (a StatefulSet holds down only its highest ordinals); ``null`` stops every pod.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (pid stopped);
    on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: a bad ``duration`` or ``replica``, a replica this stack lacks, ClickHouse not
            RUNNING (Kubernetes: already scaled down), stack not running (nothing is injected in these
            cases), or it did not stop within 60 s.
    """
    fault = "stop_clickhouse"
    duration, replica = check.duration(fault, duration), check.optional_index(fault, "replica", replica)
    return engine.inject(__name__, "stop_clickhouse", {"duration": duration, "replica": replica},
                         "start_clickhouse", {"replica": replica}, duration, configuration, secrets, instant=False)


def start_clickhouse(replica: int | None = None, configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Make sure ClickHouse is RUNNING and its native port accepts connections; idempotent.

    Args:
        replica: replica index (``null``: 0). Kubernetes: the replica count recorded by the stop is
            put back, whichever replica it stopped.

    Returns ``{"fault", "target", "reverted_entries", "details"}``.

    Raises:
        ActivityFailed: not RUNNING and ready within 120 s.
    """
    replica = check.optional_index("start_clickhouse", "replica", replica)
    return engine.remove(__name__, "start_clickhouse", {"replica": replica}, configuration, secrets)
