"""Known events in -> exactly those events in ClickHouse, exactly the expected violations in PostgreSQL.

Expected violations are derived from the rules in docs/checkers.md and the thresholds of the
packaged checkers.yaml, not from the checker code.
"""

from __future__ import annotations

import uuid

import pytest
from service_harness import Harness, make_event, wait_until

from sqlaudit.config import CheckersConfig
from sqlaudit.events import SqlEvent, SqlType, now_ms
from sqlaudit.queries import event_ids

pytestmark = pytest.mark.stack

Expected = set[tuple[uuid.UUID, str, str]]


def _window_start(window_ms: int) -> int:
    """Start of the previous full window: every event placed in it shares one window."""
    return (now_ms() // window_ms - 1) * window_ms


def _stateless_cases(app: str, cfg: CheckersConfig) -> tuple[list[SqlEvent], Expected]:
    sq, ai = cfg.slow_query, cfg.actual_impact
    cases = [
        (make_event(app, duration_ms=sq.threshold_ms), None),
        (make_event(app, duration_ms=sq.threshold_ms + 1), ("SlowQuery", "WARNING")),
        (make_event(app, duration_ms=sq.critical_ms + 1), ("SlowQuery", "CRITICAL")),
        (make_event(app, sql="UPDATE t SET a = 1", sql_type=SqlType.UPDATE, rows_affected=ai.threshold_rows), None),
        (make_event(app, sql="UPDATE t SET a = 2", sql_type=SqlType.UPDATE, rows_affected=ai.threshold_rows + 1),
         ("ActualImpact", "WARNING")),
        (make_event(app, sql="DELETE FROM t", sql_type=SqlType.DELETE, rows_affected=ai.critical_rows + 1),
         ("ActualImpact", "CRITICAL")),
        (make_event(app, sql="SELECT * FROM big", rows_affected=ai.critical_rows + 1), None),  # reads don't count
        (make_event(app, sql="INSERT INTO t SELECT * FROM big", sql_type=SqlType.INSERT,
                    rows_affected=ai.critical_rows + 1), None),
    ]
    expected = {(e.event_id, *v) for e, v in cases if v is not None}
    return [e for e, _ in cases], expected


def _error_rate_cases(app: str, cfg: CheckersConfig) -> tuple[list[SqlEvent], Expected]:
    """A WARNING when the ratio first exceeds threshold with enough events, then a CRITICAL when it
    first exceeds critical; at most one of each per window."""
    er = cfg.error_rate
    t0 = _window_start(er.window_ms)
    # min_events events with ratio just over threshold, then errors until the ratio passes critical.
    n_err = int(er.threshold * er.min_events) + 1
    flags = [True] * n_err + [False] * (er.min_events - n_err) + [True] * (20 * er.min_events)
    # Distinct statements (50 tables), so that Frequency stays quiet on this app.
    events = [make_event(app, sql=f"SELECT * FROM t{i % 50}", error_code="40001" if err else None, produced_at=t0 + i)
              for i, err in enumerate(flags)]
    expected: Expected = set()
    n = errors = level = 0
    for e, err in zip(events, flags, strict=True):  # the documented rule, step by step
        n += 1
        errors += err
        if n < er.min_events or level == 2:
            continue
        ratio = errors / n
        if ratio > er.critical:
            expected.add((e.event_id, "ErrorRate", "CRITICAL"))
            level = 2
        elif ratio > er.threshold and level == 0:
            expected.add((e.event_id, "ErrorRate", "WARNING"))
            level = 1
    assert {s for _, _, s in expected} == {"WARNING", "CRITICAL"}, "test data must exercise both severities"
    return events, expected


def _frequency_cases(app: str, cfg: CheckersConfig) -> tuple[list[SqlEvent], Expected]:
    fr = cfg.frequency
    t0 = _window_start(fr.window_ms)
    # Same statement modulo literals and spacing: normalised identically.
    events = [make_event(app, sql=f"SELECT *  FROM orders WHERE id = {i} AND s = 'x{i}'", produced_at=t0 + i % 1000)
              for i in range(fr.threshold + 5)]
    # Another statement, run exactly `threshold` times: never fires.
    events += [make_event(app, sql=f"SELECT 1 FROM users WHERE id IN ({i}, {i + 1})", produced_at=t0 + 5)
               for i in range(fr.threshold)]
    expected = {(events[fr.threshold].event_id, "Frequency", "WARNING")}
    return events, expected


def test_known_events_are_stored_and_checked(service: Harness, checkers_config: CheckersConfig) -> None:
    run = uuid.uuid4().hex[:8]
    cases = {
        f"pipe-{run}-stateless": _stateless_cases(f"pipe-{run}-stateless", checkers_config),
        f"pipe-{run}-errors": _error_rate_cases(f"pipe-{run}-errors", checkers_config),
        f"pipe-{run}-freq": _frequency_cases(f"pipe-{run}-freq", checkers_config),
    }
    for events, _ in cases.values():
        service.send_all(events)

    for app, (events, expected) in cases.items():
        service.wait_stored(app, len(events), timeout=60)
        stored = event_ids(service.ch, service.stack.ctx.ch_database, app=app)
        produced = {e.event_id for e in events}
        assert stored == produced, (f"{app}: ClickHouse holds {len(stored)} ids, produced {len(produced)}; "
                                    f"missing {len(produced - stored)}, unexpected {len(stored - produced)}")
        # Violations are written before the offset is committed, in the same flush as the events.
        wait_until(f"{len(expected)} violations of {app} in PostgreSQL",
                   lambda app=app, expected=expected: len(service.violations(app)) >= len(expected), 30,
                   seen=lambda app=app: service.violations(app))
        got = service.violations(app)
        assert got == expected, f"{app}: violations differ: missing {expected - got}, unexpected {got - expected}"
