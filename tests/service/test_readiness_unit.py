"""Readiness rules, with a fake clock, without a stack.

The behaviour is proven on real processes in ``test_readiness_live.py``; these pin the rules.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import generate_latest

from sqlaudit.health import Health
from sqlaudit.metrics import Metrics


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _scraped(metrics: Metrics, name: str) -> float:
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


def _ready_health(clock: FakeClock) -> Health:
    health = Health(Metrics("r0"), clock=clock)
    health.started = True
    health.set_sink("clickhouse", True)
    health.set_sink("postgres", True)
    return health


# ----------------------------------------------------------------------- readiness rules
def test_a_replica_without_partitions_is_ready_and_says_it_holds_none() -> None:
    """Rebalancing, or a spare replica when there are more replicas than partitions: alive and
    available (Spring Boot's readiness state is not tied to partition assignment)."""
    health = _ready_health(FakeClock())
    ok, details = health.ready()
    assert ok, details
    assert details["partitions"] == [] and details["assigned"] is False
    health.set_partitions((0, 1))
    ok, details = health.ready()
    assert ok and details["assigned"] is True and details["partitions"] == [0, 1]
    health.set_partitions(())  # revoked (or lost) in a rebalance
    assert health.ready()[0] is True
    assert _scraped(health.metrics, "sqlaudit_ready") == 1.0
    assert _scraped(health.metrics, "sqlaudit_partitions_assigned") == 0.0


@pytest.mark.parametrize("state, reason", [
    ("not started", "starting"),
    ("stopping", "shutting down"),
    ("backpressure", "backpressure: retrying a failed write"),
    ("sink down", "sink unreachable: postgres"),
])
def test_what_still_makes_a_replica_unready(state: str, reason: str) -> None:
    health = _ready_health(FakeClock())
    if state == "not started":
        health.started = False
    elif state == "stopping":
        health.stopping = True
    elif state == "backpressure":
        health.backpressure = True
    else:
        health.set_sink("postgres", False, "connection refused")
    health.refresh()
    ok, details = health.ready()
    assert not ok and reason in details["reasons"], details
    assert _scraped(health.metrics, "sqlaudit_ready") == 0.0


def test_time_not_ready_is_counted_exactly_between_scrapes() -> None:
    """``sqlaudit_not_ready_seconds_total`` keeps a dip that no gauge scrape saw."""
    clock = FakeClock()
    health = Health(Metrics("r0"), clock=clock)
    clock.now += 2.0  # starting: not ready
    health.started = True
    health.set_sink("clickhouse", True)
    health.set_sink("postgres", True)  # ready from here
    assert _scraped(health.metrics, "sqlaudit_not_ready_seconds_total") == 2.0
    clock.now += 30.0
    health.set_partitions(())  # a rebalance is not downtime
    assert _scraped(health.metrics, "sqlaudit_not_ready_seconds_total") == 2.0
    health.backpressure = True
    health.refresh()  # down for 0.25 s: shorter than a 500 ms scrape interval
    clock.now += 0.25
    health.backpressure = False
    health.refresh()
    clock.now += 10.0
    assert _scraped(health.metrics, "sqlaudit_not_ready_seconds_total") == 2.25
    assert _scraped(health.metrics, "sqlaudit_ready") == 1.0
    health.set_sink("clickhouse", False, "timeout")
    clock.now += 1.5  # still down at the scrape: counted up to now
    assert _scraped(health.metrics, "sqlaudit_not_ready_seconds_total") == 3.75


def test_every_readiness_transition_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sqlaudit.health")
    health = _ready_health(FakeClock())
    health.refresh()
    health.backpressure = True
    health.refresh()
    health.refresh()
    lines = [r.getMessage() for r in caplog.records if r.name == "sqlaudit.health" and "readiness" in r.getMessage()]
    assert lines == ["readiness UP (partitions [])", "readiness DOWN: backpressure: retrying a failed write"]


def test_liveness_reads_the_same_clock() -> None:
    clock = FakeClock()
    health = Health(Metrics("r0"), liveness_timeout_s=60.0, clock=clock)
    health.tick()
    clock.now += 59.0
    assert health.live()[0] is True
    clock.now += 2.0
    assert health.live() == (False, {"loop_age_s": 61.0})


