"""``config_in_effect`` reads a replica's checker configuration from either service's ``/actuator/configprops``:
the reference service's ``checkers.<checker>.<field>`` and Spring Boot's beans (camelCase names), and says so
when Spring Boot hides the value (the live reads: tests/spring/test_spring_actuator_api.py and the
config_change experiment)."""

from __future__ import annotations

import pytest

from probes.activities import _configprop

PYTHON = {"checkers": {"slow_query": {"threshold_ms": 1000}}}
SPRING = {"contexts": {"sql-audit-service": {"beans": {
    "sqlaudit-org.sqlaudit.service.config.SqlAuditProperties": {"prefix": "sqlaudit", "properties": {}},
    "sqlaudit.checkers-org.sqlaudit.service.config.CheckersProperties": {
        "prefix": "sqlaudit.checkers", "properties": {"slowQuery": {"thresholdMs": 3000, "enabled": True}}}}}}}


def test_both_shapes_are_read() -> None:
    assert _configprop(PYTHON, "slow_query", "threshold_ms") == 1000
    assert _configprop(SPRING, "slow_query", "threshold_ms") == 3000


def test_a_field_neither_reports_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        _configprop(SPRING, "slow_query", "critical_ms")
    with pytest.raises(KeyError):
        _configprop({"contexts": {"app": {"beans": {}}}}, "slow_query", "threshold_ms")
