"""Frequency: the same normalised statement of one app run too often within a window."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlaudit.checkers.base import Checker, Severity, TumblingWindows, Violation
from sqlaudit.checkers.normalize import normalize_sql
from sqlaudit.config import FrequencyConfig
from sqlaudit.events import SqlEvent

__all__ = ["FrequencyChecker"]


@dataclass
class _Count:
    n: int = 0


class FrequencyChecker(Checker):
    """Per (partition, app, normalised statement, window): count occurrences in partition order;
    the ``threshold + 1``-th gets a WARNING and the ``critical + 1``-th a CRITICAL."""

    name = "Frequency"

    def __init__(self, config: FrequencyConfig, retention_ms: int) -> None:
        self.config = config
        self.windows: TumblingWindows[_Count] = TumblingWindows(config.window_ms, retention_ms, _Count)
        self._norm_cache: dict[str, str] = {}

    def _normalize(self, sql: str) -> str:
        norm = self._norm_cache.get(sql)
        if norm is None:
            if len(self._norm_cache) > 50000:
                self._norm_cache.clear()
            norm = self._norm_cache[sql] = normalize_sql(sql)
        return norm

    def check(self, partition: int, event: SqlEvent) -> Violation | None:
        norm = self._normalize(event.sql)
        count = self.windows.get(partition, (event.app, norm), event.produced_at)
        if count is None:
            return None
        count.n += 1
        c = self.config
        window = event.produced_at // c.window_ms
        if count.n == c.critical + 1:
            return self.violation(event, Severity.CRITICAL, f"app {event.app}: {count.n} runs in window {window} "
                                                            f"> critical {c.critical}: {norm[:200]}")
        if count.n == c.threshold + 1 and c.threshold < c.critical:
            return self.violation(event, Severity.WARNING, f"app {event.app}: {count.n} runs in window {window} "
                                                           f"> threshold {c.threshold}: {norm[:200]}")
        return None

    def forget(self, partitions: Iterable[int]) -> None:
        self.windows.forget(partitions)
