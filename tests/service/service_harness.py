"""Helpers for the audit-service tests: a harness around the replicas of the real stack.

The replicas run under the stack's supervisor (``audit-service-0..2``); tests produce with their
own kafka-python producer on the DIRECT listener and read ClickHouse and PostgreSQL directly.
Every wait is bounded and fails with a message that says what was awaited and what was seen.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import requests
from clickhouse_driver import Client
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from sqlaudit.events import SqlEvent, SqlType, now_ms
from sqlaudit.queries import count_events
from stack.components.audit_service import replica_name
from stack.core import LocalStack
from stack.endpoints import CONSUMER_GROUP

SUPERVISOR_GROUP = "audit-service"


def wait_until(what: str, cond: Callable[[], Any], timeout: float, interval: float = 0.5,
               seen: Callable[[], object] | None = None) -> Any:
    """Poll ``cond`` until it returns something truthy; fail naming ``what`` (and what was seen) on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    detail = seen() if seen else last
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {detail!r}")


def make_event(app: str, *, sql: str = "SELECT 1", sql_type: SqlType = SqlType.SELECT, duration_ms: int = 3,
               rows_affected: int = 1, error_code: str | None = None, produced_at: int | None = None,
               database: str = "shop") -> SqlEvent:
    return SqlEvent(event_id=uuid.uuid4(), app=app, database=database, sql=sql, sql_type=sql_type,
                    duration_ms=duration_ms, rows_affected=rows_affected, error_code=error_code,
                    produced_at=now_ms() if produced_at is None else produced_at)


@dataclass
class Harness:
    """The stack seen from the audit service's point of view."""

    stack: LocalStack
    producer: KafkaProducer
    ch: Client
    pg: psycopg.Connection[Any]

    @property
    def replicas(self) -> list[str]:
        return [replica_name(i) for i in range(self.stack.ctx.replicas)]

    def replica_port(self, name: str) -> int:
        return self.stack.endpoints.replica_port(int(name.rsplit("-", 1)[1]))

    # --- producing ---------------------------------------------------------
    def send(self, event: SqlEvent) -> Any:
        return self.producer.send(self.stack.ctx.topic, key=event.app.encode(), value=event.to_bytes())

    def send_all(self, events: list[SqlEvent]) -> None:
        """Produce ``events`` and wait for every acknowledgement (raises if one fails)."""
        futures = [self.send(e) for e in events]
        self.producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=10)

    # --- replicas ------------------------------------------------------------
    def readiness(self, name: str) -> tuple[int, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.replica_port(name)}/actuator/health/readiness"
        try:
            resp = requests.get(url, timeout=2)
            return resp.status_code, resp.json()
        except (requests.RequestException, ValueError) as exc:
            return 0, {"error": f"{type(exc).__name__}: {exc}"}

    def all_ready(self) -> dict[str, int]:
        return {n: self.readiness(n)[0] for n in self.replicas}

    def wait_all_ready(self, timeout: float = 90) -> None:
        wait_until("every replica ready (HTTP 200)", lambda: all(c == 200 for c in self.all_ready().values()),
                   timeout, seen=lambda: {n: self.readiness(n) for n in self.replicas})

    def process_info(self) -> dict[str, dict[str, Any]]:
        return self.stack.supervisor.process_info()

    def pids(self) -> dict[str, int]:
        info = self.process_info()
        return {n: int(info[n]["pid"]) for n in self.replicas}

    def metric_sum(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Sum of ``name`` over every replica's /metrics (series matching ``labels``)."""
        total = 0.0
        pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.M)
        for rep in self.replicas:
            try:
                text = requests.get(f"http://127.0.0.1:{self.replica_port(rep)}/metrics", timeout=2).text
            except requests.RequestException:
                continue
            for m in pattern.finditer(text):
                lbl = m.group(1) or ""
                if all(f'{k}="{v}"' in lbl for k, v in (labels or {}).items()):
                    total += float(m.group(2))
        return total

    # --- stores --------------------------------------------------------------
    def stored(self, app: str) -> int:
        return count_events(self.ch, self.stack.ctx.ch_database, app=app)

    def wait_stored(self, app: str, expected: int, timeout: float = 60) -> None:
        wait_until(f"{expected} distinct events of app {app} in ClickHouse",
                   lambda: self.stored(app) >= expected, timeout, seen=lambda: self.stored(app))

    def violations(self, app: str) -> set[tuple[uuid.UUID, str, str]]:
        rows = self.pg.execute("SELECT event_id, checker, severity FROM violations WHERE app = %s",
                               (app,)).fetchall()
        return {(r[0], r[1], r[2]) for r in rows}

    # --- kafka ---------------------------------------------------------------
    def group_lag(self) -> int:
        """Records of the events topic not yet committed by the service's group (all partitions)."""
        topic = self.stack.ctx.topic
        admin = KafkaAdminClient(bootstrap_servers=self.stack.endpoints.kafka_bootstrap, request_timeout_ms=5000,
                                 client_id="test-lag")
        consumer = KafkaConsumer(bootstrap_servers=self.stack.endpoints.kafka_bootstrap, request_timeout_ms=5000,
                                 client_id="test-lag")
        try:
            committed = admin.list_group_offsets(CONSUMER_GROUP)[CONSUMER_GROUP]
            tps = [TopicPartition(topic, p) for p in range(self.stack.ctx.partitions)]
            ends = consumer.end_offsets(tps)
        finally:
            admin.close()
            consumer.close()
        lag = 0
        for tp in tps:
            om = committed.get(tp)
            lag += ends[tp] - (om.offset if om is not None and om.offset >= 0 else 0)
        return lag

    def wait_no_lag(self, timeout: float = 90) -> None:
        wait_until("consumer-group lag 0 (every record committed)", lambda: self.group_lag() == 0, timeout,
                   interval=1.0, seen=self.group_lag)
