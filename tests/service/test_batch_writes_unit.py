"""How the consumer loop batches and writes, without a stack: the flush rule on a fake clock and
the concurrent sink writes of a batch (the latency they cost is measured by
``benchmarks/baseline_latency.py``, never asserted here).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from kafka import TopicPartition

from sqlaudit import service as service_module
from sqlaudit.checkers import Violation
from sqlaudit.checkers.base import Severity
from sqlaudit.config import CheckersConfig, Settings
from sqlaudit.events import SqlEvent, SqlType
from sqlaudit.service import AuditService, Batch
from sqlaudit.sinks import SinkError
from sqlaudit.sinks.clickhouse import EventRow


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ concurrent sink writes
class FakeSink:
    """Records calls; ``write`` runs ``behaviour(items)`` (default: succeed)."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        self.calls: list[int] = []
        self.behaviour: Any = None

    def write(self, items: Sequence[Any]) -> None:
        self.calls.append(len(items))
        if self.behaviour is not None:
            self.behaviour(items)

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def offline_service(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An :class:`AuditService` whose three sinks are :class:`FakeSink` (nothing is contacted)."""
    for name in ("ClickHouseSink", "PostgresSink", "DeadLetterSink"):
        monkeypatch.setattr(service_module, name, FakeSink)
    svc = AuditService(Settings(replica="unit"), CheckersConfig())
    try:
        yield svc
    finally:
        svc._writers.shutdown(wait=True)


def _event() -> SqlEvent:
    return SqlEvent(event_id=uuid.uuid4(), app="a", database="d", sql="SELECT 1", sql_type=SqlType.SELECT,
                    duration_ms=1, rows_affected=0, produced_at=1_000_000)


def _batch(letters: bool = False) -> Batch:
    e = _event()
    batch = Batch(rows=[EventRow(e, 0, 7)], consumed_at=[0.0], offsets={TopicPartition("t", 0): 8}, evaluated=True)
    batch.violations = [Violation(e.event_id, "SlowQuery", Severity.WARNING, "a", "d", "slow", e.produced_at)]
    if letters:
        from sqlaudit.sinks.dlq import DeadLetter

        batch.letters = [DeadLetter("t", 0, 6, None, b"{", "not JSON")]
    batch.records = len(batch.rows) + len(batch.letters)
    return batch


def test_clickhouse_and_postgres_writes_of_a_batch_are_in_flight_together(offline_service: Any) -> None:
    """Each fake write waits at a two-party barrier: it only returns when the other write has
    started too. Written one after the other, the first write would time out at the barrier."""
    barrier = threading.Barrier(2, timeout=10)
    offline_service.clickhouse.behaviour = lambda _items: barrier.wait()
    offline_service.postgres.behaviour = lambda _items: barrier.wait()
    batch = _batch()
    offline_service._write_once(batch)
    assert batch.done == {"clickhouse", "postgres", "dlq"}
    assert offline_service.clickhouse.calls == [1] and offline_service.postgres.calls == [1]
    assert offline_service.dlq.calls == []  # nothing to dead-letter: not called


def test_a_failed_sink_is_retried_alone_and_the_other_write_is_kept(offline_service: Any) -> None:
    def down(_items: Sequence[Any]) -> None:
        raise SinkError("clickhouse", "insert of 1 rows failed: timeout")

    offline_service.clickhouse.behaviour = down
    batch = _batch(letters=True)
    with pytest.raises(SinkError, match="clickhouse"):
        offline_service._write_once(batch)
    assert batch.done == {"postgres", "dlq"}  # durable already: not written again
    offline_service.clickhouse.behaviour = None
    offline_service._write_once(batch)
    assert batch.done == {"clickhouse", "postgres", "dlq"}
    assert offline_service.clickhouse.calls == [1, 1]
    assert offline_service.postgres.calls == [1] and offline_service.dlq.calls == [1]


def test_two_failed_sinks_are_both_reported_down(offline_service: Any) -> None:
    def fail(sink: str) -> Any:
        def write(_items: Sequence[Any]) -> None:
            raise SinkError(sink, "unreachable")
        return write

    offline_service.clickhouse.behaviour = fail("clickhouse")
    offline_service.postgres.behaviour = fail("postgres")
    batch = _batch()
    with pytest.raises(SinkError):
        offline_service._write_once(batch)
    assert batch.done == {"dlq"}
    # _flush reports the raised error's sink; the other one was reported by _write_once.
    down = {s for s, up in offline_service.health.sinks_up.items() if not up}
    assert down in ({"clickhouse"}, {"postgres"})


# --------------------------------------------------------------------------- flush rule
class FakeRecord:
    def __init__(self, offset: int) -> None:
        self.offset, self.key, self.value = offset, b"a", _event().to_bytes()


class FakeConsumer:
    """``poll`` hands out scheduled records (time -> count); otherwise it "waits" its timeout on
    the fake clock. Stops the service once the clock passes ``until``."""

    def __init__(self, svc: AuditService, clock: FakeClock, schedule: dict[float, int], until: float) -> None:
        self.svc, self.clock, self.until = svc, clock, until
        self.pending = sorted(schedule.items())
        self.offset = 0

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[FakeRecord]]:
        tp = TopicPartition("sql-audit-events", 0)
        if self.pending and self.pending[0][0] <= self.clock.now + timeout_ms / 1000:
            at, n = self.pending.pop(0)
            self.clock.now = max(self.clock.now, at)
            take = min(n, max_records)
            if n > take:
                self.pending.insert(0, (at, n - take))
            recs = [FakeRecord(self.offset + i) for i in range(take)]
            self.offset += take
            return {tp: recs}
        self.clock.now += max(timeout_ms, 1) / 1000  # a real poll(0) takes some time too
        if self.clock.now >= self.until:
            self.svc.stop()
        return {}

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("sql-audit-events", 0)}


def _flushes(monkeypatch: pytest.MonkeyPatch, svc: AuditService, schedule: dict[float, int],
             until: float = 1.0) -> list[tuple[float, int]]:
    """(clock time, records) of every flush the consumer loop makes for ``schedule``."""
    clock = FakeClock()
    clock.now = 0.0
    monkeypatch.setattr(service_module.time, "monotonic", clock)
    flushed: list[tuple[float, int]] = []

    def flush(deadline: float | None = None) -> bool:
        flushed.append((round(clock.now, 2), svc._batch.records))  # 10 ms resolution: float sums
        svc._batch = Batch()
        return True

    svc._stop.clear()
    svc._batch = Batch()
    svc._consumer = FakeConsumer(svc, clock, schedule, until)
    monkeypatch.setattr(svc, "_flush", flush)
    svc._loop()
    return flushed


def test_a_lone_event_waits_the_flush_interval_of_50_ms(offline_service: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The default wait at low rates (was 200 ms): one event at 0.1 s is written at 0.15 s;
    events arriving while the batch is open join it."""
    assert offline_service.settings.flush_interval_ms == 50
    assert _flushes(monkeypatch, offline_service, {0.1: 1}) == [(0.15, 1)]
    assert _flushes(monkeypatch, offline_service, {0.1: 1, 0.13: 2, 0.16: 1}) == [(0.15, 3), (0.21, 1)]


def test_a_full_batch_is_written_without_waiting(offline_service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    size = offline_service.settings.batch_size
    assert _flushes(monkeypatch, offline_service, {0.1: size + 10}) == [(0.1, size), (0.15, 10)]
