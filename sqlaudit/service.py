"""The consumer loop of the SQL Audit Service: poll, check, write, commit.

Guarantees (at-least-once):

* An offset is committed only after every record below it is durable: valid events in
  ClickHouse, their violations in PostgreSQL, invalid records in the dead-letter topic.
* A failed write is retried with exponential backoff, forever; meanwhile the assigned
  partitions are paused and ``poll`` keeps being called (nothing new is fetched), so the
  replica stays in the group and the lag grows instead of records being dropped.
* On revocation, the offsets already durable are committed (awaited before the rebalance
  goes on); records of revoked partitions that are not yet durable are released without a
  commit, so their next owner reads them again.
* On SIGTERM (:meth:`AuditService.stop`) the loop stops polling, makes the current batch
  durable, commits, and leaves the group, within ``shutdown_timeout_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from sqlaudit.checkers import CheckerEngine, Violation
from sqlaudit.config import CheckersConfig, Settings
from sqlaudit.events import InvalidEvent, decode_event, now_ms
from sqlaudit.health import Health, SinkMonitor
from sqlaudit.metrics import Metrics
from sqlaudit.sinks import SinkError
from sqlaudit.sinks.clickhouse import ClickHouseSink, EventRow, unstorable
from sqlaudit.sinks.dlq import DeadLetter, DeadLetterSink
from sqlaudit.sinks.postgres import PostgresSink

__all__ = ["AuditService", "Batch"]

logger = logging.getLogger(__name__)

SINKS = ("clickhouse", "postgres", "dlq")


def failure_reason(reason: str) -> str:
    """Metric label of an :class:`InvalidEvent` reason: ``not_json``, ``empty`` or ``invalid_field``."""
    if reason.startswith("not JSON"):
        return "not_json"
    if reason.startswith("empty"):
        return "empty"
    return "invalid_field"


@dataclass
class Batch:
    """Records polled but not yet durable, and what has been written of them so far."""

    rows: list[EventRow] = field(default_factory=list)
    consumed_at: list[float] = field(default_factory=list)  # monotonic, parallel to rows
    letters: list[DeadLetter] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)  # next offset to commit
    done: set[str] = field(default_factory=set)
    evaluated: bool = False
    records: int = 0
    opened: float = field(default_factory=time.monotonic)

    def empty(self) -> bool:
        return not self.offsets

    def drop_partitions(self, partitions: set[int]) -> dict[int, int]:
        """Release the records of ``partitions`` (not durable: they must be read again).

        Returns, per partition that lost records, the offset of the first one released.
        """
        first: dict[int, int] = {}
        for part, offset in [(r.partition, r.offset) for r in self.rows] + [(d.partition, d.offset)
                                                                             for d in self.letters]:
            if part in partitions and offset < first.get(part, offset + 1):
                first[part] = offset
        keep = [i for i, r in enumerate(self.rows) if r.partition not in partitions]
        self.rows = [self.rows[i] for i in keep]
        self.consumed_at = [self.consumed_at[i] for i in keep]
        self.letters = [d for d in self.letters if d.partition not in partitions]
        kept_ids = {r.event.event_id for r in self.rows}
        self.violations = [v for v in self.violations if v.event_id in kept_ids]
        self.offsets = {tp: o for tp, o in self.offsets.items() if tp.partition not in partitions}
        self.records = len(self.rows) + len(self.letters)
        return first


class _Listener(AsyncConsumerRebalanceListener):
    """Runs on kafka-python's IO loop while the consumer thread waits in ``poll``/``close``."""

    def __init__(self, service: AuditService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        offsets = self.service._release(revoked, lost=False)
        consumer = self.service._consumer
        if offsets and consumer is not None:
            try:
                await consumer.commit_async(offsets)
                self.service._committed_ok(offsets)
                logger.info("committed %s on revocation", _fmt(offsets))
            except Exception as exc:  # the next owner re-reads from the last commit: duplicates, no loss
                self.service.metrics.commit("failed")
                logger.warning("commit on revocation of %s failed: %s", _fmt(offsets), exc)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.service._assigned(assigned)

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.service._release(lost, lost=True)


def _fmt(offsets: dict[TopicPartition, OffsetAndMetadata]) -> str:
    return ", ".join(f"{tp.partition}@{om.offset}" for tp, om in sorted(offsets.items()))


class AuditService:
    """One replica: consumer group member, checkers, sinks, metrics and health."""

    def __init__(self, settings: Settings, checkers: CheckersConfig, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics(settings.replica)
        self.health = Health(self.metrics, liveness_timeout_s=settings.liveness_timeout_s)
        self.engine = CheckerEngine(checkers)
        self.metrics.init_series(SINKS, tuple(c.name for c in self.engine.checkers))
        s = settings
        self.clickhouse = ClickHouseSink(s.ch_host, s.ch_port, s.ch_database, s.replica, s.ch_user,
                                         s.ch_password.get_secret_value(), s.ch_timeout_s, s.ch_alt_hosts,
                                         s.ch_table)
        self.postgres = PostgresSink(s.pg_dsn, s.pg_password.get_secret_value(), s.replica, s.pg_timeout_s)
        self.dlq = DeadLetterSink(s.kafka_bootstrap, s.dlq_topic, s.replica, s.ch_timeout_s, s.kafka_security())
        self.monitor = SinkMonitor(self.health, {"clickhouse": self.clickhouse.ping, "postgres": self.postgres.ping},
                                   s.health_interval_s)
        self._consumer: KafkaConsumer | None = None
        self._batch = Batch()
        self._lock = threading.RLock()  # batch, checker state, offsets: consumer thread vs. rebalance listener
        self._durable: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._ever_committed = False
        self._rewind: dict[TopicPartition, int] = {}  # released on revocation, to re-read if re-assigned
        self._stop = threading.Event()
        self._paused = False
        self._late_seen: dict[str, int] = {}
        # One thread per sink: the writes of a batch run concurrently (see _write_once).
        self._writers = ThreadPoolExecutor(max_workers=len(SINKS), thread_name_prefix="sink-write")

    # ----------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask the loop to finish the current batch, commit and leave the group (signal-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> bool:
        """Consume until :meth:`stop`; returns ``True`` when the last batch was made durable and
        committed before the shutdown deadline."""
        self.monitor.start()
        clean = True
        try:
            self._consumer = self._connect()
            if self._consumer is None:
                return True  # stopped before Kafka answered
            self.health.started = True
            self.health.refresh()
            self._loop()
            self.health.stopping = True
            self.health.refresh()
            deadline = time.monotonic() + max(1.0, self.settings.shutdown_timeout_s - 3.0)
            clean = self._flush(deadline=deadline)
            if not clean:
                logger.error("shutdown deadline: %d records not durable, left uncommitted (they will be re-read)",
                             self._batch.records)
        finally:
            self.health.stopping = True
            self._close()
        return clean

    # ------------------------------------------------------------------ kafka
    def _connect(self) -> KafkaConsumer | None:
        s = self.settings
        backoff = s.retry_backoff_ms / 1000
        while not self._stop.is_set():
            self.health.tick()
            try:
                consumer = KafkaConsumer(
                    bootstrap_servers=s.kafka_bootstrap.split(","), group_id=s.group_id,
                    client_id=f"sqlaudit-{s.replica}", enable_auto_commit=False, auto_offset_reset="earliest",
                    max_poll_records=s.batch_size, max_poll_interval_ms=s.max_poll_interval_ms,
                    session_timeout_ms=s.session_timeout_ms, heartbeat_interval_ms=s.heartbeat_interval_ms,
                    request_timeout_ms=max(15000, s.session_timeout_ms + 5000), fetch_max_wait_ms=100,
                    max_partition_fetch_bytes=1024 * 1024, fetch_max_bytes=8 * 1024 * 1024,
                    bootstrap_timeout_ms=5000, reconnect_backoff_max_ms=2000,
                    # A topic created after we start (or grown later) is seen within seconds,
                    # not after the client's 5-minute default.
                    metadata_max_age_ms=5000, **s.kafka_security())
                if not self._wait_for_topic(consumer):
                    consumer.close()
                    return None
                consumer.subscribe([s.topic], listener=_Listener(self))
                logger.info("joined as %s to group %s on %s via %s", s.replica, s.group_id, s.topic, s.kafka_bootstrap)
                return consumer
            except KafkaError as exc:
                logger.warning("Kafka at %s not reachable (%s); retrying in %.1f s", s.kafka_bootstrap, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, s.retry_backoff_max_ms / 1000)
        return None

    def _wait_for_topic(self, consumer: KafkaConsumer) -> bool:
        """Block until the events topic is in the cluster metadata (or we are told to stop).

        Joining the group before the topic exists gets an empty assignment that the
        client only revisits on its next metadata refresh; a replica started alongside
        the broker must not sit idle (and unready) for that long.
        """
        s = self.settings
        logged = False
        while not self._stop.is_set():
            self.health.tick()
            try:
                if consumer.partitions_for_topic(s.topic):
                    return True
            except KafkaError as exc:
                logger.debug("metadata for %s not available yet: %s", s.topic, exc)
            if not logged:
                logger.info("waiting for topic %s to exist before joining group %s", s.topic, s.group_id)
                logged = True
            self._stop.wait(0.5)
        return False

    def _loop(self) -> None:
        s = self.settings
        consumer = self._consumer
        assert consumer is not None
        interval = s.flush_interval_ms / 1000
        while not self._stop.is_set():
            self.health.tick()
            batch = self._batch
            due = batch.opened + interval - time.monotonic()
            timeout_ms = 200 if batch.empty() else int(max(0.0, due) * 1000)
            room = max(1, s.batch_size - batch.records)
            records = consumer.poll(timeout_ms=timeout_ms, max_records=room)
            self.health.set_partitions(tuple(sorted(tp.partition for tp in consumer.assignment())))
            if records:
                self._ingest(records)
            batch = self._batch
            if not batch.empty() and (batch.records >= s.batch_size or time.monotonic() - batch.opened >= interval):
                self._flush()

    def _ingest(self, records: dict[TopicPartition, list[Any]]) -> None:
        now = time.monotonic()
        with self._lock:
            batch = self._batch
            if batch.empty():
                batch.opened = now
            n = 0
            for tp, recs in records.items():
                for rec in recs:
                    n += 1
                    try:
                        event = decode_event(rec.value)
                        problem = unstorable(event)
                        if problem:
                            raise InvalidEvent(problem)
                    except InvalidEvent as exc:
                        self.metrics.failed(failure_reason(exc.reason))
                        logger.warning("invalid record %s[%d]@%d -> %s: %s", tp.topic, tp.partition, rec.offset,
                                       self.settings.dlq_topic, exc.reason)
                        batch.letters.append(DeadLetter(tp.topic, tp.partition, rec.offset, rec.key, rec.value,
                                                        exc.reason))
                    else:
                        batch.rows.append(EventRow(event, tp.partition, rec.offset))
                        batch.consumed_at.append(now)
                    batch.offsets[tp] = rec.offset + 1
            batch.records += n
            self.metrics.consumed(n)
            self.metrics.pending(batch.records)

    # ------------------------------------------------------------------ flush
    def _evaluate(self, batch: Batch) -> None:
        violations, durations = self.engine.evaluate([(r.partition, r.event) for r in batch.rows])
        batch.violations = violations
        batch.evaluated = True
        for name, seconds in durations.items():
            self.metrics.checker_duration(name, seconds)
        for checker in self.engine.checkers:
            late = getattr(getattr(checker, "windows", None), "late", 0)
            if late != self._late_seen.get(checker.name, 0):
                self.metrics.late(checker.name, late - self._late_seen.get(checker.name, 0))
                self._late_seen[checker.name] = late

    def _write_sink(self, name: str, write: Callable[[Any], None], items: Sequence[Any]) -> str:
        """One sink's write of one batch, timed; returns ``name``. Raises :class:`SinkError`."""
        t0 = time.perf_counter()
        try:
            write(items)
        except SinkError:
            self.metrics.write_error(name)
            raise
        self.metrics.write(name, time.perf_counter() - t0)
        if name != "dlq":
            self.health.set_sink(name, True)
        return name

    def _write_once(self, batch: Batch) -> None:
        """Write what is not yet durable of ``batch`` to every sink that still needs it.

        The sinks are independent stores (nothing in one refers to a write in another), so the
        writes of a batch run at the same time: a batch is durable after the slowest write, not
        after the sum of them. Every write that succeeds is kept (``batch.done``) even when
        another one fails; only the failed ones are retried. Raises the first :class:`SinkError`.
        """
        with self._lock:
            if not batch.evaluated:
                self._evaluate(batch)
            steps: tuple[tuple[str, Callable[[Any], None], Sequence[Any]], ...] = (
                ("clickhouse", self.clickhouse.write, batch.rows),
                ("postgres", self.postgres.write, batch.violations),
                ("dlq", self.dlq.write, batch.letters))
            todo = [step for step in steps if step[0] not in batch.done]
            batch.done.update(name for name, _, items in todo if not items)  # nothing to write
            todo = [step for step in todo if step[2]]
            if len(todo) == 1:
                batch.done.add(self._write_sink(*todo[0]))
                return
            futures = [self._writers.submit(self._write_sink, *step) for step in todo]
            errors: list[SinkError] = []
            for future in futures:
                try:
                    batch.done.add(future.result())
                except SinkError as exc:
                    errors.append(exc)
            for other in errors[1:]:  # the first one is reported by the caller
                if other.sink != "dlq":
                    self.health.set_sink(other.sink, False, str(other))
            if errors:
                raise errors[0]

    def _flush(self, deadline: float | None = None) -> bool:
        """Make the current batch durable (retrying forever, or until ``deadline``), then commit it."""
        batch = self._batch
        if batch.empty():
            return True
        backoff = self.settings.retry_backoff_ms / 1000
        attempt = 0
        while not batch.empty():
            try:
                self._write_once(batch)
                break
            except SinkError as exc:
                attempt += 1
                if exc.sink != "dlq":
                    self.health.set_sink(exc.sink, False, str(exc))
                if attempt == 1 or attempt % 10 == 0:
                    logger.warning("write failed (attempt %d, %d records held, consumption paused): %s",
                                   attempt, batch.records, exc)
                self._set_backpressure(True)
                wait = backoff
                if deadline is not None and time.monotonic() + wait > deadline:
                    return False
                self._idle_poll(wait)
                self.metrics.write_retry(exc.sink)
                backoff = min(backoff * 2, self.settings.retry_backoff_max_ms / 1000)
        if attempt:
            logger.info("write succeeded after %d retries; resuming consumption", attempt)
        self._set_backpressure(False)
        self._finish(batch)
        return True

    def _finish(self, batch: Batch) -> None:
        done = time.monotonic()
        wall = now_ms()
        offsets = {tp: OffsetAndMetadata(o, "", -1) for tp, o in batch.offsets.items()}
        with self._lock:
            for tp, o in batch.offsets.items():
                self._durable[tp] = o
            self._batch = Batch()
        self._commit(offsets)
        self.metrics.batch(batch.records)
        self.metrics.processed(len(batch.rows))
        self.metrics.dead_lettered(len(batch.letters))
        for r, t in zip(batch.rows, batch.consumed_at, strict=True):
            self.metrics.latency(done - t, max(0.0, (wall - r.event.produced_at) / 1000))
        for v in batch.violations:
            self.metrics.violation(v.checker, v.severity.value)
        self.metrics.pending(0)

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        consumer = self._consumer
        if consumer is None or not offsets:
            return
        owned = consumer.assignment()
        offsets = {tp: om for tp, om in offsets.items() if tp in owned}
        if not offsets:
            return
        t0 = time.perf_counter()
        try:
            consumer.commit(offsets, timeout_ms=5000)
            self.metrics.commit_latency(time.perf_counter() - t0)
            self._committed_ok(offsets)
        except KafkaError as exc:  # e.g. a rebalance: the revocation listener retries, else duplicates
            self.metrics.commit("failed")
            logger.warning("offset commit %s failed: %s", _fmt(offsets), exc)

    def _committed_ok(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        first = not self._ever_committed
        self._ever_committed = True
        with self._lock:
            for tp, om in offsets.items():
                self._committed[tp] = om.offset
        self.metrics.commit("ok")
        if first:  # the moment this process is useful again: ground truth for RTO measurements
            logger.info("first offset commit since start: %s", _fmt(offsets))

    # ------------------------------------------------------------ backpressure
    def _set_backpressure(self, on: bool) -> None:
        consumer = self._consumer
        if on == self._paused or consumer is None:
            return
        self._paused = on
        self.health.backpressure = on
        self.health.refresh()
        self.metrics.paused(on)
        if on:
            consumer.pause(*consumer.assignment())
        else:
            consumer.resume(*consumer.paused())

    def _idle_poll(self, seconds: float) -> None:
        """Wait ``seconds`` while staying in the group: ``poll`` with every partition paused."""
        consumer = self._consumer
        assert consumer is not None
        end = time.monotonic() + seconds
        while True:
            self.health.tick()
            left = end - time.monotonic()
            if left <= 0:
                return
            consumer.pause(*consumer.assignment())
            records = consumer.poll(timeout_ms=int(left * 1000) + 1, max_records=1)
            self.health.set_partitions(tuple(sorted(tp.partition for tp in consumer.assignment())))
            for tp, recs in records.items():  # should not happen (paused); never lose them
                consumer.seek(tp, min(r.offset for r in recs))

    # -------------------------------------------------------------- rebalance
    def _release(self, partitions: Iterable[TopicPartition], lost: bool) -> dict[TopicPartition, OffsetAndMetadata]:
        """Revocation (or loss): drop non-durable records and checker state of ``partitions``; return
        the durable offsets still to commit (none when ``lost``)."""
        tps = set(partitions)
        parts = {tp.partition for tp in tps}
        with self._lock:
            dropped = self._batch.drop_partitions(parts)
            # kafka-python keeps the fetch position of a partition that is re-assigned to the same
            # member: without a rewind the released records would be skipped, then committed past.
            for tp in tps:
                if tp.partition in dropped:
                    self._rewind[tp] = min(dropped[tp.partition], self._rewind.get(tp, dropped[tp.partition]))
            self.engine.forget(parts)
            offsets = {} if lost else {
                tp: OffsetAndMetadata(o, "", -1) for tp, o in self._durable.items()
                if tp in tps and self._committed.get(tp) != o}
            for tp in tps:
                self._durable.pop(tp, None)
                self._committed.pop(tp, None)
            self.metrics.pending(self._batch.records)
        if parts:
            self.metrics.rebalance("lost" if lost else "revoked")
            logger.info("partitions %s %s; non-durable records released from offsets %s", sorted(parts),
                        "lost" if lost else "revoked", dropped or "{}")
        return offsets

    def _assigned(self, assigned: set[TopicPartition]) -> None:
        self.metrics.rebalance("assigned")
        logger.info("partitions %s assigned", sorted(tp.partition for tp in assigned))
        consumer = self._consumer
        with self._lock:
            rewind, self._rewind = self._rewind, {}
        if consumer is None:
            return
        for tp, offset in rewind.items():
            if tp in assigned:  # ours again: read the released records again
                consumer.seek(tp, offset)
                logger.info("partition %d: rewound to offset %d (released on revocation)", tp.partition, offset)
        if self._paused and assigned:
            consumer.pause(*assigned)  # still in backpressure: fetch nothing new

    # ------------------------------------------------------------------ close
    def _close(self) -> None:
        consumer = self._consumer
        if consumer is not None:
            try:
                consumer.close(autocommit=False, timeout_ms=3000)  # revocation listener commits, then LeaveGroup
                logger.info("left group %s", self.settings.group_id)
            except Exception as exc:
                logger.warning("consumer close: %s", exc)
            self._consumer = None
        self.monitor.stop()
        self._writers.shutdown(wait=True)
        for sink in (self.dlq, self.clickhouse, self.postgres):
            try:
                sink.close()
            except Exception as exc:
                logger.warning("closing %s: %s", sink.name, exc)
