"""How many replicas or pods a kill takes: the same rule on every target."""

import math

from chaoslib.exceptions import ActivityFailed


def how_many(count: int | None, percentage: float | None, members: int) -> int:
    """Pods to kill: ``count``, or ``ceil(percentage% of members)`` (at least 1).

    The public activity has checked that exactly one is given and in range
    (:func:`faults.arguments.count_or_percentage`)."""
    if count is not None:
        return count
    assert percentage is not None
    return max(1, math.ceil(members * percentage / 100.0 - 1e-9))


def check_blast_radius(what: str, n: int, members: int, available: list[str], cap: int | None, allow_all: bool,
                       verb: str, state: str = "RUNNING") -> None:
    """Refuse to ``verb`` (kill, hang) ``n`` of ``members`` replicas unless one stays unharmed: at most all but
    one, capped by ``max_replicas_killed`` (``cap``), and at least one of ``available`` (those still serving)
    left; ``allow_all`` lifts both. Then ``n`` must not exceed what is available. Raises ``ActivityFailed``."""
    limit = members - 1 if cap is None else min(members - 1, cap)
    if not allow_all:
        if n > limit:
            raise ActivityFailed(f"{what}: blast radius: {n} of {members} exceeds the limit of {limit} "
                                 f"(all but one, capped by max_replicas_killed); pass allow_all=true to {verb} more")
        if len(available) - n < 1:
            raise ActivityFailed(f"{what}: blast radius: only {len(available)} of {members} are {state} "
                                 f"({sorted(available)}); {verb}ing {n} would leave none; pass allow_all=true to do "
                                 "it anyway")
    if n > len(available):
        raise ActivityFailed(f"{what}: {n} requested but only {len(available)} {state}: {sorted(available)}")
