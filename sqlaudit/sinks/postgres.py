"""PostgreSQL sink: violations upserted into ``violations`` keyed by ``(event_id, checker)``.

Connects with a psycopg_pool pool to a conninfo that may list several hosts; it always asks
for ``target_session_attrs=read-write``, so after a Patroni failover new connections find the
new primary. Connections are checked before use, so a dead one is replaced, not reused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from sqlaudit.checkers import Violation
from sqlaudit.sinks import SinkError

__all__ = ["UPSERT", "PostgresSink", "service_conninfo"]

logger = logging.getLogger(__name__)

SINK = "postgres"
UPSERT = """
INSERT INTO violations (event_id, checker, severity, app, database, message, produced_at, detected_at, replica)
VALUES (%s, %s, %s, %s, %s, %s, %s, now(), %s)
ON CONFLICT (event_id, checker) DO UPDATE
SET severity = EXCLUDED.severity, message = EXCLUDED.message, app = EXCLUDED.app,
    database = EXCLUDED.database, produced_at = EXCLUDED.produced_at, replica = EXCLUDED.replica
"""


def service_conninfo(dsn: str, timeout_s: float, application_name: str) -> str:
    """``dsn`` (conninfo or URL, one or several hosts) with the service's defaults added:
    ``target_session_attrs=read-write``, ``connect_timeout`` and a ``statement_timeout``."""
    params = conninfo_to_dict(dsn)
    params.setdefault("target_session_attrs", "read-write")
    params.setdefault("connect_timeout", str(max(1, round(timeout_s))))
    params.setdefault("application_name", application_name)
    timeout_ms = int(timeout_s * 1000)
    options = str(params.get("options") or "")
    params["options"] = f"{options} -c statement_timeout={timeout_ms}".strip()
    return make_conninfo(**params)  # type: ignore[arg-type]


class PostgresSink:
    """Upserts violations; thread-safe (the pool hands one connection per caller)."""

    name = SINK

    def __init__(self, dsn: str, password: str, replica: str, timeout_s: float = 5.0) -> None:
        self.replica = replica
        self.timeout_s = timeout_s
        conninfo = service_conninfo(dsn, timeout_s, f"sqlaudit-{replica}")
        kwargs: dict[str, object] = {"autocommit": False}
        if password:
            kwargs["password"] = password
        self.pool = ConnectionPool(conninfo, kwargs=kwargs, min_size=1, max_size=3, open=False,
                                   name=f"sqlaudit-{replica}", timeout=timeout_s,
                                   check=ConnectionPool.check_connection,
                                   max_idle=300)
        self.pool.open(wait=False)

    def write(self, violations: Sequence[Violation]) -> None:
        """Upsert ``violations`` in one transaction. Raises :class:`SinkError`."""
        if not violations:
            return
        params = [(v.event_id, v.checker, v.severity.value, v.app, v.database, v.message,
                   datetime.fromtimestamp(v.produced_at_ms / 1000, tz=UTC), self.replica) for v in violations]
        try:
            with self.pool.connection(timeout=self.timeout_s) as conn, conn.cursor() as cur:
                cur.executemany(UPSERT, params)
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            raise SinkError(SINK, f"upsert of {len(params)} violations failed: "
                                  f"{type(exc).__name__}: {str(exc).strip()[:300]}") from exc

    def ping(self) -> None:
        """``SELECT 1`` on the read-write primary. Raises :class:`SinkError`."""
        t0 = time.monotonic()
        try:
            with self.pool.connection(timeout=self.timeout_s) as conn:
                conn.execute("SELECT 1")
                conn.rollback()
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            raise SinkError(SINK, f"ping failed after {time.monotonic() - t0:.1f} s: "
                                  f"{type(exc).__name__}: {str(exc).strip()[:300]}") from exc

    def close(self) -> None:
        self.pool.close(timeout=self.timeout_s)
