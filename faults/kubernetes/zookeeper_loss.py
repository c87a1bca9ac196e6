"""Kubernetes backend of :mod:`faults.zookeeper_loss`: refused, with the reason.

A staging cluster's ClickHouse may coordinate through ZooKeeper or ClickHouse Keeper, in a namespace
and under names this suite's settings do not describe (``k8s_*`` selectors cover the audit service's
three edges only); stopping the wrong ensemble would not be a test. Run the scenario on the local
``ha`` profile.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

WHY = ("lose_zookeeper: no kubernetes backend: the suite's settings do not name a staging cluster's ZooKeeper or "
       "ClickHouse Keeper; run the ZooKeeper-loss scenario on the local ha profile (`resilience up --profile ha`)")


def lose_zookeeper(duration: float | None = None, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Refused before anything is touched (see the module doc)."""
    raise ActivityFailed(WHY)


def restore_zookeeper(configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Nothing to undo: the kubernetes backend never stops ZooKeeper."""
    return {"changed": "nothing to undo: the kubernetes backend never stops ZooKeeper", "would": "nothing"}
