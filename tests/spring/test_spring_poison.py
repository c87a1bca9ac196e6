"""A poison message is dead-lettered once, byte for byte, and the partition keeps flowing."""

from __future__ import annotations

import time

import pytest

from tests.spring.spring_harness import SpringService, make_event, wait_until

pytestmark = [pytest.mark.stack, pytest.mark.spring, pytest.mark.extended]


def test_poison_messages_are_dead_lettered_once(spring: SpringService) -> None:
    replica = spring.start()
    replica.wait_consuming()
    app = f"poison-{spring.tag}"
    before = [make_event(app) for _ in range(50)]
    spring.send_all(before)
    poisons: list[tuple[bytes | None, str, str]] = [  # value, metric reason, words the dlq.reason must hold
        (b'{"event_id": "not-closed', "not_json", "not JSON"),
        (make_event(app).model_dump_json(exclude={"duration_ms"}).encode(), "invalid_field", "duration_ms"),
        (make_event(app).model_dump_json().replace('"rows_affected":1', '"rows_affected":"1"').encode(),
         "invalid_field", "rows_affected"),
        (make_event(app, sql="SELECT 'a\x00b'").to_bytes(), "invalid_field", "NUL"),  # valid, but not storable
        (None, "empty", "tombstone"),
    ]
    assert b'"rows_affected":"1"' in (poisons[2][0] or b""), "the mistyped poison was not built"
    metas = [spring.producer.send(spring.topic, key=app.encode(), value=v).get(timeout=10) for v, _, _ in poisons]
    after = [make_event(app) for _ in range(50)]
    spring.send_all(after)
    partition = metas[0].partition
    assert {m.partition for m in metas} == {partition}, "same key, same partition"

    # The partition keeps flowing: everything after the poison is stored and committed.
    spring.wait_stored(app, {e.event_id for e in before + after})
    spring.wait_no_lag()

    def letters() -> list[tuple[dict[str, str], bytes | None, bytes | None]]:
        return [d for d in spring.dead_letters() if d[0].get("dlq.topic") == spring.topic]

    wait_until("5 dead letters", lambda: len(letters()) >= len(poisons), timeout=30, seen=letters)
    time.sleep(3)  # a redelivery loop would dead-letter again: look once more
    got = letters()
    by_offset = {int(h["dlq.offset"]): (h, k, v) for h, k, v in got}
    assert sorted(int(h["dlq.offset"]) for h, _, _ in got) == sorted(m.offset for m in metas), got
    for meta, (value, _, words) in zip(metas, poisons, strict=True):
        headers, key, got_value = by_offset[meta.offset]
        assert got_value == value, f"dead letter of offset {meta.offset} is not the original bytes"
        assert key == app.encode(), "the original key is kept"
        assert int(headers["dlq.partition"]) == partition
        assert headers["dlq.replica"] == replica.name
        assert words in headers["dlq.reason"], f"offset {meta.offset}: dlq.reason {headers['dlq.reason']!r}"
        assert int(headers["dlq.failed_at_ms"]) > 0

    # Counted once each, under the Micrometer name, by reason.
    assert replica.metric("sqlaudit_events_failed_total", reason="not_json") == 1
    assert replica.metric("sqlaudit_events_failed_total", reason="invalid_field") == 3
    assert replica.metric("sqlaudit_events_failed_total", reason="empty") == 1
    assert replica.metric("sqlaudit_sink_write_seconds_count", sink="dlq", outcome="success") >= 1
    assert replica.alive(), "the replica crashed on a poison message"
