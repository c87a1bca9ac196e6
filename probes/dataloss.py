"""Data loss and RPO: the load ledger (ground truth) against what the stores hold.

Only meaningful once the pipeline has drained — the consumer group's lag, read
from Kafka, is 0 — otherwise an event still in flight would count as lost. If the
pipeline does not drain within the timeout, the verdict is inconclusive.

Definitions (``docs/slo.md``):

lost
    acknowledged by Kafka (in the ledger) but absent from ClickHouse.
duplicated
    stored more than once before ClickHouse's ReplacingMergeTree merged the copies
    (redelivery after a crash; harmless, counted for information).
late
    stored, but later than ``late_after_ms`` after it was produced.
RPO
    seconds between the earliest lost event's ``produced_at`` and the fault's start;
    0 when nothing acknowledged before the fault was lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clients.clickhouse import ClickHouseAuth
from clients.clickhouse import client as ch_client
from clients.kafka import KafkaAuth
from clients.kafka_lag import LagReader, LagSnapshot
from probes.prom import ProbeError
from target.contract import DataContract

logger = logging.getLogger(__name__)

__all__ = ["DataLossReport", "Drain", "StoredEvent", "account", "missing_violations", "read_stored", "sync_replica",
           "wait_drained"]


@dataclass(frozen=True)
class Drain:
    drained: bool
    waited_s: float
    last: LagSnapshot | None
    reason: str = ""


def wait_drained(bootstrap: str, group: str, topic: str, timeout_s: float = 120.0, poll_s: float = 1.0,
                 settle_reads: int = 2, auth: KafkaAuth | None = None) -> Drain:
    """Wait until the group's lag (from Kafka, logged in as ``auth``) is 0 on ``settle_reads`` consecutive reads."""
    t0 = time.monotonic()
    last: LagSnapshot | None = None
    zeros = 0
    err = ""
    with LagReader(bootstrap, group, topic, auth=auth) as reader:
        while True:
            try:
                last = reader.read()
                zeros = zeros + 1 if last.total == 0 else 0
                if zeros >= settle_reads:
                    return Drain(True, time.monotonic() - t0, last)
            except Exception as exc:  # Kafka may be the thing that is broken; keep trying
                err = f"{type(exc).__name__}: {exc}"
            if time.monotonic() - t0 > timeout_s:
                lag = f"lag still {last.total}" if last else f"lag unreadable ({err})"
                return Drain(False, time.monotonic() - t0, last, f"not drained within {timeout_s:.0f} s: {lag}")
            time.sleep(poll_s)


@dataclass(frozen=True)
class StoredEvent:
    copies: int
    first_stored_at_ms: int
    produced_at_ms: int


def sync_replica(client: Any, contract: DataContract, timeout_s: float = 120.0) -> bool:
    """``SYSTEM SYNC REPLICA`` on the contract's events table if it is replicated; whether it was.

    The service writes through any replica of a replicated table and the others fetch its parts a little
    later; the pipeline's lag reaching 0 says nothing of that. Counted before its queue is done, the replica
    the suite reads misses what was written through the others, a false loss (1,912 events in a CI run of the
    local cluster with two replicas). The statement returns once the replica has fetched every part the
    replication log held when it was asked, and fails after ``timeout_s`` (the query's ``receive_timeout``).
    """
    rows = client.execute("SELECT engine FROM system.tables WHERE database = %(d)s AND name = %(t)s",
                          {"d": contract.clickhouse_database, "t": contract.clickhouse_table})
    if not rows or not str(rows[0][0]).startswith("Replicated"):
        return False
    client.execute(f"SYSTEM SYNC REPLICA {contract.events_table}", settings={"receive_timeout": int(timeout_s)})
    return True


def read_stored(host: str, port: int, start_ms: int, end_ms: int, contract: DataContract | None = None,
                timeout_s: float = 30.0, auth: ClickHouseAuth | None = None,
                sync_timeout_s: float = 120.0) -> dict[str, StoredEvent]:
    """Every event of the contract's events table produced in [start_ms, end_ms], with its raw copy count.

    Read through the table the contract names, so a ``Distributed`` table over several shards is read
    whole (one shard's local table would hold a part of the rows: a false loss). A replicated table is
    synced first (:func:`sync_replica`, up to ``sync_timeout_s``); a replica that cannot sync is a
    :class:`ProbeError`, not a count. (A ``Distributed`` table over replicated shards reads one replica of
    each, unsynced: the suite cannot sync servers it does not reach.)

    Raises:
        ProbeError: ClickHouse unreachable or the query failed.
    """
    c = contract or DataContract()
    query = (f"SELECT toString({c.clickhouse_id_column}), count(), min({c.clickhouse_stored_at_column}), "
             f"any({c.clickhouse_produced_at_column}) FROM {c.events_table} "
             f"WHERE {c.clickhouse_produced_at_column} >= %(a)s AND {c.clickhouse_produced_at_column} <= %(b)s "
             f"GROUP BY {c.clickhouse_id_column}")
    client = ch_client(host, port, auth, connect_timeout=5, send_receive_timeout=max(timeout_s, sync_timeout_s))
    step = "syncing the replica before reading"
    try:
        sync_replica(client, c, sync_timeout_s)
        step = "reading"
        rows = client.execute(query, {"a": int(start_ms), "b": int(end_ms)})
    except Exception as exc:
        raise ProbeError(f"ClickHouse at {host}:{port} ({(auth or ClickHouseAuth()).describe()}): {step} "
                         f"{c.events_table} failed: {exc}") from None
    finally:
        client.disconnect()
    return {r[0]: StoredEvent(int(r[1]), int(r[2]), int(r[3])) for r in rows}


@dataclass(frozen=True)
class DataLossReport:
    acknowledged: int
    stored: int
    lost: list[str]
    duplicated: int
    late: int
    rpo_s: float
    fault_start_ms: int | None
    lost_before_fault: int = 0
    earliest_lost_produced_at_ms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, max_ids: int = 100) -> dict[str, Any]:
        return {"acknowledged": self.acknowledged, "stored": self.stored, "lost": len(self.lost),
                "lost_ids": self.lost[:max_ids], "lost_ids_truncated": len(self.lost) > max_ids,
                "lost_before_fault": self.lost_before_fault, "duplicated": self.duplicated, "late": self.late,
                "rpo_s": self.rpo_s, "fault_start_ms": self.fault_start_ms,
                "earliest_lost_produced_at_ms": self.earliest_lost_produced_at_ms, **self.extra}


def loss_span_s(lost_produced_ms: Iterable[int | float], fault_start_ms: int | float) -> float:
    """The recovery point of a loss: the span of time whose acknowledged writes are gone, from the earliest
    lost one (or the fault's start, if later) to the latest (or the fault's start, if earlier).

    Writes acknowledged after the fault began and lost after all (an old leader's, before its demotion) count
    as well as those from before it. 0 when nothing is lost; a loss is never 0, but at least 1 ms, the
    resolution of ``produced_at``.
    """
    times = sorted(lost_produced_ms)
    if not times:
        return 0.0
    return max(max(times[-1], fault_start_ms) - min(times[0], fault_start_ms), 1.0) / 1000.0


def account(acked: Mapping[str, int], stored: Mapping[str, StoredEvent], fault_start_ms: int | None,
            late_after_ms: int = 500) -> DataLossReport:
    """Compare acknowledged events (``event_id -> produced_at ms``) with the stored ones.

    Stored events that are not in ``acked`` (another run's, or failed produces that did land)
    are ignored: the ledger is the ground truth of what was promised.
    """
    lost = sorted((eid for eid in acked if eid not in stored), key=lambda e: (acked[e], e))
    present = [stored[eid] for eid in acked if eid in stored]
    duplicated = sum(1 for s in present if s.copies > 1)
    late = sum(1 for s in present if s.first_stored_at_ms - s.produced_at_ms > late_after_ms)
    earliest = acked[lost[0]] if lost else None
    before = [e for e in lost if fault_start_ms is not None and acked[e] < fault_start_ms]
    rpo = loss_span_s([acked[e] for e in lost], fault_start_ms) if fault_start_ms is not None else 0.0
    return DataLossReport(acknowledged=len(acked), stored=len(present), lost=lost, duplicated=duplicated, late=late,
                          rpo_s=rpo, fault_start_ms=fault_start_ms, lost_before_fault=len(before),
                          earliest_lost_produced_at_ms=earliest)


def produced_at_by_id(records: Iterable[Any]) -> dict[str, int]:
    """``event_id -> produced_at`` from ledger records (``loadtests.ledger.AckedRecord``)."""
    return {r.event_id: int(r.produced_at) for r in records}


def missing_violations(ch: tuple[str, int], pg_kwargs: dict[str, Any], event_ids: Iterable[str],
                       slow_threshold_ms: int, impact_threshold_rows: int, contract: DataContract | None = None,
                       timeout_s: float = 30.0, auth: ClickHouseAuth | None = None) -> dict[str, list[str]]:
    """Violations the stateless checkers must have written to PostgreSQL but did not.

    For the given (acknowledged, stored) events, ClickHouse says which ran longer than the
    SlowQuery threshold and which UPDATE/DELETE changed more rows than the ActualImpact
    threshold; each of those must have its ``(event_id, checker)`` row in the contract's violations table.
    (ErrorRate and Frequency depend on windows of other events, and are checked by the
    service's own tests, not here.)

    Returns:
        ``{"SlowQuery": [ids...], "ActualImpact": [ids...]}``: expected but absent.

    Raises:
        ProbeError: a store could not be read.
    """
    import psycopg
    from psycopg import sql

    c = contract or DataContract()
    ids = sorted(set(event_ids))
    if not ids:
        return {"SlowQuery": [], "ActualImpact": []}
    client = ch_client(ch[0], ch[1], auth, connect_timeout=5, send_receive_timeout=timeout_s)
    expected: dict[str, set[str]] = {"SlowQuery": set(), "ActualImpact": set()}
    try:
        for chunk in _chunks(ids, 5000):
            rows = client.execute(
                f"SELECT toString({c.clickhouse_id_column}), any({c.clickhouse_duration_column}), "
                f"any({c.clickhouse_sql_type_column}), any({c.clickhouse_rows_affected_column}) "
                f"FROM {c.events_table} WHERE {c.clickhouse_id_column} IN %(ids)s GROUP BY {c.clickhouse_id_column}",
                {"ids": tuple(chunk)})
            for eid, duration, sql_type, rows_affected in rows:
                if duration > slow_threshold_ms:
                    expected["SlowQuery"].add(eid)
                if sql_type in ("UPDATE", "DELETE") and rows_affected > impact_threshold_rows:
                    expected["ActualImpact"].add(eid)
    except Exception as exc:
        raise ProbeError(f"ClickHouse at {ch[0]}:{ch[1]}: reading {c.events_table} failed: {exc}") from None
    finally:
        client.disconnect()
    found: dict[str, set[str]] = {"SlowQuery": set(), "ActualImpact": set()}
    select = sql.SQL("SELECT {id}::text FROM {table} WHERE {checker} = %s AND {id} = ANY(%s::uuid[])").format(
        id=sql.Identifier(c.postgres_id_column), checker=sql.Identifier(c.postgres_checker_column),
        table=sql.Identifier(*c.postgres_violations_table.split(".")))
    try:
        with psycopg.connect(connect_timeout=5, **pg_kwargs) as conn:
            for checker, want in expected.items():
                for chunk in _chunks(sorted(want), 5000):
                    cur = conn.execute(select, (checker, chunk))
                    found[checker].update(r[0] for r in cur.fetchall())
    except psycopg.Error as exc:
        raise ProbeError(f"PostgreSQL at {pg_kwargs.get('host')}:{pg_kwargs.get('port')}: reading "
                         f"{c.postgres_violations_table} failed: {exc}") from None
    return {checker: sorted(want - found[checker]) for checker, want in expected.items()}


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
