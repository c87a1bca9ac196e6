"""The ha profile under faults with load: failover, broker loss and a stalled replica lose no
acknowledged event; ``down`` leaves nothing running. Each test restores what it broke in ``finally``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from faults import clickhouse_stall, kafka_broker, network_partition, postgres_failover
from faults.cleanup import cleanup
from stack.components import clickhouse, patroni
from stack.core import LocalStack
from tests.ha import harness as h

pytestmark = [pytest.mark.stack, pytest.mark.ha]


def _healthy(stack: LocalStack, timeout: float = 150.0) -> None:
    h.wait_until(lambda: stack.status().healthy, timeout, "ha stack healthy again")


@pytest.mark.extended
def test_status_reports_every_ha_member(ha_stack: LocalStack) -> None:
    status = ha_stack.status()
    details = {c.name: c.detail for c in status.components}
    assert status.healthy, status.as_dict()
    assert "synchronous_mode on" in details["postgres"] and "sync_standby streaming" in details["postgres"]
    assert "2/2 replicas active" in details["clickhouse"]
    assert "ISR 3/3" in details["kafka-3"]


def test_primary_hard_killed_under_load_loses_nothing(ha_stack: LocalStack, tmp_path: Path,
                                                      state_dir: Path) -> None:
    cfg = h.fault_config(ha_stack, state_dir)
    old = patroni.patroni_leader(ha_stack.ctx)
    assert old is not None
    commits = h.CommitLedger(ha_stack).start()
    handle = h.load(ha_stack, tmp_path / "load", rate=150, duration=35)
    try:
        time.sleep(12)
        before = h.violations(ha_stack)
        fault_at = time.time()
        postgres_failover.fail_over_postgres("kill", configuration=cfg)
        h.wait_until(lambda: (lead := patroni.patroni_leader(ha_stack.ctx)) is not None and lead != old, 60,
                     f"a new Patroni leader after killing {old.name}")
        leader_at = time.time()
        h.wait_until(lambda: commits.first_ack_after(leader_at) is not None, 60, "a write on the new primary")
        assert commits.max_gap(fault_at, time.time()) < 30, "writes unavailable longer than the 30 s failover SLO"
    finally:
        postgres_failover.restore_postgres(configuration=cfg)
        commits.stop()
        result = h.stop(handle)
        cleanup(state_dir)
    lost_commits, rpo = commits.lost(fault_at)
    assert lost_commits == 0, f"{lost_commits} acknowledged commits lost (RPO {rpo:.2f} s) with synchronous_mode"
    report = h.drained_loss(ha_stack, result, int(fault_at * 1000))
    assert report.lost == [], report.as_dict(10)
    after = h.violations(ha_stack)
    assert before, "no violations before the fault: the check would prove nothing"
    assert before <= after, f"{len(before - after)} violations lost in the failover"
    _healthy(ha_stack)


@pytest.mark.extended
def test_broker_killed_under_load_loses_nothing(ha_stack: LocalStack, tmp_path: Path, state_dir: Path) -> None:
    cfg = h.fault_config(ha_stack, state_dir)
    handle = h.load(ha_stack, tmp_path / "load", rate=150, duration=30)
    try:
        time.sleep(8)
        fault_ms = int(time.time() * 1000)
        kafka_broker.stop_kafka_broker(1, duration=15, graceful=False, configuration=cfg)
        time.sleep(15)
    finally:
        kafka_broker.start_kafka_broker(1, configuration=cfg)
        result = h.stop(handle)
        cleanup(state_dir)
    assert result.ledger is not None
    # acks=all with min.insync.replicas=2: producing went on while the broker was gone
    assert result.ledger.between(fault_ms + 3000, fault_ms + 14000), "nothing acknowledged while a broker was down"
    report = h.drained_loss(ha_stack, result, fault_ms)
    assert report.lost == [], report.as_dict(10)
    _healthy(ha_stack)


@pytest.mark.extended
def test_clickhouse_replica_stalled_writes_continue(ha_stack: LocalStack, tmp_path: Path, state_dir: Path) -> None:
    cfg = h.fault_config(ha_stack, state_dir)
    survivor = clickhouse.CH_REPLICAS[1]
    handle = h.load(ha_stack, tmp_path / "load", rate=150, duration=45)
    try:
        time.sleep(8)
        fault_ms = int(time.time() * 1000)
        clickhouse_stall.stall_clickhouse(30, replica=0, configuration=cfg)

        def written_after_fault() -> bool:
            rows = clickhouse.query(ha_stack.ctx, survivor, "SELECT count() FROM sqlaudit.audit_events "
                                                        f"WHERE stored_at_ms > {fault_ms}", timeout=5)
            return int(rows[0][0]) > 0
        h.wait_until(written_after_fault, 25, "rows written through the surviving replica during the stall")
    finally:
        clickhouse_stall.resume_clickhouse(replica=0, configuration=cfg)
        result = h.stop(handle)
        cleanup(state_dir)
    h.wait_replicas_converged(ha_stack)
    for replica in (0, 1):
        report = h.drained_loss(ha_stack, result, fault_ms, replica=replica)
        assert report.lost == [], (replica, report.as_dict(10))
    _healthy(ha_stack)


@pytest.mark.extended
def test_partition_of_an_edge_cuts_every_member(ha_stack: LocalStack, tmp_path: Path, state_dir: Path) -> None:
    """A partition from ClickHouse must not be dodged through the other replica (alt_hosts):
    nothing is stored on either replica while it lasts, and nothing is lost once it heals."""
    cfg = h.fault_config(ha_stack, state_dir)
    proxies_url = f"{ha_stack.endpoints.toxiproxy_url}/proxies"
    handle = h.load(ha_stack, tmp_path / "load", rate=150, duration=40)
    try:
        time.sleep(8)
        fault_ms = int(time.time() * 1000)
        network_partition.partition_network("clickhouse", mode="blackhole", duration=60, configuration=cfg)
        cut = {name: [t["name"] for t in p["toxics"]] for name, p in requests.get(proxies_url, timeout=5).json().items()
               if p["toxics"]}
        assert set(cut) == {"clickhouse", "clickhouse_2", "clickhouse_3", "clickhouse_4"}, f"partition toxics on {cut}"
        time.sleep(15)
        healed_ms = int(time.time() * 1000)
        stored_during = {}
        for replica in clickhouse.CH_REPLICAS:
            rows = clickhouse.query(ha_stack.ctx, replica, "SELECT count() FROM sqlaudit.audit_events WHERE "
                                    f"stored_at_ms BETWEEN {fault_ms + 2000} AND {healed_ms}", timeout=5)
            stored_during[replica.program] = int(rows[0][0])
    finally:
        network_partition.remove_partition("clickhouse", configuration=cfg)
        result = h.stop(handle)
        cleanup(state_dir)
    assert all(not p["toxics"] and p["enabled"] for p in requests.get(proxies_url, timeout=5).json().values())
    assert stored_during == {r.program: 0 for r in clickhouse.CH_REPLICAS}, \
        f"rows stored during the partition: {stored_during}"
    h.wait_replicas_converged(ha_stack)
    report = h.drained_loss(ha_stack, result, fault_ms, replica=1)
    assert report.lost == [], report.as_dict(10)
    _healthy(ha_stack)
