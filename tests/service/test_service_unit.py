"""Checker rules and configuration, without a stack (the stack tests are the proof; these pin the rules)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sqlaudit.checkers import CheckerEngine, normalize_sql
from sqlaudit.config import DEFAULT_CHECKERS_FILE, CheckersConfig, ConfigError, load_checkers_config
from sqlaudit.events import InvalidEvent, SqlEvent, SqlType, decode_event


def _ev(app: str = "a", **kw: object) -> SqlEvent:
    base: dict[str, object] = dict(event_id=uuid.uuid4(), app=app, database="d", sql="SELECT 1",
                                   sql_type=SqlType.SELECT, duration_ms=1, rows_affected=0, error_code=None,
                                   produced_at=1_000_000)
    base.update(kw)
    return SqlEvent(**base)  # type: ignore[arg-type]


def test_normalize_collapses_literals_lists_and_spacing() -> None:
    a = normalize_sql("SELECT * FROM t1 WHERE id IN (1, 2, 3) AND name = 'O''Brien';")
    b = normalize_sql("select *   from t1 where id in (7) and name = 'x'")
    assert a == b == "select * from t1 where id in (?) and name = ?"
    assert normalize_sql("SELECT * FROM t1") != normalize_sql("SELECT * FROM t2")


def test_env_overrides_and_errors_name_the_field(tmp_path: Path) -> None:
    cfg = load_checkers_config(DEFAULT_CHECKERS_FILE, env={"SQLAUDIT_CHECK_SLOW_QUERY_THRESHOLD_MS": "2500",
                                                           "SQLAUDIT_CHECK_FREQUENCY_ENABLED": "false"})
    assert cfg.slow_query.threshold_ms == 2500
    assert cfg.frequency.enabled is False
    with pytest.raises(ConfigError, match="SQLAUDIT_CHECK_SLOW_QUERY_BOGUS"):
        load_checkers_config(DEFAULT_CHECKERS_FILE, env={"SQLAUDIT_CHECK_SLOW_QUERY_BOGUS": "1"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("error_rate:\n  threshold: 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*error_rate\.threshold"):
        load_checkers_config(bad, env={})


def test_error_rate_fires_warning_then_critical_once_per_window() -> None:
    cfg = CheckersConfig()
    er = cfg.error_rate
    engine = CheckerEngine(cfg)
    w0 = 10 * er.window_ms
    events = [_ev(sql=f"SELECT {i}", error_code="E" if i % 3 else None, produced_at=w0 + i) for i in range(60)]
    events += [_ev(sql=f"SELECT {i}", error_code="E", produced_at=w0 + 100 + i) for i in range(200)]
    violations, _ = engine.evaluate([(0, e) for e in events])
    got = [(v.checker, v.severity.value) for v in violations if v.checker == "ErrorRate"]
    assert got == [("ErrorRate", "WARNING"), ("ErrorRate", "CRITICAL")]
    # 2/3 errors: the WARNING comes exactly at min_events.
    assert violations[0].event_id == events[er.min_events - 1].event_id


def test_windows_are_per_partition_and_forgotten_on_revocation() -> None:
    cfg = CheckersConfig()
    fr = cfg.frequency
    engine = CheckerEngine(cfg)
    events = [_ev(sql=f"SELECT * FROM t WHERE id = {i}") for i in range(fr.threshold)]
    assert engine.evaluate([(0, e) for e in events])[0] == []
    engine.forget([0])  # revoked: the next owner starts from its committed offset
    assert engine.evaluate([(0, e) for e in events[:1]])[0] == []
    assert engine.evaluate([(1, e) for e in events])[0] == []  # another partition, another count
    extra = _ev(sql="SELECT * FROM t WHERE id = 999")
    got = engine.evaluate([(1, extra)])[0]
    assert [(v.checker, v.severity.value, v.event_id) for v in got] == [("Frequency", "WARNING", extra.event_id)]


def test_late_events_are_ignored_by_window_checkers() -> None:
    cfg = CheckersConfig()
    engine = CheckerEngine(cfg)
    newest = _ev(produced_at=10_000_000)
    late = [_ev(sql="SELECT 1", error_code="E", produced_at=10_000_000 - cfg.state_retention_ms - 2 * 10_000)
            for _ in range(200)]
    violations, _ = engine.evaluate([(0, e) for e in [newest, *late]])
    assert violations == []


def test_multi_host_conninfo_asks_for_the_primary() -> None:
    from psycopg.conninfo import conninfo_to_dict

    from sqlaudit.sinks.postgres import service_conninfo

    info = conninfo_to_dict(service_conninfo("host=pg-0,pg-1,pg-2 port=5432,5432,5433 dbname=sqlaudit user=u",
                                             5.0, "sqlaudit-r0"))
    assert info["host"] == "pg-0,pg-1,pg-2" and info["port"] == "5432,5432,5433"
    assert info["target_session_attrs"] == "read-write"
    assert info["connect_timeout"] == "5" and "statement_timeout=5000" in str(info["options"])
    url = conninfo_to_dict(service_conninfo("postgresql://u@h1:1,h2:2/db?target_session_attrs=any", 5.0, "x"))
    assert url["target_session_attrs"] == "any", "an explicit choice is kept"


def test_settings_from_environment_redact_secrets() -> None:
    from sqlaudit.config import load_settings

    s = load_settings({"SQLAUDIT_REPLICA": "r1", "SQLAUDIT_BATCH_SIZE": "250", "SQLAUDIT_PG_PASSWORD": "hunter2"})
    assert (s.replica, s.batch_size, s.pg_password.get_secret_value()) == ("r1", 250, "hunter2")
    assert "hunter2" not in repr(s) and s.redacted()["pg_password"] == "***"
    with pytest.raises(ConfigError, match="SQLAUDIT_BATCH_SIZE"):
        load_settings({"SQLAUDIT_BATCH_SIZE": "lots"})


def test_valid_but_unstorable_events_are_recognised() -> None:
    from sqlaudit.sinks.clickhouse import unstorable

    assert unstorable(_ev()) is None
    assert "rows_affected" in (unstorable(_ev(rows_affected=2**64)) or "")
    assert "produced_at" in (unstorable(_ev(produced_at=2**32 * 1000)) or "")
    assert "NUL" in (unstorable(_ev(sql="SELECT '\x00'")) or "")
    # Unpaired surrogates never get this far: the JSON parser rejects them.
    raw = _ev().model_dump_json().replace('"app":"a"', '"app":"a\\ud800"').encode()
    assert b"ud800" in raw
    with pytest.raises(InvalidEvent, match="JSON"):
        decode_event(raw)


def test_a_failed_clickhouse_write_starts_the_next_attempt_at_the_next_replica() -> None:
    from sqlaudit.sinks import SinkError
    from sqlaudit.sinks.clickhouse import ClickHouseSink, EventRow

    sink = ClickHouseSink("ch1", 9000, "sqlaudit", "r0", alt_hosts="ch2:9001,ch3:9002")
    assert sink.hosts == [("ch1", 9000), ("ch2", 9001), ("ch3", 9002)]
    tried = []

    def stalled(*_args: object, **_kwargs: object) -> None:
        tried.append(sink.hosts[0])
        raise TimeoutError("timed out")

    for _ in range(3):
        sink._client.execute = stalled  # type: ignore[method-assign]
        with pytest.raises(SinkError, match="timed out"):
            sink.write([EventRow(_ev(), partition=0, offset=0)])
    assert tried == [("ch1", 9000), ("ch2", 9001), ("ch3", 9002)]  # each retry starts at the next replica
    assert sink.hosts[0] == ("ch1", 9000)  # and comes round again
    conn = sink._make_client().connection
    assert list(conn.hosts) == [("ch1", 9000), ("ch2", 9001), ("ch3", 9002)]


def test_a_single_clickhouse_host_keeps_its_client_config() -> None:
    from sqlaudit.sinks.clickhouse import ClickHouseSink

    sink = ClickHouseSink("ch1", 9000, "sqlaudit", "r0")
    assert sink.hosts == [("ch1", 9000)] and list(sink._client.connection.hosts) == [("ch1", 9000)]
