"""A poison message is dead-lettered once, the replica does not crash-loop, the partition keeps flowing."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition
from service_harness import Harness, make_event, wait_until

pytestmark = pytest.mark.stack


def _dead_letters(service: Harness, partition: int, offsets: set[int]) -> list[tuple[int, bytes, str]]:
    """Dead letters whose source is ``partition`` at one of ``offsets``: (source offset, value, reason)."""
    dlq = service.stack.ctx.dlq_topic
    consumer = KafkaConsumer(bootstrap_servers=service.stack.endpoints.kafka_bootstrap, client_id="test-dlq",
                             request_timeout_ms=5000, enable_auto_commit=False)
    try:
        tps = [TopicPartition(dlq, p) for p in consumer.partitions_for_topic(dlq) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "could not read the dead-letter topic to its end within 30 s"
            for recs in consumer.poll(timeout_ms=500).values():
                for r in recs:
                    h = {k: v.decode() for k, v in r.headers}
                    if (h.get("dlq.topic") == service.stack.ctx.topic and int(h.get("dlq.partition", -1)) == partition
                            and int(h.get("dlq.offset", -1)) in offsets):
                        out.append((int(h["dlq.offset"]), r.value, h.get("dlq.reason", "")))
        return out
    finally:
        consumer.close()


def test_poison_message_is_dead_lettered_once(service: Harness) -> None:
    app = f"poison-{uuid.uuid4().hex[:8]}"
    pids_before = service.pids()
    dead_before = service.metric_sum("sqlaudit_events_dead_lettered_total")
    failed_before = service.metric_sum("sqlaudit_events_failed_total")

    before = [make_event(app) for _ in range(50)]
    service.send_all(before)
    poisons = [
        b'{"event_id": "not-closed',  # not JSON
        make_event(app).model_dump_json(exclude={"duration_ms"}).encode(),  # missing field
        make_event(app).model_dump_json().replace('"rows_affected":1', '"rows_affected":"1"').encode(),  # mistyped
        make_event(app, sql="SELECT 'a\x00b'").to_bytes(),  # valid JSON and contract, but PostgreSQL rejects NUL
    ]
    assert b'"rows_affected":"1"' in poisons[2], "the mistyped poison was not built"
    metas = []
    for value in poisons:
        metas.append(service.producer.send(service.stack.ctx.topic, key=app.encode(), value=value).get(timeout=10))
    after = [make_event(app) for _ in range(50)]
    service.send_all(after)
    partition = metas[0].partition
    assert {m.partition for m in metas} == {partition}, "same key, same partition"
    poison_offsets = {m.offset for m in metas}

    # The partition keeps flowing: everything after the poison is stored.
    service.wait_stored(app, len(before) + len(after), timeout=60)
    # Each poison dead-lettered once, byte for byte, with a reason.
    letters = wait_until("4 dead letters for the poison offsets",
                         lambda: (lambda r: r if len(r) >= 4 else None)(_dead_letters(service, partition,
                                                                                        poison_offsets)),
                         timeout=30, interval=1)
    time.sleep(3)  # a crash loop would re-deliver and dead-letter again: look once more
    letters = _dead_letters(service, partition, poison_offsets)
    assert sorted(o for o, _, _ in letters) == sorted(poison_offsets), f"dead letters: {letters}"
    by_offset = {o: (v, reason) for o, v, reason in letters}
    for meta, value in zip(metas, poisons, strict=True):
        got, reason = by_offset[meta.offset]
        assert got == value, f"dead letter of offset {meta.offset} is not the original bytes"
        assert reason, f"dead letter of offset {meta.offset} has no dlq.reason header"
    assert "not JSON" in by_offset[metas[0].offset][1]
    assert "duration_ms" in by_offset[metas[1].offset][1]
    assert "rows_affected" in by_offset[metas[2].offset][1]
    assert "NUL" in by_offset[metas[3].offset][1]

    # Counted in metrics, offsets committed, no replica restarted.
    assert service.metric_sum("sqlaudit_events_dead_lettered_total") - dead_before == len(poisons)
    assert service.metric_sum("sqlaudit_events_failed_total") - failed_before == len(poisons)
    service.wait_no_lag(timeout=30)
    assert service.pids() == pids_before, "a replica restarted while handling the poison messages"
    assert all(i["statename"] == "RUNNING" for n, i in service.process_info().items() if n in service.replicas)
