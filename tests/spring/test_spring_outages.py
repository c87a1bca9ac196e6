"""A store out of reach for 10 s: nothing is lost, and the offsets are not committed until both stores
hold the batch (spring-kafka's error handler retries the same batch, partitions paused, forever)."""

from __future__ import annotations

import time

import pytest

from tests.spring.spring_harness import Proxy, SpringService, make_event

pytestmark = [pytest.mark.stack, pytest.mark.spring, pytest.mark.extended]

OUTAGE_S = 10.0


def _outage(spring: SpringService, proxy: Proxy, store: str,
            extra_env: dict[str, str] | None = None) -> dict[str, object]:
    """Serve a warm-up batch, cut ``proxy`` for 10 s while a second batch is produced, then check both."""
    replica = spring.start(extra_env=extra_env)
    replica.wait_consuming()
    app = f"{store}-outage-{spring.tag}"
    # Slow queries: every event makes a violation, so every batch needs both stores.
    warm = [make_event(app, duration_ms=2000) for _ in range(50)]
    spring.send_all(warm)
    spring.wait_stored(app, {e.event_id for e in warm})
    spring.wait_no_lag()
    errors_before = replica.metric("sqlaudit_sink_write_seconds_count", sink=store, outcome="error")

    held = [make_event(app, duration_ms=2000) for _ in range(50)]
    seen: dict[str, object] = {}
    with proxy.cut():
        t0 = time.monotonic()
        spring.send_all(held)  # acknowledged by Kafka: from here on, losing one is data loss
        time.sleep(max(0.0, OUTAGE_S - 2 - (time.monotonic() - t0)))
        seen["lag_during"] = spring.lag()
        seen["committed_during"] = spring.committed()
        seen["stored_during"] = len({e.event_id for e in held} & spring.stored_ids(app))
        seen["violations_during"] = len({e.event_id for e in held} & {v[0] for v in spring.violations(app)})
        seen["readiness_during"] = replica.status("/actuator/health/readiness")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t0)))
    t_back = time.monotonic()
    ids = {e.event_id for e in warm + held}
    spring.wait_stored(app, ids)
    spring.wait_no_lag()
    seen["recovered_s"] = round(time.monotonic() - t_back, 1)
    assert spring.stored_ids(app) == ids
    assert {v[0] for v in spring.violations(app)} == ids, "a violation was lost"
    seen["write_errors"] = replica.metric("sqlaudit_sink_write_seconds_count", sink=store, outcome="error") \
        - errors_before
    assert replica.alive(), replica.tail()
    print(f"{store} out for {OUTAGE_S:.0f} s: {seen}")
    # The fault bit: mid-outage the held batch was not committed (the lag is the held events).
    assert seen["lag_during"] == len(held), seen
    return seen


def test_postgres_unreachable_for_10_s_loses_nothing_and_commit_waits(spring: SpringService) -> None:
    """With Spring's default pool (HikariCP waits up to 30 s for a connection) the write blocks through
    a 10 s outage and succeeds once PostgreSQL is back: no error, no retry, the commit simply waits."""
    seen = _outage(spring, spring.pg_proxy, "postgres")
    assert seen["violations_during"] == 0, "violations were written through a cut proxy"


def test_postgres_errors_are_retried_never_skipped(spring: SpringService) -> None:
    """A 2 s pool timeout turns the same outage into failed writes: the batch is retried, not skipped."""
    seen = _outage(spring, spring.pg_proxy, "postgres", {"SPRING_DATASOURCE_HIKARI_CONNECTIONTIMEOUT": "2000"})
    assert seen["violations_during"] == 0, "violations were written through a cut proxy"
    errors = seen["write_errors"]
    assert isinstance(errors, float) and errors > 0, "no failed PostgreSQL write was counted: the fault did not bite"


def test_clickhouse_unreachable_for_10_s_loses_nothing_and_commit_waits(spring: SpringService) -> None:
    seen = _outage(spring, spring.ch_proxy, "clickhouse")
    assert seen["stored_during"] == 0, "events were stored through a cut proxy"
    assert seen["violations_during"] == 0, "PostgreSQL was written before ClickHouse held the batch"
    errors = seen["write_errors"]
    assert isinstance(errors, float) and errors > 0, "no failed ClickHouse write was counted (sqlaudit.sink.write)"
