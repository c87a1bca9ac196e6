"""The Spring service stores exactly the events it was sent and the violations the rules predict.

The expected violations are computed by the Python reference's checker engine over the same events in
the same partition order: the two services must agree verdict for verdict on a real stack.
"""

from __future__ import annotations

import pytest

from sqlaudit.checkers import CheckerEngine
from sqlaudit.config import DEFAULT_CHECKERS_FILE, load_checkers_config
from sqlaudit.events import SqlEvent, SqlType, now_ms
from tests.spring.spring_harness import SpringService, make_event

pytestmark = [pytest.mark.stack, pytest.mark.spring]


def _events(tag: str) -> list[SqlEvent]:
    """Events for four apps, all inside one 10 s window, that make every checker fire both ways or not."""
    window_ms = 10_000
    start = (now_ms() // window_ms) * window_ms  # the window of now: nothing is late
    at = iter(range(start, start + window_ms))
    out: list[SqlEvent] = []
    slow = f"slow-{tag}"
    out += [make_event(slow, duration_ms=d, produced_at=next(at)) for d in (1000, 1001, 5000, 5001, 2**40)]
    impact = f"impact-{tag}"
    out += [make_event(impact, sql_type=t, rows_affected=r, produced_at=next(at))
            for t, r in ((SqlType.UPDATE, 1000), (SqlType.UPDATE, 1001), (SqlType.DELETE, 10001),
                         (SqlType.SELECT, 50000), (SqlType.INSERT, 50000))]
    errors = f"errors-{tag}"  # 2/3 errors: WARNING at event 20; then all errors: CRITICAL once the ratio > 0.9
    out += [make_event(errors, sql=f"SELECT {i} FROM t", error_code="40001" if i % 3 else None, produced_at=next(at))
            for i in range(30)]
    out += [make_event(errors, sql=f"SELECT {i} FROM t", error_code="40001", produced_at=next(at))
            for i in range(300)]
    freq = f"freq-{tag}"  # one normalised statement 1001 times: WARNING at 101, CRITICAL at 1001
    out += [make_event(freq, sql=f"SELECT * FROM orders WHERE id = {i}", produced_at=next(at)) for i in range(1001)]
    return out


def test_events_and_violations_land_exactly(spring: SpringService) -> None:
    replica = spring.start()
    replica.wait_consuming()
    tag = spring.tag
    events = _events(tag)
    metas = spring.send_all(events)

    # What the rules predict, from the Python reference engine, in partition order.
    engine = CheckerEngine(load_checkers_config(DEFAULT_CHECKERS_FILE, env={}))
    ordered = sorted(zip(metas, events, strict=True), key=lambda me: (me[0].partition, me[0].offset))
    predicted, _ = engine.evaluate([(m.partition, e) for m, e in ordered])
    expected = {(v.event_id, v.checker, v.severity.value) for v in predicted}
    kinds = {(c, s) for _, c, s in expected}
    assert kinds == {(c, s) for c in ("SlowQuery", "ActualImpact", "ErrorRate", "Frequency")
                     for s in ("WARNING", "CRITICAL")}, f"the events were meant to fire every rule both ways: {kinds}"

    apps = sorted({e.app for e in events})
    for app in apps:
        ids = {e.event_id for e in events if e.app == app}
        spring.wait_stored(app, ids)
        assert spring.stored_ids(app) == ids, f"{app}: ClickHouse holds events that were never sent"
    spring.wait_no_lag()
    got = set().union(*(spring.violations(app) for app in apps))
    assert got == expected, (f"missing {sorted(expected - got, key=str)[:5]}, "
                             f"unexpected {sorted(got - expected, key=str)[:5]}")

    # The row as the Python sink writes it.
    huge = next(e for e in events if e.duration_ms == 2**40)
    meta = metas[events.index(huge)]
    row = spring.ch.execute(
        f"SELECT toString(event_id), sql_type, duration_ms, error_code, produced_at_ms, toUnixTimestamp(produced_date),"
        f" kafka_partition, kafka_offset, replica FROM {spring.stack.ctx.ch_database}.audit_events "
        "WHERE event_id = %(id)s", {"id": str(huge.event_id)})
    assert row == [(str(huge.event_id), "SELECT", 2**32 - 1, "", huge.produced_at, huge.produced_at // 1000,
                    meta.partition, meta.offset, replica.name)]

    # The business counter agrees with the store.
    assert replica.metric("sqlaudit_events_processed_total") == len(events)
    assert replica.metric("sqlaudit_checker_violations_total") == len(expected)


@pytest.mark.extended
def test_a_second_delivery_changes_nothing(spring: SpringService) -> None:
    """At-least-once: the same events sent again (new offsets, same ids) leave one event and one
    violation row per id, as the ReplacingMergeTree count and the upsert promise."""
    replica = spring.start()
    replica.wait_consuming()
    app = f"again-{spring.tag}"
    events = [make_event(app, duration_ms=2000) for _ in range(50)]
    spring.send_all(events)
    spring.send_all(events)
    spring.wait_no_lag()
    ids = {e.event_id for e in events}
    assert spring.stored_ids(app) == ids
    assert spring.violations(app) == {(i, "SlowQuery", "WARNING") for i in ids}
    rows = spring.ch.execute(f"SELECT count() FROM {spring.stack.ctx.ch_database}.audit_events WHERE app = %(a)s",
                             {"a": app})[0][0]
    assert rows in (50, 100), f"{rows} physical rows: each id written once per delivery (or merged)"
