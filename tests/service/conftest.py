"""Fixtures for the audit-service tests (helpers in ``service_harness.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from clickhouse_driver import Client
from kafka import KafkaProducer
from service_harness import Harness

from sqlaudit.config import DEFAULT_CHECKERS_FILE, CheckersConfig, load_checkers_config
from stack.core import LocalStack


@pytest.fixture(scope="session")
def checkers_config() -> CheckersConfig:
    """The thresholds the replicas run with (the packaged file; the stack sets no overrides)."""
    return load_checkers_config(DEFAULT_CHECKERS_FILE, env={})


@pytest.fixture(scope="session")
def harness(stack: LocalStack) -> Iterator[Harness]:
    producer = KafkaProducer(bootstrap_servers=stack.endpoints.kafka_bootstrap, acks="all", linger_ms=5,
                             client_id="test-service")
    ch = Client(host=stack.endpoints.clickhouse_host, port=stack.endpoints.clickhouse_port, connect_timeout=5,
                send_receive_timeout=10)
    pg = psycopg.connect(connect_timeout=5, autocommit=True, **stack.ctx.postgres_kwargs())  # type: ignore[arg-type]
    try:
        yield Harness(stack, producer, ch, pg)
    finally:
        producer.close(timeout=10)
        ch.disconnect()
        pg.close()


@pytest.fixture
def service(harness: Harness) -> Harness:
    """The harness, after checking every replica is ready (a previous test may have restarted one)."""
    harness.wait_all_ready()
    return harness
