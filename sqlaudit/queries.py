"""Read-side helpers for code that checks what the service stored (tests, probes, benchmarks).

ClickHouse's ``audit_events`` is a ReplacingMergeTree on ``event_id``: an event redelivered after a
crash is inserted twice and the copies collapse only when a merge happens, some time later. So
``count()`` over-counts; every count of events must use the dedup-safe form
``uniqExact(event_id)`` (:data:`DEDUP_COUNT`), as :func:`count_events` does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

__all__ = ["DEDUP_COUNT", "count_events", "count_rows", "event_ids", "violations_for"]

DEDUP_COUNT = "uniqExact(event_id)"
"""The dedup-safe count expression for ``audit_events``."""


def _where(app: str | None, since_ms: int | None, until_ms: int | None,
           ids: Iterable[uuid.UUID | str] | None) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if app is not None:
        clauses.append("app = %(app)s")
        params["app"] = app
    if since_ms is not None:
        clauses.append("produced_at_ms >= %(since)s")
        params["since"] = since_ms
    if until_ms is not None:
        clauses.append("produced_at_ms < %(until)s")
        params["until"] = until_ms
    if ids is not None:
        clauses.append("event_id IN %(ids)s")
        params["ids"] = tuple(str(i) for i in ids)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def count_events(client: Any, database: str = "sqlaudit", *, app: str | None = None, since_ms: int | None = None,
                 until_ms: int | None = None, ids: Iterable[uuid.UUID | str] | None = None) -> int:
    """Distinct events stored in ``<database>.audit_events`` (dedup-safe: ``uniqExact(event_id)``).

    Args:
        client: a ``clickhouse_driver.Client``.
        database: the ClickHouse database.
        app: only events of this application.
        since_ms, until_ms: only events with ``since_ms <= produced_at_ms < until_ms``.
        ids: only these event ids.

    Returns the number of distinct event ids matching every given filter.
    """
    where, params = _where(app, since_ms, until_ms, ids)
    rows = client.execute(f"SELECT {DEDUP_COUNT} FROM {database}.audit_events{where}", params)
    return int(rows[0][0])


def count_rows(client: Any, database: str = "sqlaudit", *, app: str | None = None,
               ids: Iterable[uuid.UUID | str] | None = None) -> int:
    """Physical rows (duplicates included) — only to show how many duplicates exist, never as the count."""
    where, params = _where(app, None, None, ids)
    return int(client.execute(f"SELECT count() FROM {database}.audit_events{where}", params)[0][0])


def event_ids(client: Any, database: str = "sqlaudit", *, app: str) -> set[uuid.UUID]:
    """The distinct event ids stored for ``app``."""
    rows = client.execute(f"SELECT DISTINCT event_id FROM {database}.audit_events WHERE app = %(app)s",
                          {"app": app})
    return {r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(str(r[0])) for r in rows}


def violations_for(conn: Any, app: str) -> set[tuple[uuid.UUID, str, str]]:
    """``(event_id, checker, severity)`` of the violations stored for ``app`` (a psycopg connection)."""
    rows = conn.execute("SELECT event_id, checker, severity FROM violations WHERE app = %s", (app,)).fetchall()
    return {(r[0], r[1], r[2]) for r in rows}
