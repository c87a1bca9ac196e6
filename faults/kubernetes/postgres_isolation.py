"""Kubernetes backend of :mod:`faults.postgres_isolation`: refused, with the reason.

Isolating one Patroni pod from the DCS and from the other members takes NetworkPolicies in the
database's namespace that allow the DCS and the peers to everyone but that pod (or a Chaos Mesh
NetworkChaos there); this suite manages neither for the database (its partitions cut the audit
service's edges only: faults/kubernetes/network_partition.py). Run the split-brain scenario on the
local ``ha`` profile.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

WHY = ("isolate_postgres_leader: no kubernetes backend: cutting one Patroni pod from the DCS and its peers needs "
       "NetworkPolicies (or Chaos Mesh) in the database's namespace, which this suite does not manage; run the "
       "split-brain scenario on the local ha profile (`resilience up --profile ha`)")


def isolate_postgres_leader(clients: str = "keep", synchronous: str = "keep", mode: str = "blackhole",
                            duration: float | None = None, configuration: Configuration | None = None,
                            secrets: Secrets | None = None) -> dict[str, Any]:
    """Refused before anything is touched (see the module doc)."""
    raise ActivityFailed(WHY)


def heal_postgres_leader(configuration: Configuration | None = None,
                         secrets: Secrets | None = None) -> dict[str, Any]:
    """Nothing to heal: the kubernetes backend never isolates."""
    return {"changed": "nothing to undo: the kubernetes backend never isolates a member", "would": "nothing"}
