"""Heap pressure: a replica's JVM heap held nearly full, as a leak does before an OutOfMemoryError.

The troubleshooting guide's OutOfMemoryError issue starts long before the kill: the heap fills, the
collector runs ever more often to free ever less, and the heap and GC alerts (§5.2 JVM) exist to page
then, while the replica still works. Here a Java agent of ours (:mod:`faults.agents`, loaded through the
JVM's attach mechanism: nothing of the service helps) holds byte arrays until the heap's occupancy after
a collection is ``fill`` of its maximum, and keeps it there, giving way when the service's own live set
grows rather than push it over. It lets go at ``duration`` by itself (the runner may be gone), or when
``release_heap`` asks. The Python reference service has no JVM: the fault refuses it before anything.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["fill_heap", "release_heap"]

MAX_DURATION_S = 900.0
MAX_CHURN_MIB_S = 512.0


def fill_heap(fill: float = 0.96, replica: str | None = None, duration: float = 150.0,
              group: str = "audit-service", churn: float = 0.0, configuration: Configuration | None = None,
              secrets: Secrets | None = None) -> dict[str, Any]:
    """Hold one replica's JVM heap at ``fill`` of its maximum for ``duration`` seconds.

    Args:
        fill: the heap's occupancy after a collection, as a share of its maximum, in [0.5, 0.99)
            (default 0.96: above the 95 % of ``CriticalHeapMemoryUsage``, with a few regions left for
            the service to allocate in).
        replica: supervisor program to hit (``audit-service-1``); ``null`` picks a RUNNING one at random.
        duration: seconds the agent holds before it lets go by itself (at most 900: a hold never outlives
            a forgotten run by long).
        group: supervisor group of the replicas.
        churn: MiB per second of small arrays the agent allocates on top, each kept alive about half a
            second (0 to 512; default 0: a leak that only holds). In a heap held nearly full, that is an
            allocation storm the collector must keep up with: collections follow each other, objects that
            survive a few are copied and promoted, and the old generation fills with garbage only a mixed
            or full collection frees, which is what ``FrequentGarbageCollection`` exists for. What the
            churn keeps alive counts in ``fill``.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details`` (``program``, ``pid``,
    ``heap_max_mb``, ``used_mb`` once the fill bit); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: an argument out of range, no RUNNING replica, a replica that is not a JVM (the
            Python reference), no JDK here (``jcmd``), the stack not running (nothing is injected in these
            cases), or the heap not filled within 20 s (undone at once).
    """
    fault = "fill_heap"
    fill = check.number(fault, "fill", fill)
    if not 0.5 <= fill < 0.99:
        raise ActivityFailed(f"{fault}: fill={fill!r}: expected a share of the heap's maximum in [0.5, 0.99)")
    seconds = check.duration(fault, duration)
    if seconds is None or seconds > MAX_DURATION_S:
        raise ActivityFailed(f"{fault}: duration={duration!r}: expected seconds in (0, {MAX_DURATION_S:.0f}]: "
                             "the agent must let go by itself")
    churn = check.number(fault, "churn", churn)
    if not 0 <= churn <= MAX_CHURN_MIB_S:
        raise ActivityFailed(f"{fault}: churn={churn!r}: expected MiB per second in [0, {MAX_CHURN_MIB_S:.0f}]")
    replica, group = check.optional_name(fault, "replica", replica), check.name(fault, "group", group)
    return engine.inject(__name__, "fill_heap",
                         {"fill": float(fill), "replica": replica, "duration": seconds, "group": group,
                          "churn": float(churn)},
                         "release_heap", {"group": group}, seconds, configuration, secrets, instant=False)


def release_heap(group: str = "audit-service", configuration: Configuration | None = None,
                 secrets: Secrets | None = None) -> dict[str, Any]:
    """Make every replica of ``group`` whose heap a hog holds let go; idempotent.

    Returns ``{"fault", "target", "reverted_entries", "details"}`` (``details.released``: the programs
    whose hog let go).

    Raises:
        ActivityFailed: a JVM refused the release.
    """
    group = check.name("release_heap", "group", group)
    return engine.remove(__name__, "release_heap", {"group": group}, configuration, secrets)
