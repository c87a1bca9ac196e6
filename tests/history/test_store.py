"""The history store on SQLite: migrations own the schema, records round-trip, writing never fails a run."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from resilience.history.importer import import_dirs
from resilience.history.models import Base
from resilience.history.record import run_record
from resilience.history.store import HistoryError, HistoryStore, history_url, record_run_safely, redacted
from tests.report.conftest import T0, make_run


def test_the_migrations_create_exactly_the_models_tables(store: HistoryStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert MigrationContext.configure(conn).get_current_revision() == "0001"
    assert diff == [], diff


def test_a_run_round_trips_with_its_measurements_and_a_rewrite_replaces_it(
        store: HistoryStore, run_writer: Callable[..., Path]) -> None:
    d = run_writer("r1", rto=7.25, release="v2.4.0")
    pk = store.record_run(run_record(d))
    again = store.record_run(run_record(d))
    rows = store.runs()
    assert len(rows) == 1 and store.count_runs() == 1 and pk and again
    r = rows[0]
    assert (r.run_id, r.scenario, r.experiment, r.outcome, r.release) == ("r1", "pod_failure", "pod_failure", "pass",
                                                                         "v2.4.0")
    assert r.values["rto_replicas_ready"] == 7.25 and r.objectives["rto_replicas_ready"] == "<= 60"
    assert r.score is not None and 50 < r.score <= 100


def test_an_unrecovered_rto_is_stored_as_infinity_not_as_missing(store: HistoryStore,
                                                                  run_writer: Callable[..., Path]) -> None:
    store.record_run(run_record(run_writer("never", rto=0, outcome="fail")))
    assert store.runs()[0].values["rto_replicas_ready"] == float("inf")


def test_import_walks_directories_skips_crashed_runs_and_trials_directories(
        store: HistoryStore, tmp_path: Path, run_writer: Callable[..., Path]) -> None:
    run_writer("a", rto=7, started=T0)
    run_writer("b", rto=8, started=T0 + 60)
    make_run(tmp_path / "reports", "crashed", summary=False)
    report = import_dirs(store, [tmp_path / "reports"])
    assert sorted(report.imported) == ["a", "b"]
    assert [why for _, why in report.skipped] == ["no summary.json: the run was never judged"]
    assert [r.run_id for r in store.runs()] == ["b", "a"]  # newest first
    assert [r.run_id for r in store.runs(before=T0 + 30)] == ["a"]


def test_history_url_defaults_to_sqlite_in_the_data_root_and_accepts_a_postgres_dsn(tmp_path: Path) -> None:
    env = {"RESILIENCE_DATA_ROOT": str(tmp_path)}
    assert history_url(environ=env).database == str(tmp_path / "history.sqlite")
    pg = history_url(environ={**env, "RESILIENCE_HISTORY_URL": "postgresql://u:s3cret@db:5432/h"})
    assert pg.drivername == "postgresql+psycopg" and pg.host == "db"
    assert "s3cret" not in redacted(pg)
    with pytest.raises(HistoryError, match="--history-url: not a database URL"):
        history_url("postgresql://u@:notaport/x")


def _silent_server() -> tuple[socket.socket, int]:
    """A TCP server that accepts connections and never answers (a database that hangs)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return srv, int(srv.getsockname()[1])


def test_a_history_that_hangs_costs_the_run_at_most_its_timeout_and_leaves_a_note(
        run_writer: Callable[..., Path]) -> None:
    srv, port = _silent_server()
    try:
        d = run_writer("r1", rto=7)
        t0 = time.monotonic()
        out = record_run_safely(d, url=f"postgresql://u:pw@127.0.0.1:{port}/h", timeout_s=1.0)
        took = time.monotonic() - t0
    finally:
        srv.close()
    assert out["recorded"] is False and "within 1 s" in out["note"] and "verdicts are unaffected" in out["note"]
    assert "pw@" not in out["note"]
    assert took < 2.0, took


def test_a_history_that_refuses_gives_a_note_naming_the_store(run_writer: Callable[..., Path]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    out = record_run_safely(run_writer("r1", rto=7), url=f"postgresql://u@127.0.0.1:{port}/h", timeout_s=10)
    assert out["recorded"] is False
    assert f"127.0.0.1:{port}/h" in out["note"] and "OperationalError" in out["note"]


def test_record_run_safely_writes_to_the_default_store(tmp_path: Path, run_writer: Callable[..., Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESILIENCE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("RESILIENCE_HISTORY_URL", raising=False)
    out = record_run_safely(run_writer("r1", rto=7))
    assert out["recorded"] is True and out["store"].endswith(f"{tmp_path}/data/history.sqlite")
    assert HistoryStore.open().runs()[0].run_id == "r1"


def test_the_head_the_store_checks_without_alembic_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from resilience.history.store import HEAD, MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD
