"""The sharded ClickHouse of the ha profile: events spread over both shards, and the data-loss check reads
them whole through the Distributed table — so rows deleted on any shard are named, and no others."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.ha.harness as h
from loadtests.locust_process import wait_load
from probes.dataloss import account, produced_at_by_id, read_stored
from stack.components import clickhouse
from stack.core import LocalStack
from target.contract import DataContract

pytestmark = [pytest.mark.ha, pytest.mark.stack, pytest.mark.slow]


def _local_ids(stack: LocalStack, replica: clickhouse.ChReplica) -> set[str]:
    rows = clickhouse.query(stack.ctx, replica, f"SELECT toString(event_id) FROM {stack.ctx.ch_database}."
                                                f"{clickhouse.LOCAL_TABLE}", timeout=30)
    return {r[0] for r in rows}


def test_deleting_rows_on_both_shards_names_exactly_those(ha_stack: LocalStack, tmp_path: Path) -> None:
    handle = h.load(ha_stack, tmp_path / "load", rate=150, duration=15)
    result = wait_load(handle, 90)
    report = h.drained_loss(ha_stack, result, None)
    assert report.lost == [], "loss before any sabotage"
    h.wait_replicas_converged(ha_stack)
    acked = produced_at_by_id(result.ledger.acked.values())  # type: ignore[union-attr]
    shard_one = _local_ids(ha_stack, clickhouse.CH_REPLICAS[0]) & set(acked)
    shard_two = _local_ids(ha_stack, clickhouse.CH_REPLICAS[2]) & set(acked)
    assert shard_one and shard_two and not shard_one & shard_two, "events are not spread over two shards"
    assert shard_one | shard_two == set(acked)
    victims = sorted(shard_one)[:3] + sorted(shard_two)[:4]
    for replica, ids in ((clickhouse.CH_REPLICAS[0], victims[:3]), (clickhouse.CH_REPLICAS[2], victims[3:])):
        listed = ", ".join(f"toUUID('{v}')" for v in ids)
        clickhouse.query(ha_stack.ctx, replica, f"ALTER TABLE {ha_stack.ctx.ch_database}.{clickhouse.LOCAL_TABLE} "
                                                f"DELETE WHERE event_id IN ({listed})", timeout=30)
    contract = DataContract(clickhouse_table=clickhouse.DISTRIBUTED_TABLE)
    port = ha_stack.endpoints.port(clickhouse.CH_REPLICAS[1].tcp)

    def gone() -> bool:
        stored = read_stored("127.0.0.1", port, min(acked.values()), max(acked.values()), contract)
        return not any(v in stored for v in victims)

    h.wait_until(gone, 60, "the deletes applied on both shards (and replicated)")
    stored = read_stored("127.0.0.1", port, min(acked.values()), max(acked.values()), contract)
    assert sorted(account(acked, stored, None).lost) == sorted(victims)
    one_shard_only = read_stored("127.0.0.1", port, min(acked.values()), max(acked.values()),
                                 DataContract(clickhouse_table=clickhouse.LOCAL_TABLE))
    assert len(account(acked, one_shard_only, None).lost) > len(victims), \
        "reading one shard's local table would not show the false loss this test guards against"
