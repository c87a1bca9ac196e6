"""Split-brain and ZooKeeper loss on the real ha stack (issue 18): the isolated old Patroni leader takes no
write after it lost its leader key while the other member is promoted, and ZooKeeper's loss turns the
replicated ClickHouse tables read-only until it is back. Each test heals what it broke in ``finally``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from faults import postgres_isolation, zookeeper_loss
from faults.cleanup import cleanup
from probes import splitbrain
from stack.components import clickhouse, patroni
from stack.core import LocalStack
from tests.ha import harness as h

pytestmark = [pytest.mark.stack, pytest.mark.ha, pytest.mark.extended]


def test_the_isolated_leader_takes_no_write_after_its_key_and_the_other_is_promoted(
        ha_stack: LocalStack, state_dir: Path) -> None:
    """About 70 s: the canary writer runs 35 s; the promotion comes ~21 s after the cut (the 20 s lease)."""
    cfg = h.fault_config(ha_stack, state_dir)
    old = patroni.patroni_leader(ha_stack.ctx)
    assert old is not None
    out: dict[str, Any] = {}

    def write() -> None:
        out["writes"] = splitbrain.split_brain_writes(observe_s=35, configuration=cfg)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        time.sleep(3)
        isolation = postgres_isolation.isolate_postgres_leader(synchronous="on", duration=90, configuration=cfg)
        writer.join(180)
    finally:
        postgres_isolation.heal_postgres_leader(configuration=cfg)
        cleanup(state_dir)
    acct = splitbrain.account(out["writes"], isolation["details"])
    assert splitbrain.guard(acct) == "", acct.as_dict()  # the fault bit, the writer was refused, both tables read
    assert acct.writes_after == [] and acct.lost == [], acct.as_dict()
    assert isolation["details"]["member"] == old.name and acct.refused_after > 0
    new = patroni.patroni_leader(ha_stack.ctx)
    assert new is not None and new != old  # promoted, and still leader after the old one rejoined
    h.wait_until(lambda: ha_stack.status().healthy, 150, "ha stack healthy again")


def test_zookeeper_loss_turns_the_replicated_tables_read_only_until_it_is_back(
        ha_stack: LocalStack, state_dir: Path) -> None:
    cfg = h.fault_config(ha_stack, state_dir)
    rep = clickhouse.CH_REPLICAS[0]
    # INSERT ... SELECT runs wholly on the server (an inline VALUES insert over the native protocol waits for
    # the client's data blocks, which the driver's plain query never sends: it hung, seen live).
    insert = (f"INSERT INTO sqlaudit.{clickhouse.LOCAL_TABLE} (event_id, stored_at_ms) "
              f"SELECT generateUUIDv4(), toUInt64({int(time.time() * 1000)})")
    try:
        lost = zookeeper_loss.lose_zookeeper(duration=90, configuration=cfg)
        # the servers themselves, not the fault's report (lose_zookeeper already raised had it seen none)
        readonly = {r.program: clickhouse.clickhouse_replica_status(ha_stack.ctx, r)["is_readonly"]
                    for r in clickhouse.CH_REPLICAS}
        assert any(readonly.values()), (readonly, lost["details"])
        with pytest.raises(Exception, match=r"(?i)read.?only|zookeeper|keeper"):  # the effect, not only the state
            clickhouse.query(ha_stack.ctx, rep, insert, timeout=10)
    finally:
        restored = zookeeper_loss.restore_zookeeper(configuration=cfg)
        cleanup(state_dir)
    assert set(restored["details"]["replicas"].values()) == {0}, restored["details"]

    def accepted() -> bool:
        try:
            clickhouse.query(ha_stack.ctx, rep, insert, timeout=30)
            return True
        except Exception:  # the replicas may still be reconnecting: "not yet"
            return False
    h.wait_until(accepted, 120, "an insert into the replicated table accepted again", poll=1.0)
    h.wait_until(lambda: ha_stack.status().healthy, 150, "ha stack healthy again")
