"""ErrorRate: the share of failed statements of one app over a window on ``produced_at``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlaudit.checkers.base import Checker, Severity, TumblingWindows, Violation
from sqlaudit.config import ErrorRateConfig
from sqlaudit.events import SqlEvent

__all__ = ["ErrorRateChecker", "is_error"]


def is_error(event: SqlEvent) -> bool:
    """An event counts as an error when ``error_code`` is neither null nor empty."""
    return bool(event.error_code)


@dataclass
class _Counts:
    events: int = 0
    errors: int = 0
    level: int = 0  # 0 nothing fired, 1 WARNING fired, 2 CRITICAL fired


class ErrorRateChecker(Checker):
    """Per (partition, app, window): count events and errors in partition order; the event after
    which ``events >= min_events`` and ``errors / events > threshold`` first holds gets a WARNING
    (CRITICAL if the ratio is also ``> critical``); the event after which ``> critical`` first holds
    gets a CRITICAL if none was emitted yet. At most one WARNING and one CRITICAL per window."""

    name = "ErrorRate"

    def __init__(self, config: ErrorRateConfig, retention_ms: int) -> None:
        self.config = config
        self.windows: TumblingWindows[_Counts] = TumblingWindows(config.window_ms, retention_ms, _Counts)

    def check(self, partition: int, event: SqlEvent) -> Violation | None:
        counts = self.windows.get(partition, event.app, event.produced_at)
        if counts is None:
            return None
        counts.events += 1
        if is_error(event):
            counts.errors += 1
        c = self.config
        if counts.events < c.min_events or counts.level == 2:
            return None
        ratio = counts.errors / counts.events
        window = event.produced_at // c.window_ms
        detail = (f"app {event.app}: {counts.errors}/{counts.events} errors in window {window} "
                  f"({c.window_ms} ms)")
        if ratio > c.critical:
            counts.level = 2
            return self.violation(event, Severity.CRITICAL, f"{detail}, ratio {ratio:.3f} > critical {c.critical}")
        if ratio > c.threshold and counts.level == 0:
            counts.level = 1
            return self.violation(event, Severity.WARNING, f"{detail}, ratio {ratio:.3f} > threshold {c.threshold}")
        return None

    def forget(self, partitions: Iterable[int]) -> None:
        self.windows.forget(partitions)
