"""Probes against the real local stack with real metrics: healthy passes, broken fails loudly.

Each test breaks something on purpose and checks the probe notices; every break is
undone in ``finally``.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from clickhouse_driver import Client
from kafka import KafkaProducer

from clients.kafka_lag import LagReader
from probes import prom
from probes.dataloss import account, read_stored, wait_drained
from probes.evaluate import RunWindow, evaluate, rto_replicas_ready
from probes.recovery import RecoveryStatus
from probes.slo import load_catalogue
from probes.verdict import Outcome
from sqlaudit.events import SqlEvent, SqlType, now_ms
from stack.core import LocalStack

pytestmark = pytest.mark.stack

CAT = load_catalogue()
LOCAL = CAT.view("local")


def _event(app: str = "probe-test") -> SqlEvent:
    return SqlEvent(event_id=uuid.uuid4(), app=app, database="orders", sql="SELECT * FROM t WHERE id = 42",
                    sql_type=SqlType.SELECT, duration_ms=random.randint(1, 50), rows_affected=1, produced_at=now_ms())


def produce(stack: LocalStack, n: int, rate: float) -> dict[str, int]:
    """Produce ``n`` valid events at about ``rate``/s with acks=all; returns the acknowledged ids."""
    producer = KafkaProducer(bootstrap_servers=stack.endpoints.kafka_bootstrap, acks="all", linger_ms=5)
    acked: dict[str, int] = {}
    futures = []
    t0 = time.monotonic()
    try:
        for i in range(n):
            ev = _event()
            futures.append((ev, producer.send(stack.ctx.topic, ev.to_bytes(), key=str(ev.event_id).encode())))
            delay = t0 + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.flush(timeout=30)
        for ev, fut in futures:
            fut.get(timeout=10)
            acked[str(ev.event_id)] = ev.produced_at
    finally:
        producer.close(timeout=10)
    return acked


def _drain(stack: LocalStack, timeout_s: float = 90) -> None:
    d = wait_drained(stack.endpoints.kafka_bootstrap, "sql-audit-service", stack.ctx.topic, timeout_s=timeout_s)
    assert d.drained, d.reason


@pytest.fixture
def healthy(stack: LocalStack) -> Iterator[LocalStack]:
    """The stack with every component healthy before and after the test."""
    deadline = time.monotonic() + 60
    while not (st := stack.status()).healthy:
        unhealthy = [c.as_dict() for c in st.components if not c.healthy]
        assert time.monotonic() < deadline, f"stack not healthy: {unhealthy}"
        time.sleep(1)
    yield stack


def test_lag_is_read_from_kafka_and_exported_to_prometheus(healthy: LocalStack) -> None:
    produce(healthy, 200, rate=400)
    _drain(healthy)
    with LagReader(healthy.endpoints.kafka_bootstrap, "sql-audit-service", healthy.ctx.topic) as reader:
        snap = reader.read()
    assert snap.total == 0 and snap.produced >= 200
    used = [p for p, end in snap.end_offsets.items() if end > snap.beginning_offsets.get(p, 0)]
    assert len(used) == 6, "events keyed by id should reach every partition"
    assert all(snap.committed[p] == snap.end_offsets[p] for p in used), snap
    time.sleep(2)
    exported = prom.instant(healthy.endpoints.prometheus_url, CAT.promql("consumer_lag_warning", LOCAL))
    assert exported == 0


def test_healthy_steady_state_passes_every_promql_slo(healthy: LocalStack) -> None:
    start = time.time()
    produce(healthy, 1500, rate=100)  # 15 s of steady load
    _drain(healthy)
    time.sleep(2)  # one more scrape
    window = RunWindow(start=start, end=time.time())
    ids = ["latency_p95", "latency_p95_end_to_end", "error_rate", "consumer_lag_warning", "pdb_min_available",
           "availability", "clickhouse_write_timeout"]
    verdicts = evaluate(CAT, LOCAL, healthy.endpoints.prometheus_url, window, slo_ids=ids, max_gap_s=20)
    bad = [v.as_dict() for v in verdicts if v.outcome is not Outcome.PASS]
    assert not bad, bad
    assert {v.slo for v in verdicts} == set(ids)


def test_stopped_service_makes_the_lag_probe_fail(healthy: LocalStack) -> None:
    rpc = healthy.supervisor.rpc
    rpc.stopProcessGroup("audit-service", True)
    try:
        start = time.time()
        produce(healthy, 12000, rate=4000)  # nobody consumes: lag must exceed the 10,000 warning
        time.sleep(3)
        verdicts = evaluate(CAT, LOCAL, healthy.endpoints.prometheus_url, RunWindow(start, time.time()),
                            slo_ids=["consumer_lag_warning"], max_gap_s=20)
        assert verdicts[0].outcome is Outcome.FAIL, verdicts[0].as_dict()
        assert verdicts[0].measured is not None and verdicts[0].measured >= 10000
        rec = rto_replicas_ready(CAT, LOCAL, healthy.endpoints.prometheus_url,
                                 RunWindow(start, time.time(), fault_start=start), expected_replicas=3,
                                 stabilization_s=2)
        assert rec.status is not RecoveryStatus.RECOVERED, "replicas are stopped: they cannot have recovered"
    finally:
        rpc.startProcessGroup("audit-service", True)
    _drain(healthy, timeout_s=120)


def test_rows_deleted_from_clickhouse_are_named_by_the_data_loss_probe(healthy: LocalStack) -> None:
    acked = produce(healthy, 300, rate=300)
    _drain(healthy)
    victims = sorted(random.sample(sorted(acked), 7))
    fault_start = max(acked.values()) + 1
    client = Client(host="127.0.0.1", port=healthy.endpoints.clickhouse_port, connect_timeout=5)
    try:
        client.execute("ALTER TABLE sqlaudit.audit_events DELETE WHERE event_id IN %(ids)s",
                       {"ids": tuple(victims)})
        deadline = time.monotonic() + 30  # a mutation is asynchronous
        while client.execute("SELECT count() FROM system.mutations WHERE is_done = 0")[0][0]:
            assert time.monotonic() < deadline, "ClickHouse mutation did not finish"
            time.sleep(0.2)
    finally:
        client.disconnect()
    stored = read_stored("127.0.0.1", healthy.endpoints.clickhouse_port, min(acked.values()), max(acked.values()))
    report = account(acked, stored, fault_start_ms=fault_start)
    assert sorted(report.lost) == victims
    assert report.acknowledged == 300 and report.stored == 293
    earliest = min(acked[v] for v in victims)
    assert report.rpo_s == pytest.approx((fault_start - earliest) / 1000)


def test_stopped_prometheus_raises_a_clear_error_and_the_verdict_is_inconclusive(healthy: LocalStack) -> None:
    url = healthy.endpoints.prometheus_url
    start = time.time() - 30
    healthy.supervisor.rpc.stopProcess("infra:prometheus", True)
    try:
        with pytest.raises(prom.ProbeError, match=rf"Prometheus at {url}"):
            prom.instant(url, "up")
        verdicts = evaluate(CAT, LOCAL, url, RunWindow(start, time.time()), slo_ids=["latency_p95", "availability"])
        assert [v.outcome for v in verdicts] == [Outcome.INCONCLUSIVE, Outcome.INCONCLUSIVE]
        assert all(url in v.reason for v in verdicts)
    finally:
        healthy.supervisor.rpc.startProcess("infra:prometheus", True)
    prom.wait_ready(url, timeout_s=30)


def test_query_with_no_data_is_an_error_not_zero(healthy: LocalStack) -> None:
    url = healthy.endpoints.prometheus_url
    with pytest.raises(prom.ProbeError, match="no data"):
        prom.instant(url, f'sum(sqlaudit_events_processed_total{{replica="{prom.escape_label("no-such")}"}})')
    assert requests.get(f"{url}/-/ready", timeout=5).status_code == 200


def test_chaos_toolkit_probes_measure_the_live_stack(healthy: LocalStack) -> None:
    from probes import activities

    cfg = {"stack_port_base": healthy.endpoints.port_base}
    produce(healthy, 300, rate=300)
    _drain(healthy)
    time.sleep(2)
    assert activities.consumer_lag(configuration=cfg) == 0
    assert activities.ready_replicas(configuration=cfg) == 3
    assert 0 < activities.latency_p95_seconds("processing", window_s=60, configuration=cfg) < 5
    assert activities.throughput_eps(window_s=60, configuration=cfg) > 0
    assert activities.drain(timeout_s=10, configuration=cfg)["drained"] is True


def test_missing_violations_are_named_exactly(healthy: LocalStack) -> None:
    import psycopg

    from probes.dataloss import missing_violations

    producer = KafkaProducer(bootstrap_servers=healthy.endpoints.kafka_bootstrap, acks="all")
    slow = [SqlEvent(event_id=uuid.uuid4(), app="probe-viol", database="db", sql="SELECT pg_sleep(3)",
                     sql_type=SqlType.SELECT, duration_ms=3000, rows_affected=1, produced_at=now_ms())
            for _ in range(5)]
    impact = [SqlEvent(event_id=uuid.uuid4(), app="probe-viol", database="db", sql="DELETE FROM t",
                       sql_type=SqlType.DELETE, duration_ms=5, rows_affected=50_000, produced_at=now_ms())
              for _ in range(3)]
    try:
        for ev in slow + impact:
            producer.send(healthy.ctx.topic, ev.to_bytes(), key=str(ev.event_id).encode()).get(timeout=10)
    finally:
        producer.close(timeout=10)
    _drain(healthy)
    ids = [str(e.event_id) for e in slow + impact]
    ch = ("127.0.0.1", healthy.endpoints.clickhouse_port)
    pg = healthy.ctx.postgres_kwargs()
    assert missing_violations(ch, pg, ids, 1000, 1000) == {"SlowQuery": [], "ActualImpact": []}
    victim = str(impact[0].event_id)
    with psycopg.connect(connect_timeout=5, autocommit=True, **pg) as conn:  # type: ignore[arg-type]
        conn.execute("DELETE FROM violations WHERE event_id = %s AND checker = 'ActualImpact'", (victim,))
    assert missing_violations(ch, pg, ids, 1000, 1000) == {"SlowQuery": [], "ActualImpact": [victim]}
