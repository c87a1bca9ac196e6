"""Fixtures of the load-generator tests: fresh topics on the session's stack and a Kafka read-back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic

from stack.core import LocalStack


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: LocalStack) -> str:
    """The DIRECT Kafka listener of the session's stack (what the load generator uses)."""
    return stack.endpoints.kafka_bootstrap


@pytest.fixture
def fresh_topic(kafka_bootstrap: str) -> Iterator[Callable[[int], str]]:
    """Factory of new, empty topics (``partitions`` each), deleted after the test."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10000,
                             client_id="tests-load-admin")
    made: list[str] = []

    def make(partitions: int = 3) -> str:
        name = f"loadtest-{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)], timeout_ms=10000)
        made.append(name)
        _wait_for_leaders(kafka_bootstrap, name, partitions)
        return name

    try:
        yield make
    finally:
        try:
            if made:
                admin.delete_topics(made, timeout_ms=10000)
        finally:
            admin.close()


def _wait_for_leaders(bootstrap: str, topic: str, partitions: int, timeout: float = 15.0) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10000, client_id="tests-load-meta")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = consumer.partitions_for_topic(topic)
            if found and len(found) == partitions:
                return
            time.sleep(0.2)
        raise AssertionError(f"topic {topic} has no {partitions} led partitions after {timeout:.0f} s")
    finally:
        consumer.close()
