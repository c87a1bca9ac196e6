"""ClickHouse sink: every valid event into ``<database>.<table>`` (ReplacingMergeTree on event_id).

The table is ``audit_events``, or on a sharded cluster the ``Distributed`` table over it
(``SQLAUDIT_CH_TABLE``): inserts are synchronous (``insert_distributed_sync``), so a write returns
only once every shard holds its part, and the offsets are committed after that.

Uses clickhouse-driver (native protocol; ClickHouse 18.16 has no DateTime64, times are UInt64
milliseconds). Redelivered events produce duplicate rows until a merge collapses them: count with
:func:`sqlaudit.queries.count_events` (``uniqExact(event_id)``), never ``count()``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_driver import Client

from sqlaudit.events import SqlEvent
from sqlaudit.sinks import SinkError

__all__ = ["COLUMNS", "ClickHouseSink", "EventRow", "make_client", "unstorable"]

logger = logging.getLogger(__name__)

SINK = "clickhouse"
COLUMNS = ("event_id", "app", "database", "sql", "sql_type", "duration_ms", "rows_affected", "error_code",
           "produced_at_ms", "stored_at_ms", "produced_date", "kafka_partition", "kafka_offset", "replica")
PING_TIMEOUT_S = 1.0
_UINT32_MAX = 2**32 - 1
_INT64_MAX = 2**63 - 1
_DATETIME_MAX_MS = _UINT32_MAX * 1000  # ClickHouse DateTime is UInt32 seconds (up to 2106-02-07)


def unstorable(event: SqlEvent) -> str | None:
    """Why a *valid* event cannot be stored (a value outside the stores' types), or ``None``.

    Such an event would fail every write attempt and block its partition forever, so the service
    dead-letters it like an invalid one. Checked: ``rows_affected`` fits Int64, ``produced_at`` fits
    DateTime, and text fields hold neither NUL (PostgreSQL rejects it) nor unpaired surrogates (not UTF-8).
    """
    if event.rows_affected > _INT64_MAX:
        return "field rows_affected: larger than Int64 (not storable)"
    if event.produced_at >= _DATETIME_MAX_MS:
        return "field produced_at: after 2106-02-07, outside ClickHouse DateTime (not storable)"
    for name in ("app", "database", "sql", "error_code"):
        value = getattr(event, name)
        if value is None:
            continue
        if "\x00" in value:
            return f"field {name}: contains a NUL character (not storable)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"field {name}: contains an unpaired surrogate, not UTF-8 (not storable)"
    return None


@dataclass(frozen=True)
class EventRow:
    """An event and where it was read from."""

    event: SqlEvent
    partition: int
    offset: int


def _parse_hosts(alt_hosts: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` as ``[(host, port), ...]`` (empty string: no alternatives)."""
    out = []
    for item in filter(None, (h.strip() for h in alt_hosts.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"alt_hosts: {item!r} is not host:port")
        out.append((host, int(port)))
    return out


def make_client(host: str, port: int, database: str, user: str = "default", password: str = "",
                timeout_s: float = 5.0, alt_hosts: str = "") -> Client:
    """A clickhouse-driver client whose connect, send/receive and ping all time out after ``timeout_s``.

    ``alt_hosts`` (``host:port,host:port``) are further replicas: a connection that fails or times
    out moves on to the next one, and the client stays there until that one fails.
    """
    extra = {"alt_hosts": alt_hosts} if alt_hosts else {}
    return Client(host=host, port=port, database=database, user=user, password=password,
                  connect_timeout=timeout_s, send_receive_timeout=timeout_s,
                  # The driver pings an idle connection before each query: a healthy server answers
                  # in milliseconds, and a stalled one must not cost a full timeout before the
                  # reconnect (which then pays the handshake timeout on the way to the next replica).
                  sync_request_timeout=min(timeout_s, PING_TIMEOUT_S),
                  # An insert into a Distributed table returns once every shard has its rows, not
                  # when they are queued on the receiving server (no effect on a plain table).
                  settings={"insert_distributed_sync": 1},
                  client_name="sqlaudit", **extra)


class ClickHouseSink:
    """Inserts batches of events; one client, used by the consumer thread only."""

    name = SINK

    def __init__(self, host: str, port: int, database: str, replica: str, user: str = "default",
                 password: str = "", timeout_s: float = 5.0, alt_hosts: str = "",
                 table: str = "audit_events") -> None:
        self.database = database
        self.replica = replica
        # Every replica, the one to try first at the front. A failed write moves the front one to
        # the back, so the reconnect (and the health ping) starts at the next replica instead of
        # paying the timeout of a stalled one again (clickhouse-driver starts every new connection
        # at its first host).
        self.hosts = [(host, port), *_parse_hosts(alt_hosts)]
        self._args = dict(database=database, user=user, password=password, timeout_s=timeout_s)
        self._client = self._make_client()
        self._insert = f"INSERT INTO {database}.{table} ({', '.join(COLUMNS)}) VALUES"

    def _current_order(self) -> list[tuple[str, int]]:
        """The replicas in the write client's order: the driver moves a host it failed to connect
        to (its pre-query ping or handshake timed out) to the back by itself."""
        return [(str(h), int(p)) for h, p in self._client.connection.hosts]

    def _make_client(self) -> Client:
        (host, port), rest = self.hosts[0], self.hosts[1:]
        return make_client(host, port, alt_hosts=",".join(f"{h}:{p}" for h, p in rest),
                           **self._args)  # type: ignore[arg-type]

    def _fail_over(self) -> None:
        """Drop the connection; with replicas to spare, start the next attempt at the next one."""
        self._client.disconnect()
        if len(self.hosts) > 1:
            self.hosts = self._current_order()
            self.hosts.append(self.hosts.pop(0))
            self._client = self._make_client()
            logger.info("clickhouse: next attempt starts at %s:%s", *self.hosts[0])

    def rows(self, batch: Sequence[EventRow]) -> list[tuple[object, ...]]:
        stored = int(time.time() * 1000)
        out: list[tuple[object, ...]] = []
        for r in batch:
            e = r.event
            out.append((e.event_id, e.app, e.database, e.sql, e.sql_type.value, min(e.duration_ms, _UINT32_MAX),
                        e.rows_affected, e.error_code or "", e.produced_at, stored,
                        datetime.fromtimestamp(e.produced_at / 1000, tz=UTC), r.partition, r.offset,
                        self.replica))
        return out

    def write(self, batch: Sequence[EventRow]) -> None:
        """Insert ``batch`` (one INSERT). Raises :class:`SinkError`; the connection is reset on error."""
        if not batch:
            return
        try:
            self._client.execute(self._insert, self.rows(batch), types_check=False)
        except Exception as exc:  # driver, socket and server errors all mean "not durable"
            self._fail_over()
            raise SinkError(SINK, f"insert of {len(batch)} rows failed: {type(exc).__name__}: {exc}") from exc

    def ping(self) -> None:
        """``SELECT 1`` on a fresh connection. Raises :class:`SinkError`."""
        self.hosts = self._current_order()  # start where the writes are going now
        client = self._make_client()
        try:
            client.execute("SELECT 1")
        except Exception as exc:
            raise SinkError(SINK, f"ping failed: {type(exc).__name__}: {exc}") from exc
        finally:
            client.disconnect()

    def close(self) -> None:
        self._client.disconnect()


def event_ids(rows: Sequence[EventRow]) -> list[uuid.UUID]:
    return [r.event.event_id for r in rows]
