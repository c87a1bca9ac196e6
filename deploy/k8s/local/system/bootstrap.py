"""Create what the audit service expects in its stores (the local cluster's bootstrap Job).

Kafka: the events topic and its dead-letter topic (6 partitions, replication 3 over the three brokers,
min.insync.replicas 2: one broker down keeps them writable with ``acks=all``).
PostgreSQL: role ``sqlaudit``, database ``sqlaudit``, then sqlaudit/schema/postgres.sql.
ClickHouse: sqlaudit/schema/clickhouse.sql with its table replicated (the local ha stack's engine), on each
replica. Then one warm-up event into the topic (app
``sql-audit-bootstrap``): the service's per-checker and per-sink series exist only after its first
batch, and a run checks that every series it reads exists before it injects anything. Every step is
idempotent; a store that does not answer yet makes the Job fail and Kubernetes retries it.
"""

import contextlib
import json
import time
import uuid
from pathlib import Path

import psycopg
from clickhouse_driver import Client
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from stack.components.clickhouse import replicated_statements

SCHEMA = Path("/opt/sqlaudit/app/sqlaudit/schema")
TOPICS = ("sql-audit-events", "sql-audit-events-dlq")
CLICKHOUSE_REPLICAS = ("clickhouse-0", "clickhouse-1")  # clickhouse.yaml's StatefulSet


def kafka() -> None:
    admin = KafkaAdminClient(bootstrap_servers="kafka:9092", client_id="sql-audit-bootstrap",
                             request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(t, num_partitions=6, replication_factor=3, topic_configs={"min.insync.replicas": "2"})
                  for t in TOPICS if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted, timeout_ms=10000)
    finally:
        admin.close()
    print("kafka: topics", ", ".join(TOPICS), flush=True)


def postgres() -> None:
    with psycopg.connect(host="postgres", user="postgres", dbname="postgres", connect_timeout=5,
                         autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'sqlaudit'").fetchone():
            conn.execute("CREATE ROLE sqlaudit LOGIN")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'sqlaudit'").fetchone():
            conn.execute("CREATE DATABASE sqlaudit OWNER sqlaudit")
    with psycopg.connect(host="postgres", user="sqlaudit", dbname="sqlaudit", connect_timeout=5,
                         autocommit=True) as conn:
        conn.execute((SCHEMA / "postgres.sql").read_text())
    print("postgres: role, database and schema", flush=True)


def clickhouse() -> None:
    path = SCHEMA / "clickhouse.sql"
    statements = replicated_statements(path.read_text(), str(path))
    for replica in CLICKHOUSE_REPLICAS:
        client = Client(host=f"{replica}.clickhouse-replicas", port=9000, connect_timeout=5)
        try:
            for stmt in statements:
                client.execute(stmt)
        finally:
            client.disconnect()
    print("clickhouse: replicated schema on", ", ".join(CLICKHOUSE_REPLICAS), flush=True)


def warm_up() -> None:
    event = {"schema_version": 1, "event_id": str(uuid.uuid4()), "app": "sql-audit-bootstrap", "database": "warmup",
             "sql": "SELECT 1", "sql_type": "SELECT", "duration_ms": 1, "rows_affected": 1,
             "produced_at": int(time.time() * 1000)}
    producer = KafkaProducer(bootstrap_servers="kafka:9092", acks="all")
    try:
        producer.send(TOPICS[0], json.dumps(event).encode()).get(timeout=30)
    finally:
        producer.close()
    print("kafka: one warm-up event", event["event_id"], flush=True)


if __name__ == "__main__":
    kafka()
    postgres()
    clickhouse()
    warm_up()
