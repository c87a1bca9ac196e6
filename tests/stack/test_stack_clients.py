"""The running stack serves real clients: direct endpoints and every toxiproxy edge."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
import requests
from clickhouse_driver import Client
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from stack.core import LocalStack

pytestmark = pytest.mark.stack


def _roundtrip(bootstrap: str, topic: str) -> tuple[bytes, int, int]:
    """Produce one unique message with acks=all and read it back at its partition and offset."""
    payload = f"roundtrip-{uuid.uuid4()}".encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=10000)
    try:
        meta = producer.send(topic, payload).get(timeout=15)
    finally:
        producer.close(timeout=5)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    try:
        tp = TopicPartition(topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = next(iter(consumer))
    finally:
        consumer.close()
    assert record.value == payload, "the message read back is not the one produced"
    return payload, meta.partition, meta.offset


def test_kafka_roundtrip_direct(stack: LocalStack) -> None:
    _roundtrip(stack.endpoints.kafka_bootstrap, stack.ctx.topic)


def test_topic_has_six_partitions(stack: LocalStack) -> None:
    consumer = KafkaConsumer(bootstrap_servers=stack.endpoints.kafka_bootstrap)
    try:
        partitions = consumer.partitions_for_topic(stack.ctx.topic)
    finally:
        consumer.close()
    assert partitions is not None and len(partitions) >= 6


def test_postgres_select_1_and_schema(stack: LocalStack) -> None:
    with psycopg.connect(**stack.ctx.postgres_kwargs(), connect_timeout=5) as conn:  # type: ignore[arg-type]
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT to_regclass('violations')").fetchone() == ("violations",)


def test_clickhouse_select_1_and_schema(stack: LocalStack) -> None:
    client = Client(host="127.0.0.1", port=stack.endpoints.clickhouse_port, connect_timeout=5)
    try:
        assert client.execute("SELECT 1") == [(1,)]
        assert client.execute("EXISTS TABLE sqlaudit.audit_events") == [(1,)]
    finally:
        client.disconnect()


def test_prometheus_ready_and_scraping_every_target(stack: LocalStack) -> None:
    url = stack.endpoints.prometheus_url
    assert requests.get(f"{url}/-/ready", timeout=5).status_code == 200
    expected = {c.name for c in stack.components() if c.metrics} | {"prometheus"}
    deadline = time.monotonic() + 20
    while True:
        resp = requests.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=5).json()
        up = {r["metric"].get("component"): r["value"][1] for r in resp["data"]["result"]}
        if set(up) >= expected and all(up[c] == "1" for c in expected):
            break
        assert time.monotonic() < deadline, f"Prometheus targets not all up: {up}, expected {sorted(expected)}"
        time.sleep(1)
    cfg = requests.get(f"{url}/api/v1/status/config", timeout=5).json()["data"]["yaml"]
    assert "scrape_interval: 1s" in cfg


def test_toxiproxy_lists_one_proxy_per_edge(stack: LocalStack) -> None:
    proxies = requests.get(f"{stack.endpoints.toxiproxy_url}/proxies", timeout=5).json()
    assert set(proxies) == {"kafka", "postgres", "clickhouse"}
    for name, (listen, upstream) in stack.endpoints.proxies().items():
        assert proxies[name]["listen"] == f"127.0.0.1:{listen}"
        assert proxies[name]["upstream"] == f"127.0.0.1:{upstream}"
        assert proxies[name]["enabled"] is True


def _set_proxy(stack: LocalStack, name: str, enabled: bool) -> None:
    resp = requests.post(f"{stack.endpoints.toxiproxy_url}/proxies/{name}", json={"enabled": enabled}, timeout=5)
    resp.raise_for_status()


def _pg_via_proxy(stack: LocalStack) -> object:
    with psycopg.connect(**stack.ctx.postgres_kwargs(via_proxy=True), connect_timeout=3) as conn:  # type: ignore[arg-type]
        return conn.execute("SELECT 1").fetchone()


def _ch_via_proxy(stack: LocalStack) -> object:
    client = Client(host="127.0.0.1", port=stack.endpoints.clickhouse_port_service, connect_timeout=3,
                    send_receive_timeout=5)
    try:
        return client.execute("SELECT 1")
    finally:
        client.disconnect()


def test_traffic_passes_through_each_proxy_and_stops_when_it_is_cut(stack: LocalStack) -> None:
    """Real traffic through every edge; disabling a proxy really cuts it (so faults will bite)."""
    assert _pg_via_proxy(stack) == (1,)
    assert _ch_via_proxy(stack) == [(1,)]
    # Kafka via the SERVICE listener: metadata advertises the proxy, so produce and fetch go through it.
    _roundtrip(stack.endpoints.kafka_bootstrap_service, stack.ctx.topic)

    for name, call in (("postgres", _pg_via_proxy), ("clickhouse", _ch_via_proxy)):
        _set_proxy(stack, name, False)
        try:
            with pytest.raises(Exception):  # noqa: B017 - any client error proves the edge is cut
                call(stack)
        finally:
            _set_proxy(stack, name, True)
        assert call(stack) in ((1,), [(1,)]), f"{name} edge did not come back after re-enabling"
