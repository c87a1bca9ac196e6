"""What every checker shares: the violation record, severities and tumbling windows."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from sqlaudit.events import SqlEvent

__all__ = ["Checker", "Severity", "TumblingWindows", "Violation"]


class Severity(StrEnum):
    """Severity of a violation; stored as text in ``violations.severity``."""

    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True)
class Violation:
    """One checker verdict about one event; the store's key is ``(event_id, checker)``."""

    event_id: uuid.UUID
    checker: str
    severity: Severity
    app: str
    database: str
    message: str
    produced_at_ms: int


class Checker(ABC):
    """A checker looks at events one by one, in partition order, and returns violations.

    ``partition`` lets stateful checkers keep their state per Kafka partition, so that
    :meth:`forget` can drop exactly the state of partitions this replica no longer owns.
    """

    name: str = ""

    @abstractmethod
    def check(self, partition: int, event: SqlEvent) -> Violation | None:
        """The violation ``event`` causes, or ``None``."""

    def forget(self, partitions: Iterable[int]) -> None:  # noqa: B027 - stateless checkers keep nothing
        """Drop the state kept for ``partitions`` (after a revocation)."""

    def violation(self, event: SqlEvent, severity: Severity, message: str) -> Violation:
        return Violation(event_id=event.event_id, checker=self.name, severity=severity, app=event.app,
                         database=event.database, message=message, produced_at_ms=event.produced_at)


S = TypeVar("S")


@dataclass
class _Partition(Generic[S]):
    newest_ms: int = 0
    windows: dict[tuple[object, int], S] = field(default_factory=dict)


class TumblingWindows(Generic[S]):
    """Per-partition state of tumbling windows on ``produced_at``, aligned to the epoch.

    The window of an event is ``produced_at // window_ms``. A window is closed (its state
    dropped, later events for it ignored as *late*) once the newest ``produced_at`` seen on
    the partition is more than ``retention_ms`` past the window's end.
    """

    def __init__(self, window_ms: int, retention_ms: int, factory: type[S]) -> None:
        self.window_ms = window_ms
        self.retention_ms = retention_ms
        self.factory = factory
        self._parts: dict[int, _Partition[S]] = {}
        self.late = 0

    def get(self, partition: int, key: object, produced_at: int) -> S | None:
        """State of ``key``'s window for this event, or ``None`` when the window is closed (late event)."""
        part = self._parts.setdefault(partition, _Partition())
        window = produced_at // self.window_ms
        if produced_at > part.newest_ms:
            part.newest_ms = produced_at
            self._evict(part)
        if (window + 1) * self.window_ms + self.retention_ms < part.newest_ms:
            self.late += 1
            return None
        state = part.windows.get((key, window))
        if state is None:
            state = part.windows[(key, window)] = self.factory()
        return state

    def _evict(self, part: _Partition[S]) -> None:
        # Cheap amortised eviction: only when the dict has grown.
        if len(part.windows) < 1024:
            return
        horizon = part.newest_ms - self.retention_ms
        for k in [k for k in part.windows if (k[1] + 1) * self.window_ms < horizon]:
            del part.windows[k]

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._parts.pop(p, None)

    def size(self) -> int:
        return sum(len(p.windows) for p in self._parts.values())
