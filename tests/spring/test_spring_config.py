"""The checker configuration of the Python service works on the Spring service too (the same YAML file
and SQLAUDIT_CHECK_* variables), and bad configuration stops a replica at start, naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.spring.spring_harness import SpringService, make_event, wait_until

pytestmark = [pytest.mark.stack, pytest.mark.spring, pytest.mark.extended]


def _refused(spring: SpringService, env: dict[str, str], words: str) -> None:
    replica = spring.start(extra_env=env)
    wait_until(f"{replica.name} to exit on bad configuration", lambda: not replica.alive(), timeout=180,
               seen=replica.tail)
    assert replica.proc.returncode != 0
    assert words in replica.log.read_text(errors="replace"), replica.tail()


@pytest.mark.parametrize(("env", "named"), [
    ({"SQLAUDIT_CHECK_SLOW_QUERY_BOGUS": "1"}, "SQLAUDIT_CHECK_SLOW_QUERY_BOGUS"),  # unknown field
    # out of range: Spring's report names the property and the reason, not the variable
    ({"SQLAUDIT_CHECK_ERROR_RATE_THRESHOLD": "2"}, "sqlaudit.checkers.errorRate.threshold"),
    ({"SQLAUDIT_CHECK_SLOWQUERY_THRESHOLD_MS": "1"}, "SQLAUDIT_CHECK_SLOWQUERY_THRESHOLD_MS"),  # unknown checker
    ({"SQLAUDIT_JWT_SECRET": ""}, "SQLAUDIT_JWT_SECRET"),  # no secret for the API
], ids=["unknown-field", "out-of-range", "unknown-checker", "no-jwt-secret"])
def test_bad_configuration_stops_the_replica_naming_the_variable(spring: SpringService, env: dict[str, str],
                                                                  named: str) -> None:
    _refused(spring, env, named)


def test_checkers_file_and_variables_set_the_thresholds(spring: SpringService, tmp_path: Path) -> None:
    config = tmp_path / "checkers.yaml"
    config.write_text("slow_query:\n  threshold_ms: 2500\n  critical_ms: 9000\n")
    replica = spring.start(extra_env={"SQLAUDIT_CHECKERS_CONFIG": str(config),
                                      "SQLAUDIT_CHECK_SLOW_QUERY_CRITICAL_MS": "4000"})
    replica.wait_consuming()
    app = f"config-{spring.tag}"
    events = {d: make_event(app, duration_ms=d) for d in (2000, 2500, 3000, 4000, 4500)}
    spring.send_all(list(events.values()))
    spring.wait_stored(app, {e.event_id for e in events.values()})
    spring.wait_no_lag()
    assert spring.violations(app) == {(events[3000].event_id, "SlowQuery", "WARNING"),
                                      (events[4000].event_id, "SlowQuery", "WARNING"),
                                      (events[4500].event_id, "SlowQuery", "CRITICAL")}
