"""Faults against the service: a replica SIGKILLed or SIGTERMed mid-stream, a sink unreachable for 10 s.

In both, every event the producer saw acknowledged must end up in ClickHouse (counted the
dedup-safe way) and the group's lag must drain to zero.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest
import requests
from service_harness import Harness, make_event, wait_until

from sqlaudit.events import SqlEvent
from sqlaudit.queries import count_events, count_rows, event_ids

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.extended]

SLOW_MS = 600_000  # far above any SlowQuery critical threshold


class SteadyProducer(threading.Thread):
    """Produces events for ``apps`` (round robin) at about ``rate`` per second; remembers the acknowledged ones."""

    def __init__(self, service: Harness, apps: list[str], rate: float) -> None:
        super().__init__(name="steady-producer", daemon=True)
        self.service, self.apps, self.rate = service, apps, rate
        self.acked: dict[str, set[uuid.UUID]] = {a: set() for a in apps}
        self.slow: set[uuid.UUID] = set()  # acknowledged events that must yield a SlowQuery violation
        self.failed = 0
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def _on_ack(self, event: SqlEvent) -> None:
        with self._lock:
            self.acked[event.app].add(event.event_id)
            if event.duration_ms == SLOW_MS:
                self.slow.add(event.event_id)

    def _on_err(self, exc: BaseException) -> None:
        with self._lock:
            self.failed += 1

    def run(self) -> None:
        i = 0
        start = time.monotonic()
        while not self._stop_event.is_set():
            # Every 10th event is slow, so PostgreSQL gets violations to write all along.
            event = make_event(self.apps[i % len(self.apps)], sql=f"SELECT * FROM t{i % 20} WHERE id = {i}",
                               duration_ms=SLOW_MS if i % 10 == 0 else 3)
            fut = self.service.send(event)
            fut.add_callback(lambda _md, e=event: self._on_ack(e))
            fut.add_errback(self._on_err)
            i += 1
            ahead = start + i / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def stop(self) -> int:
        """Stop producing, wait for outstanding acknowledgements; return the number acknowledged."""
        self._stop_event.set()
        self.join(timeout=10)
        self.service.producer.flush(timeout=30)
        return self.total()

    def total(self) -> int:
        with self._lock:
            return sum(len(s) for s in self.acked.values())


def _assert_all_persisted(service: Harness, producer: SteadyProducer, timeout: float) -> tuple[int, int]:
    """Wait until every acknowledged event is in ClickHouse; return (distinct, physical rows)."""
    db = service.stack.ctx.ch_database
    expected = producer.total()

    def stored() -> int:
        return sum(count_events(service.ch, db, app=a) for a in producer.apps)

    wait_until(f"all {expected} acknowledged events in ClickHouse (uniqExact)", lambda: stored() >= expected,
               timeout, interval=1, seen=stored)
    for app, ids in producer.acked.items():
        got = event_ids(service.ch, db, app=app)
        assert got == ids, f"{app}: {len(ids - got)} acknowledged events missing, {len(got - ids)} unexpected"
    distinct = stored()
    rows = sum(count_rows(service.ch, db, app=a) for a in producer.apps)
    assert distinct == expected, f"dedup-safe count {distinct} != acknowledged {expected}"

    def slow_violations() -> set[uuid.UUID]:
        rows = service.pg.execute("SELECT event_id FROM violations WHERE app = ANY(%s) AND checker = 'SlowQuery'",
                                  (producer.apps,)).fetchall()
        return {r[0] for r in rows}

    got = slow_violations()
    assert got == producer.slow, (f"SlowQuery violations: {len(producer.slow - got)} missing, "
                                  f"{len(got - producer.slow)} unexpected")
    return distinct, rows


def test_sigkill_replica_mid_stream_loses_nothing(service: Harness) -> None:
    victim = service.replicas[1]
    old_pid = service.pids()[victim]
    apps = [f"kill-{uuid.uuid4().hex[:6]}-{k}" for k in range(12)]  # spread over every partition
    producer = SteadyProducer(service, apps, rate=400)
    producer.start()
    try:
        wait_until("the stream to flow (1000 events acknowledged)", lambda: producer.total() >= 1000, 30)
        os.kill(old_pid, signal.SIGKILL)
        # The supervisor restarts it, like a pod; the group rebalances (session timeout) meanwhile.
        wait_until(f"{victim} restarted with a new pid",
                   lambda: service.process_info()[victim]["statename"] == "RUNNING"
                   and service.pids()[victim] != old_pid, 60, seen=lambda: service.process_info()[victim])
        time.sleep(5)  # keep producing through the rebalance
    finally:
        total = producer.stop()
    assert producer.failed == 0, f"{producer.failed} produce requests failed (the test's producer, not the service)"
    assert total > 1000
    distinct, rows = _assert_all_persisted(service, producer, timeout=120)
    service.wait_no_lag(timeout=60)
    service.wait_all_ready(timeout=60)
    print(f"sigkill: {distinct} acknowledged events persisted, {rows - distinct} duplicate rows collapsed by uniqExact")


def test_sigterm_finishes_batch_commits_and_leaves_group(service: Harness) -> None:
    victim = service.replicas[2]
    old_pid = service.pids()[victim]
    log = service.stack.ctx.log_dir / f"{victim}.log"
    log_size = log.stat().st_size
    apps = [f"term-{uuid.uuid4().hex[:6]}-{k}" for k in range(12)]
    producer = SteadyProducer(service, apps, rate=400)
    producer.start()
    try:
        wait_until("the stream to flow (800 events acknowledged)", lambda: producer.total() >= 800, 30)
        t0 = time.monotonic()
        os.kill(old_pid, signal.SIGTERM)
        wait_until(f"{victim} to exit after SIGTERM and be restarted", lambda: service.pids()[victim] != old_pid,
                   30, interval=0.2, seen=lambda: service.process_info()[victim])
        exited_after = time.monotonic() - t0
        time.sleep(3)
    finally:
        producer.stop()
    with log.open("rb") as fh:
        fh.seek(log_size)
        text = fh.read().decode(errors="replace")
    assert "signal SIGTERM" in text and "left group" in text and "stopped (clean)" in text, (
        f"{victim} did not log a clean shutdown; log since the signal:\n{text[-3000:]}")
    assert exited_after < 20, f"{victim} took {exited_after:.1f} s to exit (deadline 20 s)"
    _assert_all_persisted(service, producer, timeout=120)
    service.wait_no_lag(timeout=60)
    service.wait_all_ready(timeout=60)


def _toxiproxy(service: Harness, proxy: str, enabled: bool) -> None:
    url = f"{service.stack.endpoints.toxiproxy_url}/proxies/{proxy}"
    requests.post(url, json={"enabled": enabled}, timeout=5).raise_for_status()


@pytest.mark.parametrize("sink", ["clickhouse", "postgres"])
def test_sink_unreachable_for_10s(service: Harness, sink: str) -> None:
    """The sink's toxiproxy proxy disabled for 10 s: backpressure, not loss; readiness false then true."""
    apps = [f"{sink}-down-{uuid.uuid4().hex[:6]}-{k}" for k in range(12)]
    producer = SteadyProducer(service, apps, rate=200)
    producer.start()
    max_lag = 0
    not_ready: set[str] = set()
    try:
        wait_until("the stream to flow (400 events acknowledged)", lambda: producer.total() >= 400, 30)
        # A live stream always has some records in flight; "keeping up" is a small lag.
        wait_until("the service to keep up (lag < 100) before the outage", lambda: service.group_lag() < 100, 30,
                   interval=1, seen=service.group_lag)
        _toxiproxy(service, sink, enabled=False)
        try:
            end = time.monotonic() + 10
            while time.monotonic() < end:
                not_ready |= {n for n, code in service.all_ready().items() if code != 200}
                max_lag = max(max_lag, service.group_lag())
                time.sleep(0.5)
        finally:
            _toxiproxy(service, sink, enabled=True)
        service.wait_all_ready(timeout=60)
        time.sleep(3)  # the stream goes on after the outage too
    finally:
        total = producer.stop()
    assert producer.failed == 0, f"{producer.failed} produce requests failed (the test's producer, not the service)"
    assert not_ready == set(service.replicas), f"replicas that reported not-ready during the outage: {not_ready}"
    assert max_lag >= 200, f"lag should grow while {sink} is unreachable (200 events/s for 10 s); max {max_lag}"
    _assert_all_persisted(service, producer, timeout=120)
    service.wait_no_lag(timeout=60)
    retries = service.metric_sum("sqlaudit_sink_write_retries_total", {"sink": sink})
    assert retries > 0, f"the outage should have caused {sink} write retries"
    print(f"{sink} outage: {total} events, max lag {max_lag}, {sink} retries {retries:.0f}")
