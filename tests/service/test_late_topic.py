"""A replica started before its topic exists takes partitions as soon as the topic appears.

On a fresh machine supervisord starts the replicas together with the broker, and the topics are
created a moment later. A replica that joined the group first used to get an empty assignment and
stay unready until its client's next metadata refresh (five minutes by default), past the stack's
60 s start-up deadline. This drives one extra replica through exactly that order.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from kafka.admin import KafkaAdminClient, NewTopic
from service_harness import wait_until

from stack.core import LocalStack

pytestmark = pytest.mark.stack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def late_topic(stack: LocalStack) -> Iterator[tuple[str, KafkaAdminClient]]:
    topic = f"late-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.endpoints.kafka_bootstrap, client_id="test-late-topic")
    try:
        yield topic, admin
    finally:
        try:
            admin.delete_topics([t for t in (topic, f"{topic}-dlq") if t in set(admin.list_topics())])
        finally:
            admin.close()


def test_replica_started_before_its_topic_becomes_ready_when_it_appears(
        stack: LocalStack, late_topic: tuple[str, KafkaAdminClient]) -> None:
    topic, admin = late_topic
    replica = next(c for c in stack.components() if c.name == "audit-service-0")
    port = _free_port()
    env = {**os.environ, **(replica.environment or {}),
           "SQLAUDIT_REPLICA": "audit-service-late", "SQLAUDIT_HTTP_PORT": str(port),
           "SQLAUDIT_TOPIC": topic, "SQLAUDIT_DLQ_TOPIC": f"{topic}-dlq", "SQLAUDIT_GROUP_ID": f"group-{topic}"}
    log = stack.ctx.log_dir / "audit-service-late.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(replica.command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/actuator/health/readiness"

    def status() -> int:
        try:
            return requests.get(url, timeout=2).status_code
        except requests.RequestException:
            return 0

    try:
        wait_until("the late replica serves HTTP", lambda: status() != 0, timeout=30)
        time.sleep(3)  # long enough to have joined the group, had there been a topic
        assert status() == 503, "a replica with no topic to consume must not be ready"
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1),
                             NewTopic(f"{topic}-dlq", num_partitions=1, replication_factor=1)])
        t0 = time.monotonic()
        wait_until("the late replica ready once its topic exists", lambda: status() == 200, timeout=30,
                   seen=lambda: log.read_text(errors="replace")[-2000:])
        print(f"ready {time.monotonic() - t0:.1f} s after the topic was created")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
