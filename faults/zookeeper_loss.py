"""ZooKeeper loss under ClickHouse replication: the coordinator of the replicated tables stopped.

A ``ReplicatedReplacingMergeTree`` needs ZooKeeper for every insert (block numbers, deduplication
hashes, the replication log): without it each replica turns its table read-only and refuses inserts
(``TABLE_IS_READ_ONLY``), while reads still work. The audit service must hold the batch (retry, commit
no Kafka offset) until both stores take it, and flow again once ZooKeeper is back and the replicas
have reconnected.

Local target, ``ha`` profile only (the minimal profile has no ZooKeeper). Kubernetes: refused (the
suite does not know where a staging cluster's ZooKeeper or ClickHouse Keeper runs).
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["lose_zookeeper", "restore_zookeeper"]


def lose_zookeeper(duration: float | None = None, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Stop ZooKeeper and wait until a ClickHouse replica reports its replicated table read-only.

    Args:
        duration: seconds until a detached timer starts ZooKeeper again (even if the runner dies);
            ``null`` keeps it down until :func:`restore_zookeeper`.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (``stopped_at``,
    ``readonly_after_s``: how long until the first replica reported read-only, ``replicas``: each
    replica's ``is_readonly``); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: not the ha profile, ZooKeeper not RUNNING, the kubernetes target (nothing is
            injected in these cases); no replica read-only within 60 s of the stop (ZooKeeper is
            started again at once: the fault did not bite).
    """
    duration = check.duration("lose_zookeeper", duration)
    return engine.inject(__name__, "lose_zookeeper", {"duration": duration}, "restore_zookeeper", {}, duration,
                         configuration, secrets, instant=False)


def restore_zookeeper(configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Start ZooKeeper and wait until every ClickHouse replica's table is writable again; idempotent.

    Returns ``{"fault", "target", "reverted_entries", "details"}`` (``details.readonly_cleared_s``).

    Raises:
        ActivityFailed: ZooKeeper not RUNNING, or a replica still read-only, after 120 s.
    """
    return engine.remove(__name__, "restore_zookeeper", {}, configuration, secrets)
