"""What the operations guide lists and the Python service lacks: Actuator endpoints, Micrometer metrics
named the Micrometer way, and a read API behind HS256 bearer tokens (401 for a bad one, never 5xx)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from sqlaudit.events import SqlEvent, now_ms
from tests.spring.spring_harness import PYTHON_ONLY_SERIES, Replica, SpringService, jwt, make_event, wait_until

pytestmark = [pytest.mark.stack, pytest.mark.spring]


Served = tuple[Replica, list[SqlEvent]]


@pytest.fixture
def served(spring: SpringService) -> Served:
    """One replica that has stored 40 events of one app (20 of them slow queries)."""
    replica = spring.start()
    replica.wait_consuming()
    app = f"api-{spring.tag}"
    events = [make_event(app, duration_ms=1500) for _ in range(20)] + [make_event(app) for _ in range(20)]
    spring.send_all(events)
    spring.wait_stored(app, {e.event_id for e in events})
    spring.wait_no_lag()
    return replica, events


@pytest.mark.extended
def test_actuator_endpoints_answer(served: Served) -> None:
    replica, _ = served
    for path in ("/actuator/health/liveness", "/actuator/health/readiness"):
        resp = replica.get(path)
        assert resp.status_code == 200 and resp.json()["status"] == "UP", (path, resp.text)
    health = replica.get("/actuator/health").json()
    assert health["status"] == "UP"
    assert health["components"]["db"]["status"] == "UP", health
    assert health["components"]["clickhouse"]["status"] == "UP", health
    props = replica.get("/actuator/configprops")
    assert props.status_code == 200
    beans = props.json()["contexts"]["sql-audit-service"]["beans"]
    prefixes = {b["prefix"] for b in beans.values()}
    assert {"sqlaudit", "sqlaudit.checkers", "spring.kafka", "spring.datasource"} <= prefixes, prefixes
    assert "spring-test-secret" not in props.text, "configprops shows a secret"


def _checkers(props: dict[str, Any]) -> dict[str, Any]:
    beans = props["contexts"]["sql-audit-service"]["beans"]
    return next(b["properties"] for b in beans.values() if b["prefix"] == "sqlaudit.checkers")


@pytest.mark.extended
def test_configprops_shows_values_to_a_token_holder_and_never_a_credential(spring: SpringService) -> None:
    """The guide's diagnosis of a configuration not taking effect reads configprops: a caller with a valid token
    sees the thresholds (what the config_change experiment checks), without one every value is masked, and
    no caller ever sees a password or a secret."""
    replica = spring.start()
    replica.wait_consuming()
    anonymous = replica.get("/actuator/configprops")
    assert _checkers(anonymous.json())["slowQuery"]["thresholdMs"] == "******"
    shown = replica.get("/actuator/configprops", jwt())
    assert isinstance(_checkers(shown.json())["slowQuery"]["thresholdMs"], int), _checkers(shown.json())
    sqlaudit = next(b["properties"] for b in shown.json()["contexts"]["sql-audit-service"]["beans"].values()
                    if b["prefix"] == "sqlaudit")
    assert sqlaudit["jwt"]["secret"] == "******" and sqlaudit["clickhouse"]["password"] == "******", sqlaudit
    assert "spring-test-secret" not in shown.text and spring.stack.ctx.secrets.postgres_password not in shown.text
    assert replica.get("/actuator/configprops", jwt("not-the-key-" + "x" * 32)).status_code == 401


def test_prometheus_has_micrometer_names_and_no_python_ones(
        served: Served) -> None:
    replica, events = served
    replica.get("/api/v1/events/" + str(events[0].event_id), jwt())  # one API request, so http.server.requests exists
    text = replica.metrics()
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )", text, re.M))
    leaked = sorted(n for n in names for p in PYTHON_ONLY_SERIES if n == p or n.startswith(p + "_"))
    assert leaked == [], f"Python-named series exported by the Spring service: {leaked}"
    wanted = [
        "sqlaudit_events_processed_total", "sqlaudit_events_failed_total",
        "sqlaudit_checker_duration_seconds_count", "sqlaudit_checker_violations_total",
        "sqlaudit_sink_write_seconds_count", "sqlaudit_events_latency_seconds_bucket",
        "sqlaudit_events_processing_seconds_bucket",
        "spring_kafka_listener_seconds_count",  # spring-kafka (batch listeners: its Micrometer timer)
        "kafka_consumer_fetch_manager_records_consumed_total",  # Kafka client metrics via Micrometer
        "hikaricp_connections_active", "jvm_memory_used_bytes", "process_cpu_usage",
        "http_server_requests_seconds_bucket", "application_ready_time_seconds",
    ]
    missing = [n for n in wanted if n not in names]
    assert missing == [], f"missing from /actuator/prometheus: {missing}"
    # The latency histogram has a bucket at the SLO's 500 ms and counted every event.
    assert re.search(r'^sqlaudit_events_latency_seconds_bucket\{[^}]*le="0\.5"', text, re.M)
    assert replica.metric("sqlaudit_events_latency_seconds_count") == len(events)


@pytest.mark.extended
def test_api_answers_with_a_valid_token(served: Served) -> None:
    replica, events = served
    token = jwt()
    e = events[0]
    resp = replica.get(f"/api/v1/events/{e.event_id}", token)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["event_id"] == str(e.event_id)
    assert (body["app"], body["sql"], body["duration_ms"], body["produced_at"], body["error_code"]) == \
        (e.app, e.sql, e.duration_ms, e.produced_at, e.error_code)
    assert body["replica"] == replica.name
    assert replica.get(f"/api/v1/events/{uuid.uuid4()}", token).status_code == 404
    assert replica.get("/api/v1/events/not-a-uuid", token).status_code == 400

    since = now_ms() - 600_000
    resp = replica.get("/api/v1/violations", token, checker="SlowQuery", app=e.app, since=since, limit=1000)
    assert resp.status_code == 200, resp.text
    got = {(v["event_id"], v["checker"], v["severity"]) for v in resp.json()}
    assert got == {(str(x.event_id), "SlowQuery", "WARNING") for x in events if x.duration_ms > 1000}
    assert len(replica.get("/api/v1/violations", token, app=e.app, limit=5).json()) == 5
    for params in ({"checker": "Nope"}, {"limit": 0}, {"limit": 1001}, {"since": "yesterday"}):
        assert replica.get("/api/v1/violations", token, **params).status_code == 400, params


@pytest.mark.extended
def test_api_refuses_bad_tokens_with_401_never_5xx(
        served: Served) -> None:
    replica, events = served
    path = f"/api/v1/events/{events[0].event_id}"
    bad = {
        "missing": None,
        "empty": "",
        "garbage": "not.a.jwt",
        "wrong secret": jwt("another-secret-another-secret-another-secret"),
        "expired an hour ago": jwt(exp_in=-3600),
        "alg none": jwt(alg="none"),
    }
    before = replica.metric("http_server_requests_seconds_count", status="401")
    for what, token in bad.items():
        for p in (path, "/api/v1/violations"):
            resp = replica.get(p, token)
            assert resp.status_code == 401, f"{what} on {p}: HTTP {resp.status_code} {resp.text[:200]}"
            assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), (what, resp.headers)
    # The guide's 4xx alert reads http.server.requests: every 401 is counted there (recorded as the
    # request completes on the server, a moment after the client has its answer).
    wait_until("every 401 counted in http_server_requests_seconds_count",
               lambda: replica.metric("http_server_requests_seconds_count", status="401") >= before + 2 * len(bad),
               timeout=15, seen=lambda: replica.metric("http_server_requests_seconds_count", status="401"))
    assert replica.get(path, jwt()).status_code == 200
