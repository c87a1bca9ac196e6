"""What the HA tests and ``benchmarks/ha_failover.py`` share: load with a ledger, a PostgreSQL
commit ledger (RPO), bounded waits, and the data-loss accounting against ClickHouse."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from loadtests.locust_process import LoadHandle, LoadResult, start_load, stop_load
from probes.dataloss import DataLossReport, account, produced_at_by_id, read_stored, wait_drained
from stack.components import clickhouse, kafka
from stack.core import LocalStack
from stack.endpoints import CONSUMER_GROUP
from target.contract import DataContract


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> float:
    """Seconds until ``check()`` is true; ``AssertionError`` naming ``what`` after ``timeout``."""
    t0 = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - t0
        except Exception:  # the thing being waited for is broken: keep polling
            pass
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)


def fault_config(stack: LocalStack, state_dir: Path) -> dict[str, Any]:
    return {"stack_port_base": stack.endpoints.port_base, "stack_data_dir": str(stack.data_dir),
            "fault_state_dir": str(state_dir), "heartbeat_timeout": 60}


def load(stack: LocalStack, run_dir: Path, rate: float, duration: float, seed: int = 1) -> LoadHandle:
    """Steady load into every broker's DIRECT listener, with a ledger in ``run_dir/ledger``."""
    return start_load(kafka.kafka_bootstrap_direct(stack.ctx), "steady", rate=rate, duration=duration, seed=seed,
                      run_dir=str(run_dir), ledger_dir=str(run_dir / "ledger"))


def drained_loss(stack: LocalStack, result: LoadResult, fault_start_ms: int | None, replica: int = 0,
                 drain_timeout: float = 150.0) -> DataLossReport:
    """Wait for lag 0, then account the ledger against the sharded events, read through the ``Distributed``
    table on ClickHouse server ``replica`` (every shard answers through it)."""
    assert result.ledger is not None, result.ledger_error
    drain = wait_drained(kafka.kafka_bootstrap_direct(stack.ctx), CONSUMER_GROUP, stack.ctx.topic,
                         timeout_s=drain_timeout)
    assert drain.drained, drain.reason
    acked = produced_at_by_id(result.ledger.acked.values())
    assert acked, "the load acknowledged nothing"
    port = stack.endpoints.port(clickhouse.CH_REPLICAS[replica].tcp)
    contract = DataContract(clickhouse_table=clickhouse.DISTRIBUTED_TABLE)
    stored = read_stored("127.0.0.1", port, min(acked.values()), max(acked.values()), contract)
    return account(acked, stored, fault_start_ms)


def wait_replicas_converged(stack: LocalStack, timeout: float = 120.0) -> float:
    """Wait until every ClickHouse replica answers with an active ZooKeeper session and an empty
    replication queue, and the replicas of each shard hold the same row count twice in a row (a
    replica that just woke up has an empty queue before it has read the replication log)."""
    previous: list[tuple[int, ...]] = []

    def converged() -> bool:
        states = [clickhouse.clickhouse_replica_status(stack.ctx, r) for r in clickhouse.CH_REPLICAS]
        query = f"SELECT count() FROM {stack.ctx.ch_database}.audit_events"
        counts = tuple(int(clickhouse.query(stack.ctx, r, query)[0][0]) for r in clickhouse.CH_REPLICAS)
        per_shard: dict[str, set[int]] = {}
        for r, n in zip(clickhouse.CH_REPLICAS, counts, strict=True):
            per_shard.setdefault(r.shard, set()).add(n)
        ok = all(s["queue_size"] == 0 and not s["is_readonly"] and s["active_replicas"] == s["total_replicas"]
                 for s in states) and all(len(n) == 1 for n in per_shard.values())
        previous.append(counts if ok else ())
        return ok and len(previous) >= 2 and previous[-2] == counts
    return wait_until(converged, timeout, "ClickHouse replicas converged", poll=1.0)


@dataclass
class CommitLedger:
    """Commits a row every ``interval`` s to the PostgreSQL primary (multi-host, read-write) and
    records each acknowledged commit: after a failover, a recorded id that is missing is a lost
    acknowledged transaction (RPO)."""

    stack: LocalStack
    interval: float = 0.02
    acked: dict[int, float] = field(default_factory=dict)  # id -> commit acknowledged at (epoch s)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _kwargs(self) -> dict[str, Any]:
        kw = dict(self.stack.ctx.postgres_kwargs())
        kw.update(user="postgres", dbname="postgres", connect_timeout=2)
        return kw

    def start(self) -> CommitLedger:
        with psycopg.connect(**self._kwargs(), autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS resilience_rpo_probe")
            conn.execute("CREATE TABLE resilience_rpo_probe (id bigint PRIMARY KEY, at timestamptz NOT NULL)")
        self._thread = threading.Thread(target=self._run, name="commit-ledger", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        next_id = 1
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(**self._kwargs(), autocommit=True,
                                           options="-c statement_timeout=3000")
                conn.execute("INSERT INTO resilience_rpo_probe VALUES (%s, now())", (next_id,))
                self.acked[next_id] = time.time()
                next_id += 1
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                next_id += 1  # the outcome of that commit is unknown: never reuse its id
                time.sleep(0.1)
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def first_ack_after(self, t: float) -> float | None:
        """Epoch seconds of the first acknowledged commit after ``t`` (write recovery)."""
        later = [a for a in self.acked.values() if a > t]
        return min(later) if later else None

    def max_gap(self, start: float, end: float) -> float:
        """Longest interval (s) without an acknowledged commit in ``[start, end]``: how long writes
        were unavailable (the write RTO)."""
        times = sorted([start, *(a for a in self.acked.values() if start <= a <= end)])
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def lost(self, fault_at: float) -> tuple[int, float]:
        """(acknowledged commits missing on the current primary, RPO seconds: fault time minus the
        earliest missing commit's acknowledgement; 0 when none is missing)."""
        with psycopg.connect(**self._kwargs(), autocommit=True) as conn:
            present = {int(r[0]) for r in conn.execute("SELECT id FROM resilience_rpo_probe").fetchall()}
        missing = [i for i in self.acked if i not in present]
        if not missing:
            return 0, 0.0
        earliest = min(self.acked[i] for i in missing)
        return len(missing), max(0.0, fault_at - earliest)


def violations(stack: LocalStack) -> set[tuple[str, str]]:
    """``(event_id, checker)`` of every violation on the current primary."""
    with psycopg.connect(**stack.ctx.postgres_kwargs(), connect_timeout=3, autocommit=True) as conn:  # type: ignore[arg-type]
        return {(str(r[0]), str(r[1])) for r in conn.execute("SELECT event_id, checker FROM violations").fetchall()}


def ack_gap(result: LoadResult, start_ms: int, end_ms: int) -> float:
    """Longest interval (s) without any acknowledged produce in ``[start_ms, end_ms]``."""
    assert result.ledger is not None
    times = sorted([start_ms, *(r.acked_at for r in result.ledger.acked.values() if start_ms <= r.acked_at <= end_ms)])
    return max((b - a for a, b in itertools.pairwise(times)), default=0) / 1000.0


def stop(handle: LoadHandle) -> LoadResult:
    return stop_load(handle, timeout=60)
