"""Per-process rate control for the Locust users: a shared per-user rate and an event budget.

Each Locust process (standalone, or each worker in distributed mode) holds one
:class:`RateControl`. The load shape sets the per-user rate (``total rate /
total users``, identical on every worker, sent as a custom message) and every
user paces itself with a :class:`Pacer`, a token bucket on the monotonic clock
that catches up after a short stall but never bursts more than ``max_lag``
seconds' worth of events.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

__all__ = ["Pacer", "RateControl", "worker_share"]


@dataclass
class RateControl:
    """The per-user rate of this process and its remaining event budget (``None``: unlimited)."""

    per_user_rate: float = 1.0
    budget: int | None = None
    taken: int = 0
    exhausted: bool = field(default=False, init=False)

    def take(self) -> bool:
        """Claim one event from the budget; ``False`` once it is spent."""
        if self.budget is not None and self.taken >= self.budget:
            self.exhausted = True
            return False
        self.taken += 1
        return True


@dataclass
class Pacer:
    """Token bucket: ``delay()`` is how long to wait before the next event at ``control.per_user_rate``.

    The schedule advances by ``1 / rate`` per event (so a rate change takes effect
    at the next event); if the user fell more than ``max_lag`` seconds behind (a
    stall, a blocked ``send``), the debt is forgiven rather than paid in a burst.
    """

    control: RateControl
    max_lag: float = 1.0
    _next: float | None = None

    def delay(self) -> float:
        now = time.monotonic()
        if self._next is None or self._next < now - self.max_lag:
            self._next = now
        wait = self._next - now
        self._next += 1.0 / self.control.per_user_rate
        return max(0.0, wait)


def worker_share(total: int, workers: int, index: int) -> int:
    """Events of ``total`` that worker ``index`` (0-based) of ``workers`` produces; shares sum to total."""
    if workers <= 0:
        raise ValueError(f"workers must be positive, got {workers}")
    return total // workers + (1 if index < total % workers else 0)
