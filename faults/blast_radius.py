"""How many replicas or pods a kill takes: the same rule on every target."""

import math


def how_many(count: int | None, percentage: float | None, members: int) -> int:
    """Pods to kill: ``count``, or ``ceil(percentage% of members)`` (at least 1).

    The public activity has checked that exactly one is given and in range
    (:func:`faults.arguments.count_or_percentage`)."""
    if count is not None:
        return count
    assert percentage is not None
    return max(1, math.ceil(members * percentage / 100.0 - 1e-9))
