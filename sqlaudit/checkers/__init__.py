"""The checkers of the SQL Audit Service and the engine that runs them over a batch.

Firing rules, exactly: ``docs/checkers.md``. Thresholds: :mod:`sqlaudit.config`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from sqlaudit.checkers.actual_impact import ActualImpactChecker
from sqlaudit.checkers.base import Checker, Severity, TumblingWindows, Violation
from sqlaudit.checkers.error_rate import ErrorRateChecker
from sqlaudit.checkers.frequency import FrequencyChecker
from sqlaudit.checkers.normalize import normalize_sql
from sqlaudit.checkers.slow_query import SlowQueryChecker
from sqlaudit.config import CheckersConfig
from sqlaudit.events import SqlEvent

__all__ = [
    "ActualImpactChecker",
    "Checker",
    "CheckerEngine",
    "ErrorRateChecker",
    "FrequencyChecker",
    "Severity",
    "SlowQueryChecker",
    "TumblingWindows",
    "Violation",
    "build_checkers",
    "normalize_sql",
]


def build_checkers(config: CheckersConfig) -> list[Checker]:
    """The enabled checkers, in a fixed order (SlowQuery, ActualImpact, ErrorRate, Frequency)."""
    checkers: list[Checker] = []
    if config.slow_query.enabled:
        checkers.append(SlowQueryChecker(config.slow_query))
    if config.actual_impact.enabled:
        checkers.append(ActualImpactChecker(config.actual_impact))
    if config.error_rate.enabled:
        checkers.append(ErrorRateChecker(config.error_rate, config.state_retention_ms))
    if config.frequency.enabled:
        checkers.append(FrequencyChecker(config.frequency, config.state_retention_ms))
    return checkers


class CheckerEngine:
    """Runs every checker over a batch, in partition order, and times each checker."""

    def __init__(self, config: CheckersConfig) -> None:
        self.checkers = build_checkers(config)

    def evaluate(self, items: Sequence[tuple[int, SqlEvent]]) -> tuple[list[Violation], dict[str, float]]:
        """Check ``(partition, event)`` pairs (in consumption order).

        Returns the violations and, per checker name, the seconds it spent on the batch.
        """
        violations: list[Violation] = []
        durations: dict[str, float] = {}
        for checker in self.checkers:
            t0 = time.perf_counter()
            check = checker.check
            for partition, event in items:
                v = check(partition, event)
                if v is not None:
                    violations.append(v)
            durations[checker.name] = time.perf_counter() - t0
        return violations, durations

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the window state of ``partitions`` (they were revoked: their next owner rebuilds it)."""
        parts = list(partitions)
        for checker in self.checkers:
            checker.forget(parts)
