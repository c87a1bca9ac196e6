"""ActualImpact: an UPDATE or DELETE that changed more rows than a threshold."""

from __future__ import annotations

from sqlaudit.checkers.base import Checker, Severity, Violation
from sqlaudit.config import ActualImpactConfig
from sqlaudit.events import SqlEvent, SqlType

__all__ = ["ActualImpactChecker"]

_DML = frozenset({SqlType.UPDATE, SqlType.DELETE})


class ActualImpactChecker(Checker):
    """For UPDATE/DELETE only: WARNING when ``rows_affected > threshold_rows``, CRITICAL when
    ``rows_affected > critical_rows``. Stateless."""

    name = "ActualImpact"

    def __init__(self, config: ActualImpactConfig) -> None:
        self.config = config

    def check(self, partition: int, event: SqlEvent) -> Violation | None:
        if event.sql_type not in _DML:
            return None
        c = self.config
        if event.rows_affected > c.critical_rows:
            return self.violation(event, Severity.CRITICAL, f"{event.sql_type} changed {event.rows_affected} rows "
                                                            f"> critical {c.critical_rows}")
        if event.rows_affected > c.threshold_rows:
            return self.violation(event, Severity.WARNING, f"{event.sql_type} changed {event.rows_affected} rows "
                                                           f"> threshold {c.threshold_rows}")
        return None
