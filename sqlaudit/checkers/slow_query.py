"""SlowQuery: a statement that ran longer than a threshold."""

from __future__ import annotations

from sqlaudit.checkers.base import Checker, Severity, Violation
from sqlaudit.config import SlowQueryConfig
from sqlaudit.events import SqlEvent

__all__ = ["SlowQueryChecker"]


class SlowQueryChecker(Checker):
    """WARNING when ``duration_ms > threshold_ms``; CRITICAL when ``duration_ms > critical_ms``. Stateless."""

    name = "SlowQuery"

    def __init__(self, config: SlowQueryConfig) -> None:
        self.config = config

    def check(self, partition: int, event: SqlEvent) -> Violation | None:
        c = self.config
        if event.duration_ms > c.critical_ms:
            return self.violation(event, Severity.CRITICAL,
                                  f"duration {event.duration_ms} ms > critical {c.critical_ms} ms")
        if event.duration_ms > c.threshold_ms:
            return self.violation(event, Severity.WARNING,
                                  f"duration {event.duration_ms} ms > threshold {c.threshold_ms} ms")
        return None
