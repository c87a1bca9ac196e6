"""Helpers for the Spring Boot service's tests: real replicas of ``services/spring`` beside the stack.

Each test gets its own topic (6 partitions), dead-letter topic and consumer group, so the stack's own
Python replicas are not disturbed, and the Spring replicas write to the stack's real ClickHouse table and
PostgreSQL ``violations`` through two toxiproxy proxies of their own (created on the stack's toxiproxy,
deleted at the end), which a test can cut to make a store unreachable. Kafka is reached directly.

Every wait is bounded and fails naming what was awaited and what was seen.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from clickhouse_driver import Client
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from sqlaudit.events import SqlEvent, SqlType, now_ms
from stack.core import LocalStack
from stack.paths import REPO_ROOT

logger = logging.getLogger(__name__)

BUILD = REPO_ROOT / "services" / "spring" / "build.sh"
JVM_OPTIONS = ["-Xms64m", "-Xmx256m", "-Xss512k", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError"]
JWT_SECRET = "spring-test-secret-" + "0123456789abcdef" * 2  # 51 bytes: HS256 needs 32 at least
PARTITIONS = 6
HTTP_TIMEOUT = 15.0  # generous: a cold JVM on a busy 2-core machine answers its first requests slowly
TOXIPROXY_TIMEOUT = (2.0, 5.0)
PYTHON_ONLY_SERIES = ("sqlaudit_ready", "sqlaudit_sink_up", "sqlaudit_consumer_paused", "sqlaudit_pending_events",
                      "sqlaudit_partitions_assigned", "sqlaudit_rebalances_total", "sqlaudit_offset_commits_total",
                      "sqlaudit_events_consumed_total", "sqlaudit_events_dead_lettered_total",
                      "sqlaudit_processing_latency_seconds", "sqlaudit_end_to_end_latency_seconds",
                      "sqlaudit_sink_write_latency_seconds", "sqlaudit_sink_write_errors_total",
                      "sqlaudit_sink_write_retries_total", "sqlaudit_batch_size", "sqlaudit_violations_total")


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_jar() -> Path:
    """The service's jar: ``services/spring/build.sh --print-jar`` (a no-op when cached)."""
    out = subprocess.run(["bash", str(BUILD), "--print-jar"], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        pytest.fail(f"{BUILD} failed (exit {out.returncode}):\n{out.stderr[-4000:]}")
    jar = Path(out.stdout.strip().splitlines()[-1])
    assert jar.is_file(), f"{BUILD} printed {jar}, which is not a file"
    return jar


def jwt(secret: str = JWT_SECRET, *, exp_in: float = 300.0, alg: str = "HS256", sub: str = "sre") -> str:
    """An HS256 JSON Web Token expiring ``exp_in`` seconds from now (negative: already expired)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64(json.dumps({"sub": sub, "iat": now, "exp": int(now + exp_in)}).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = b64(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()) if alg == "HS256" else ""
    return f"{header}.{payload}.{signature}"


def make_event(app: str, *, sql: str = "SELECT 1", sql_type: SqlType = SqlType.SELECT, duration_ms: int = 3,
               rows_affected: int = 1, error_code: str | None = None, produced_at: int | None = None) -> SqlEvent:
    return SqlEvent(event_id=uuid.uuid4(), app=app, database="shop", sql=sql, sql_type=sql_type,
                    duration_ms=duration_ms, rows_affected=rows_affected, error_code=error_code,
                    produced_at=now_ms() if produced_at is None else produced_at)


class Proxy:
    """A toxiproxy proxy of this test's own on the stack's toxiproxy (never one of the stack's edges)."""

    def __init__(self, api: str, name: str, upstream_port: int) -> None:
        self.api = api
        self.name = name
        self.port = free_port()
        resp = requests.post(f"{api}/proxies", json={"name": name, "listen": f"127.0.0.1:{self.port}",
                                                     "upstream": f"127.0.0.1:{upstream_port}", "enabled": True},
                             timeout=TOXIPROXY_TIMEOUT)
        resp.raise_for_status()

    def set_enabled(self, enabled: bool) -> None:
        """Enable or disable: a disabled proxy refuses new connections and closes open ones."""
        resp = requests.post(f"{self.api}/proxies/{self.name}", json={"enabled": enabled}, timeout=TOXIPROXY_TIMEOUT)
        resp.raise_for_status()
        logger.info("proxy %s %s", self.name, "enabled" if enabled else "disabled")

    @contextmanager
    def cut(self) -> Iterator[None]:
        """The proxy disabled inside the block, enabled again on the way out, whatever happened."""
        self.set_enabled(False)
        try:
            yield
        finally:
            self.set_enabled(True)

    def delete(self) -> None:
        resp = requests.delete(f"{self.api}/proxies/{self.name}", timeout=TOXIPROXY_TIMEOUT)
        if resp.status_code not in (204, 404):
            resp.raise_for_status()


@dataclass
class Replica:
    """One running replica: a ``java -jar`` process with its own HTTP port and log file."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status(self, path: str) -> int:
        try:
            return requests.get(self.url + path, timeout=HTTP_TIMEOUT).status_code
        except requests.RequestException:
            return 0

    def get(self, path: str, token: str | None = None, **params: str | int) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return requests.get(self.url + path, headers=headers, params=params, timeout=HTTP_TIMEOUT)

    def metrics(self) -> str:
        return requests.get(self.url + "/actuator/prometheus", timeout=HTTP_TIMEOUT).text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        # Greedy up to the last "}": a label value may hold braces (uri="/api/v1/events/{id}").
        pattern = re.compile(rf"^{re.escape(name)}(\{{.*\}})? (\S+)$", re.M)
        for m in pattern.finditer(self.metrics()):
            lbl = m.group(1) or ""
            if all(f'{k}="{v}"' in lbl for k, v in labels.items()):
                total += float(m.group(2))
        return total

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def wait_consuming(self, timeout: float = 180) -> None:
        """Until the replica answers readiness and its listener has partitions assigned (from its log)."""
        wait_until(f"{self.name} ready (HTTP 200 on /actuator/health/readiness)",
                   lambda: self.status("/actuator/health/readiness") == 200 or not self.alive(), timeout,
                   seen=self.tail)
        assert self.alive(), f"{self.name} exited with {self.proc.returncode}: {self.tail()}"
        wait_until(f"{self.name} assigned partitions", lambda: "assigned" in self.log.read_text(errors="replace"),
                   timeout, seen=self.tail)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the exit (SIGKILL after ``timeout``); returns the exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no commit, no LeaveGroup."""
        self.proc.kill()
        self.proc.wait()


@dataclass
class SpringService:
    """A topic, its dead-letter topic and a consumer group served by Spring replicas started by the test."""

    stack: LocalStack
    jar: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    replicas: list[Replica] = field(default_factory=list)

    def __post_init__(self) -> None:
        eps = self.stack.endpoints
        self.topic = f"spring-{self.tag}"
        self.dlq_topic = f"{self.topic}-dlq"
        self.group = f"spring-{self.tag}"
        self.admin = KafkaAdminClient(bootstrap_servers=eps.kafka_bootstrap, client_id="test-spring",
                                      request_timeout_ms=10000)
        self.admin.create_topics([NewTopic(self.topic, num_partitions=PARTITIONS, replication_factor=1),
                                  NewTopic(self.dlq_topic, num_partitions=1, replication_factor=1)])
        self.producer = KafkaProducer(bootstrap_servers=eps.kafka_bootstrap, acks="all", linger_ms=5,
                                      client_id="test-spring")
        self.offsets = KafkaConsumer(bootstrap_servers=eps.kafka_bootstrap, client_id="test-spring-offsets",
                                     request_timeout_ms=10000)
        api = eps.toxiproxy_url
        self.pg_proxy = Proxy(api, f"spring-{self.tag}-postgres", eps.port("postgres"))
        self.ch_proxy = Proxy(api, f"spring-{self.tag}-clickhouse-http", eps.port("clickhouse_http"))
        self.ch = Client(host=eps.clickhouse_host, port=eps.clickhouse_port, connect_timeout=5,
                         send_receive_timeout=10)
        self.pg = psycopg.connect(connect_timeout=5, autocommit=True,
                                  **self.stack.ctx.postgres_kwargs())  # type: ignore[arg-type]

    # --- replicas ------------------------------------------------------------
    def environment(self, name: str, port: int) -> dict[str, str]:
        eps, ctx = self.stack.endpoints, self.stack.ctx
        return {
            "SPRING_KAFKA_BOOTSTRAP_SERVERS": eps.kafka_bootstrap,
            "SPRING_DATASOURCE_URL": f"jdbc:postgresql://127.0.0.1:{self.pg_proxy.port}/{ctx.pg_database}"
                                     "?targetServerType=primary",
            "SPRING_DATASOURCE_USERNAME": ctx.pg_user,
            "SPRING_DATASOURCE_PASSWORD": ctx.secrets.postgres_password,
            "SQLAUDIT_CLICKHOUSE_URLS": f"http://127.0.0.1:{self.ch_proxy.port}",
            "SQLAUDIT_CLICKHOUSE_DATABASE": ctx.ch_database,
            "SQLAUDIT_TOPIC": self.topic,
            "SQLAUDIT_DLQ_TOPIC": self.dlq_topic,
            "SQLAUDIT_GROUP_ID": self.group,
            "SQLAUDIT_REPLICA": name,
            "SQLAUDIT_HTTP_PORT": str(port),
            "SQLAUDIT_JWT_SECRET": JWT_SECRET,
            "SERVER_ADDRESS": "127.0.0.1",
        }

    def start(self, name: str | None = None, extra_env: dict[str, str] | None = None) -> Replica:
        """Start one replica (``java -jar``); returns at once (see :meth:`Replica.wait_consuming`)."""
        name = name or f"spring-{self.tag}-{len(self.replicas)}"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLAUDIT_", "SPRING_"))}
        env.update(self.environment(name, port))
        env.update(extra_env or {})
        log = self.stack.ctx.log_dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(["java", *JVM_OPTIONS, "-jar", str(self.jar)], env=env, stdout=out,
                                    stderr=subprocess.STDOUT)
        replica = Replica(name, port, proc, log)
        self.replicas.append(replica)
        return replica

    def close(self) -> None:
        """Stop every replica (SIGTERM, then SIGKILL), delete the proxies and topics, close the clients."""
        try:
            for r in self.replicas:
                r.terminate(timeout=60)
        finally:
            for closer in (self.pg_proxy.delete, self.ch_proxy.delete, self._delete_topics, self.producer.close,
                           self.offsets.close, self.admin.close, self.ch.disconnect, self.pg.close):
                try:
                    closer()
                except Exception as exc:  # keep closing the rest
                    logger.warning("closing %s: %s", closer, exc)

    def _delete_topics(self) -> None:
        self.admin.delete_topics([self.topic, self.dlq_topic])

    # --- producing -------------------------------------------------------------
    def send(self, event: SqlEvent) -> Any:
        return self.producer.send(self.topic, key=event.app.encode(), value=event.to_bytes())

    def send_all(self, events: list[SqlEvent]) -> list[Any]:
        """Produce ``events`` and wait for every acknowledgement; returns the record metadata, in order."""
        futures = [self.send(e) for e in events]
        self.producer.flush(timeout=30)
        return [f.get(timeout=10) for f in futures]

    # --- kafka -----------------------------------------------------------------
    def tps(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in range(PARTITIONS)]

    def committed(self) -> dict[int, int]:
        """Committed offset per partition of the group (0 when none)."""
        offsets = self.admin.list_group_offsets(self.group).get(self.group, {})
        return {tp.partition: max(0, om.offset) for tp, om in offsets.items() if tp.topic == self.topic}

    def lag(self) -> int:
        ends = self.offsets.end_offsets(self.tps())
        committed = self.committed()
        return sum(ends[tp] - committed.get(tp.partition, 0) for tp in self.tps())

    def wait_no_lag(self, timeout: float = 120) -> None:
        wait_until(f"group {self.group}: lag 0 (every record committed)", lambda: self.lag() == 0, timeout,
                   interval=1.0, seen=lambda: {"lag": self.lag(), "logs": [r.tail(1500) for r in self.replicas]})

    def dead_letters(self) -> list[tuple[dict[str, str], bytes | None, bytes | None]]:
        """Every record of the dead-letter topic: (headers, key, value)."""
        consumer = KafkaConsumer(bootstrap_servers=self.stack.endpoints.kafka_bootstrap, client_id="test-spring-dlq",
                                 enable_auto_commit=False, request_timeout_ms=10000)
        try:
            tps = [TopicPartition(self.dlq_topic, p) for p in consumer.partitions_for_topic(self.dlq_topic) or ()]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            out = []
            deadline = time.monotonic() + 30
            while any(consumer.position(tp) < ends[tp] for tp in tps):
                assert time.monotonic() < deadline, f"could not read {self.dlq_topic} to its end within 30 s"
                for recs in consumer.poll(timeout_ms=500).values():
                    for r in recs:
                        out.append(({k: v.decode(errors="replace") for k, v in r.headers}, r.key, r.value))
            return out
        finally:
            consumer.close()

    # --- stores ----------------------------------------------------------------
    def stored_ids(self, app: str) -> set[uuid.UUID]:
        """Distinct event ids of ``app`` in ClickHouse (duplicates from redelivery collapse here)."""
        rows = self.ch.execute(f"SELECT DISTINCT event_id FROM {self.stack.ctx.ch_database}.audit_events "
                               "WHERE app = %(app)s", {"app": app})
        return {r[0] for r in rows}

    def wait_stored(self, app: str, ids: set[uuid.UUID], timeout: float = 120) -> None:
        wait_until(f"{len(ids)} events of app {app} in ClickHouse", lambda: ids <= self.stored_ids(app), timeout,
                   interval=1.0, seen=lambda: f"{len(ids - self.stored_ids(app))} missing")

    def violations(self, app: str) -> set[tuple[uuid.UUID, str, str]]:
        rows = self.pg.execute("SELECT event_id, checker, severity FROM violations WHERE app = %s", (app,)).fetchall()
        return {(r[0], r[1], r[2]) for r in rows}
