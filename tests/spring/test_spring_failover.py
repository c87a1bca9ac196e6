"""Several ClickHouse URLs are replicas: when the one in use is cut, writes go on through the next one
(the ha profile's second ClickHouse); the PostgreSQL URL may list several hosts (Patroni): a dead one
is skipped."""

from __future__ import annotations

import time

import pytest

from tests.spring.spring_harness import Proxy, SpringService, free_port, make_event

pytestmark = [pytest.mark.stack, pytest.mark.spring, pytest.mark.extended]


def test_writes_fail_over_to_the_next_clickhouse_url(spring: SpringService) -> None:
    eps = spring.stack.endpoints
    # Two proxies to the stack's one ClickHouse server stand for two replicas.
    second = Proxy(eps.toxiproxy_url, f"spring-{spring.tag}-clickhouse-http-2", eps.port("clickhouse_http"))
    try:
        dead_pg = free_port()  # nothing listens there: the driver must move on to the next host
        replica = spring.start(extra_env={
            "SQLAUDIT_CLICKHOUSE_URLS": f"http://127.0.0.1:{spring.ch_proxy.port},http://127.0.0.1:{second.port}",
            "SPRING_DATASOURCE_URL": f"jdbc:postgresql://127.0.0.1:{dead_pg},127.0.0.1:{spring.pg_proxy.port}/"
                                     f"{spring.stack.ctx.pg_database}?targetServerType=primary",
        })
        replica.wait_consuming()
        app = f"failover-{spring.tag}"
        before = [make_event(app, duration_ms=2000) for _ in range(30)]
        spring.send_all(before)
        spring.wait_stored(app, {e.event_id for e in before}, timeout=60)
        for cut in (spring.ch_proxy, second):  # the one in use, then the other
            with cut.cut():
                during = [make_event(app, duration_ms=2000) for _ in range(30)]
                spring.send_all(during)
                # Stored while the URL in use is still cut: the writes went to the other one.
                spring.wait_stored(app, {e.event_id for e in during}, timeout=60)
                spring.wait_no_lag(timeout=60)
            time.sleep(1)
        ids = spring.stored_ids(app)
        assert len(ids) == 90
        assert {v[0] for v in spring.violations(app)} == ids, "violations missing: the PostgreSQL host list failed"
        log = replica.log.read_text(errors="replace")
        assert log.count("clickhouse: next attempt starts at") >= 2, replica.tail()
        errors = replica.metric("sqlaudit_sink_write_seconds_count", sink="clickhouse", outcome="error")
        assert errors >= 2, f"{errors} failed ClickHouse writes: the cuts did not bite"
    finally:
        second.delete()
