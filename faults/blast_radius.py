"""How many replicas or pods a kill takes: the same rule on every target."""

import math

from chaoslib.exceptions import ActivityFailed


def how_many(count: int | None, percentage: float | None, members: int, what: str) -> int:
    """Pods to kill: ``count``, or ``ceil(percentage% of members)`` (at least 1)."""
    if (count is None) == (percentage is None):
        raise ActivityFailed(f"{what}: give exactly one of count or percentage")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ActivityFailed(f"{what}: count={count!r} must be an integer >= 1")
        return count
    if isinstance(percentage, bool) or not isinstance(percentage, int | float) or not 0 < percentage <= 100:
        raise ActivityFailed(f"{what}: percentage={percentage!r} must be a number in (0, 100]")
    return max(1, math.ceil(members * float(percentage) / 100.0 - 1e-9))
