"""Network partition between the audit service and one of its dependencies.

Local target: toxiproxy sits on every edge of the audit service (``kafka``,
``postgres``, ``clickhouse``), so the partition hits the service only; the load
generator and the probes keep their direct paths. On the ``ha`` profile an edge has
one proxy per member (``postgres``/``postgres_2``, ``kafka``/``kafka_2``/``kafka_3``...):
the fault hits all of them, or only the one named (``edge: clickhouse_2``).
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["partition_network", "remove_partition"]

MODES = ("blackhole", "reset", "refuse")


def partition_network(edge: str, mode: str = "blackhole", duration: float | None = None,
                      configuration: Configuration | None = None,
                      secrets: Secrets | None = None) -> dict[str, Any]:
    """Cut the network between the audit service and ``edge``.

    Args:
        edge: ``kafka``, ``postgres`` or ``clickhouse`` (every member's proxy), or one
            member's proxy on the ``ha`` profile (``kafka_2``, ``postgres_2``, ``clickhouse_2``).
        mode: ``blackhole`` (default): bytes stop flowing both ways on open and new
            connections, like dropped packets (toxiproxy ``timeout`` toxics, timeout 0);
            ``reset``: connections are reset as soon as data flows (``reset_peer`` toxics);
            ``refuse``: the proxy is disabled, open connections are closed and new ones refused.
        duration: seconds until the partition heals by itself (a detached timer removes it,
            even if the runner dies); ``null`` keeps it until ``remove_partition``.

    Returns what changed: ``fault_id``, ``run_id``, ``expires_at``, ``journal`` (the entry's path)
    and ``details`` (edge, mode, toxics added); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: unknown edge or mode, the edge already partitioned, the stack or
            toxiproxy unreachable (nothing is injected in these cases), or the apply failed
            (it is undone at once).
    """
    fault = "partition_network"
    edge, mode = check.edge(fault, edge), check.choice(fault, "mode", mode, MODES)
    duration = check.duration(fault, duration)
    return engine.inject(__name__, "partition_network", {"edge": edge, "mode": mode, "duration": duration},
                         "remove_partition", {"edge": edge}, duration, configuration, secrets, instant=False)


def remove_partition(edge: str, configuration: Configuration | None = None,
                     secrets: Secrets | None = None) -> dict[str, Any]:
    """Heal the partition between the audit service and ``edge``; idempotent.

    Removes this library's partition toxics from the edge's proxies and enables them;
    a healthy edge (or a stopped stack) is success. Closes the matching journal entries.

    Args:
        edge: as given to :func:`partition_network`.

    Returns ``{"fault", "target", "reverted_entries", "details"}``; ``details.changed`` says what
    was undone ("already healed" if nothing).

    Raises:
        ActivityFailed: unknown edge, or toxiproxy unreachable while the stack runs.
    """
    edge = check.edge("remove_partition", edge)
    return engine.remove(__name__, "remove_partition", {"edge": edge}, configuration, secrets)
