"""Read a topic back from Kafka by partition and offset (what the ledger claims is there)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

READ_BACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def read_topic(bootstrap: str, topic: str, timeout: float = READ_BACK_TIMEOUT_S) -> dict[tuple[int, int], Message]:
    """Every message of ``topic`` by ``(partition, offset)``, read with a consumer assigned to each
    partition from its beginning up to its end offset. Fails after ``timeout`` seconds."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             request_timeout_ms=10000, client_id="tests-load-readback")
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or [])
        assert parts, f"topic {topic} not found"
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: dict[tuple[int, int], Message] = {}
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                missing = {tp.partition: (consumer.position(tp), ends[tp]) for tp in tps}
                raise AssertionError(f"read-back of {topic} incomplete after {timeout:.0f} s: {missing}")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    if r.offset < ends[tp]:
                        out[(tp.partition, r.offset)] = Message(tp.partition, r.offset, r.key, r.value)
        return out
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """End offset of every partition of ``topic``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10000, client_id="tests-load-ends")
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
