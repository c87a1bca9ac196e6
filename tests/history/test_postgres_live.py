"""The history store on the local stack's real PostgreSQL (marker stack): the same migrations, the same rows.

The audit user may not create databases, so the store gets a schema of its own in the audit database
(``options=-csearch_path=<schema>`` in the DSN), dropped at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from resilience.history.models import Base
from resilience.history.record import run_record
from resilience.history.store import HistoryStore, record_run_safely
from stack.core import LocalStack

pytestmark = [pytest.mark.stack]


@pytest.fixture
def pg_url(stack: LocalStack) -> Iterator[str]:
    kw = stack.ctx.postgres_kwargs()
    schema = f"history_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**kw, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield (f"postgresql://{kw['user']}:{quote(str(kw['password']))}@{kw['host']}:{kw['port']}/{kw['dbname']}"
               f"?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(**kw, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_runs_round_trip_through_postgres_with_the_same_migrations(
        pg_url: str, run_writer: Callable[..., Path], stack: LocalStack) -> None:
    out = record_run_safely(run_writer("pg1", rto=7.5, release="v3"), url=pg_url)
    assert out["recorded"] is True, out
    assert stack.ctx.secrets.postgres_password not in out["store"]
    store = HistoryStore.open(pg_url)
    store.record_run(run_record(run_writer("pg2", rto=9.0, release="v3", started=1795763700.0 + 60)))
    store.record_run(run_record(run_writer("never", rto=0, outcome="fail", release="v3", started=1795763700.0 + 120)))
    rows = store.runs(release="v3")
    assert [r.run_id for r in rows] == ["never", "pg2", "pg1"]
    assert rows[0].values["rto_replicas_ready"] == float("inf") and rows[2].values["rto_replicas_ready"] == 7.5
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn)
        assert ctx.get_current_revision() == "0001"
        assert compare_metadata(ctx, Base.metadata) == []
