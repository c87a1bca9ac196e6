"""A seeded generator of realistic SQL-execution events (contract v1, :class:`sqlaudit.events.SqlEvent`).

Every event comes from a small catalogue of applications, each with its own
databases and tables; statements are drawn from per-type templates (SELECT,
INSERT, UPDATE, DELETE, DDL, OTHER) and rendered either with literals
(``WHERE id = 4821``) or, for a configurable fraction, already parameterised as
a driver logs a prepared statement (``WHERE id = ?``). Both render to the same
*normalised statement* (:attr:`GeneratedEvent.normalized`), which is what the
Frequency checker counts.

On top of that background, four controllable fractions make each checker of
the audit service fire at a predictable rate (see :meth:`GeneratorConfig.expected_rates`
and ``docs/load.md``):

* ``slow_fraction`` of events take ``slow_ms + 1`` .. ``4 * slow_ms`` ms; every
  other event is strictly faster than ``slow_ms`` (SlowQuery fires on
  ``duration_ms > threshold_ms``).
* ``impact_fraction`` of events are UPDATE/DELETE touching ``impact_rows + 1`` ..
  ``9 * impact_rows`` rows; every other UPDATE/DELETE touches fewer than
  ``impact_rows`` (ActualImpact fires on ``rows_affected > threshold_rows``).
* ``error_fraction`` of the events of every app fail, and the app ``failing_app``
  fails at ``failing_app_error_ratio`` instead (ErrorRate fires for that app only
  when its threshold lies between the two).
* ``burst_fraction`` of events belong to bursts of ``burst_size`` repetitions of
  one normalised statement from one app (Frequency); background statements are
  spread over :attr:`SqlEventGenerator.distinct_statements` normalised statements.
  The default ``burst_size`` 202 is ``2 * (threshold + 1)`` for the default
  Frequency threshold 100: however a tumbling window cuts a burst in two, one
  part exceeds the threshold.

The content of the stream (apps, statements, durations, rows, errors) is a pure
function of the seed; ``event_id`` is random unless ``id_seed`` is given, so two
runs with one seed do not collide in the audit service's dedup key, and
``produced_at`` is the wall clock at generation time.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlaudit.events import SqlEvent, SqlType, now_ms

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_APPS", "AppProfile", "GeneratedEvent", "GeneratorConfig", "SqlEventGenerator", "derive_seed"]


@dataclass(frozen=True)
class AppProfile:
    """One application: its share of the traffic, its databases and the tables it touches."""

    name: str
    weight: float
    databases: tuple[str, ...]
    tables: tuple[str, ...]


DEFAULT_APPS: tuple[AppProfile, ...] = (
    AppProfile("orders-api", 0.30, ("orders", "orders_archive"),
               ("orders", "order_items", "carts", "shipments", "returns", "coupons")),
    AppProfile("billing", 0.20, ("billing", "ledger"),
               ("invoices", "payments", "refunds", "accounts", "tax_rates", "statements")),
    AppProfile("inventory", 0.15, ("inventory",),
               ("products", "stock_levels", "warehouses", "reservations", "suppliers")),
    AppProfile("user-service", 0.15, ("users", "sessions"),
               ("users", "profiles", "sessions", "login_attempts", "api_keys")),
    AppProfile("reporting", 0.12, ("analytics", "orders_archive"),
               ("daily_sales", "cohorts", "funnels", "exports", "kpi_snapshots")),
    AppProfile("legacy-batch", 0.08, ("batch", "billing"),
               ("jobs", "job_runs", "import_rows", "reconciliations", "audit_trail")),
)

_COLUMNS = ("id", "customer_id", "status", "created_at", "updated_at", "amount", "region", "owner_id")
_STATUSES = ("open", "paid", "shipped", "cancelled", "pending", "failed", "active")
_REGIONS = ("eu-west", "us-east", "ap-south", "sa-east")
_ERROR_CODES = ("40001", "40P01", "23505", "57014", "53300", "42P01", "08006", "1213")
_TYPE_WEIGHTS: tuple[tuple[SqlType, float], ...] = (
    (SqlType.SELECT, 0.62), (SqlType.INSERT, 0.15), (SqlType.UPDATE, 0.12), (SqlType.DELETE, 0.05),
    (SqlType.DDL, 0.01), (SqlType.OTHER, 0.05),
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Parameters of the generated stream; defaults give a realistic mix with every checker firing.

    Arguments (all fractions are of all events, in [0, 1)):
        seed: seeds the content of the stream (not ``event_id``, see ``id_seed``).
        slow_fraction / slow_ms: share of slow statements and the SlowQuery threshold they exceed.
        impact_fraction / impact_rows: share of high-impact UPDATE/DELETE and the ActualImpact threshold.
        error_fraction: error ratio of every app but ``failing_app``.
        failing_app / failing_app_error_ratio: one app with a high error ratio (``None``: no such app).
        burst_fraction / burst_size: share of events in repeated-statement bursts, and the burst length
            (choose ``2 * (N + 1)`` for a Frequency threshold N so that a burst cut in two by a
            tumbling window still fires).
        normalized_fraction: share of statements logged already parameterised (``?`` / ``$1``).
        apps: the application catalogue.
        id_seed: when set, ``event_id`` is drawn from it too (fully reproducible ids).

    Raises ``ValueError`` naming the field when a value is out of range.
    """

    seed: int = 0
    slow_fraction: float = 0.02
    slow_ms: int = 1000
    impact_fraction: float = 0.01
    impact_rows: int = 1000
    error_fraction: float = 0.005
    failing_app: str | None = "legacy-batch"
    failing_app_error_ratio: float = 0.6
    burst_fraction: float = 0.05
    burst_size: int = 202
    normalized_fraction: float = 0.3
    apps: tuple[AppProfile, ...] = DEFAULT_APPS
    id_seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("slow_fraction", "impact_fraction", "error_fraction", "burst_fraction",
                     "normalized_fraction", "failing_app_error_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.slow_fraction + self.impact_fraction + self.burst_fraction >= 1.0:
            raise ValueError("slow_fraction + impact_fraction + burst_fraction must be < 1")
        for name in ("slow_ms", "impact_rows", "burst_size"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)!r}")
        if not self.apps:
            raise ValueError("apps must not be empty")
        if self.failing_app is not None and self.failing_app not in {a.name for a in self.apps}:
            raise ValueError(f"failing_app {self.failing_app!r} is not one of the apps "
                             f"{[a.name for a in self.apps]}")

    def expected_rates(self, events_per_second: float) -> dict[str, Any]:
        """What each checker should see at ``events_per_second`` (documented in ``docs/load.md``).

        Returns a dict: ``slow_per_s`` and ``impact_per_s`` (events over the threshold per
        second), ``error_ratio_by_app`` (expected per-app error ratio), ``bursts_per_s``
        (bursts started per second: each one should fire Frequency once when ``burst_size``
        exceeds its N within its window).
        """
        ratios = {a.name: self.error_fraction for a in self.apps}
        if self.failing_app is not None:
            ratios[self.failing_app] = self.failing_app_error_ratio
        return {
            "slow_per_s": events_per_second * self.slow_fraction,
            "impact_per_s": events_per_second * self.impact_fraction,
            "error_ratio_by_app": ratios,
            "bursts_per_s": events_per_second * self.burst_fraction / self.burst_size,
        }


def derive_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from ``parts`` (e.g. run seed, worker index, user index)."""
    import hashlib

    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class GeneratedEvent:
    """One generated event and what the generator meant it to trigger (the latter is not sent)."""

    event: SqlEvent
    normalized: str
    slow: bool = False
    impact: bool = False
    error: bool = False
    burst: bool = False

    def key(self) -> bytes:
        """The Kafka message key of the contract: the app name."""
        return self.event.app.encode()


@dataclass
class _Burst:
    remaining: int
    app: AppProfile
    database: str
    build: Callable[[bool], tuple[str, str]]
    sql_type: SqlType


@dataclass
class SqlEventGenerator:
    """Produces :class:`GeneratedEvent` objects from a :class:`GeneratorConfig`; not thread-safe.

    ``next()`` returns one event; iterate for an endless stream. The sequence of
    everything but ``event_id`` and ``produced_at`` is determined by ``config.seed``.
    """

    config: GeneratorConfig = field(default_factory=GeneratorConfig)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._id_rng = random.Random(self.config.id_seed) if self.config.id_seed is not None else None
        self._apps = list(self.config.apps)
        self._app_weights = [a.weight for a in self._apps]
        self._types = [t for t, _ in _TYPE_WEIGHTS]
        self._type_weights = [w for _, w in _TYPE_WEIGHTS]
        self._burst: _Burst | None = None
        # The probability that a non-burst event starts a burst, so that burst events make up
        # burst_fraction of the stream: p*size / (p*size + (1-p)) = f.
        f, size = self.config.burst_fraction, self.config.burst_size
        self._burst_start_p = f / (size - f * (size - 1)) if f > 0 else 0.0

    @property
    def distinct_statements(self) -> int:
        """How many distinct normalised statements the background traffic is spread over."""
        per_table = len(_SELECT_TEMPLATES) * len(_COLUMNS) + len(_INSERT_TEMPLATES) \
            + (len(_UPDATE_TEMPLATES) + len(_DELETE_TEMPLATES)) * len(_COLUMNS) + len(_DDL_TEMPLATES)
        return sum(len(a.tables) for a in self._apps) * per_table + len(_OTHER_STATEMENTS)

    def __iter__(self) -> Iterator[GeneratedEvent]:
        while True:
            yield self.next()

    def next(self) -> GeneratedEvent:
        """Generate the next event of the stream."""
        rng, cfg = self._rng, self.config
        if self._burst is None and rng.random() < self._burst_start_p:
            app = self._pick_app()
            sql_type = SqlType.SELECT if rng.random() < 0.8 else SqlType.UPDATE
            self._burst = _Burst(remaining=cfg.burst_size, app=app, database=rng.choice(app.databases),
                                 build=self._template(app, sql_type), sql_type=sql_type)
        if self._burst is not None:
            b = self._burst
            b.remaining -= 1
            if b.remaining <= 0:
                self._burst = None
            sql, normalized = b.build(rng.random() < cfg.normalized_fraction)
            rows = rng.randint(0, 20)
            return self._finish(b.app, b.database, b.sql_type, sql, normalized, rows, burst=True,
                                slow=False, error=rng.random() < self._error_ratio(b.app))

        app = self._pick_app()
        database = rng.choice(app.databases)
        # Bursts take burst_fraction of the stream, so the rest is scaled up to keep the
        # slow and impact fractions true of the whole stream.
        roll = rng.random() * (1.0 - cfg.burst_fraction)
        slow = roll < cfg.slow_fraction
        impact = cfg.slow_fraction <= roll < cfg.slow_fraction + cfg.impact_fraction
        if impact:
            sql_type = SqlType.UPDATE if rng.random() < 0.6 else SqlType.DELETE
        else:
            sql_type = rng.choices(self._types, self._type_weights)[0]
        sql, normalized = self._template(app, sql_type)(rng.random() < cfg.normalized_fraction)
        rows = self._rows(sql_type, impact)
        error = rng.random() < self._error_ratio(app)
        return self._finish(app, database, sql_type, sql, normalized, rows, burst=False, slow=slow,
                            error=error, impact=impact)

    # ------------------------------------------------------------------ parts
    def _error_ratio(self, app: AppProfile) -> float:
        cfg = self.config
        return cfg.failing_app_error_ratio if app.name == cfg.failing_app else cfg.error_fraction

    def _pick_app(self) -> AppProfile:
        return self._rng.choices(self._apps, self._app_weights)[0]

    def _finish(self, app: AppProfile, database: str, sql_type: SqlType, sql: str, normalized: str,
                rows: int, *, burst: bool, slow: bool, error: bool, impact: bool = False) -> GeneratedEvent:
        rng, cfg = self._rng, self.config
        if slow:
            duration = rng.randint(cfg.slow_ms + 1, 4 * cfg.slow_ms)
        else:  # log-normal around a few milliseconds, strictly below the slow threshold
            duration = min(int(rng.lognormvariate(1.2, 1.0)), cfg.slow_ms - 1)
        error_code = rng.choice(_ERROR_CODES) if error else None
        if error and not impact:
            rows = 0
        if error and impact:  # an impact event must keep its rows; keep it successful
            error_code = None
            error = False
        event = SqlEvent(event_id=self._event_id(), app=app.name, database=database, sql=sql,
                         sql_type=sql_type, duration_ms=duration, rows_affected=rows,
                         error_code=error_code, produced_at=now_ms())
        return GeneratedEvent(event=event, normalized=normalized, slow=slow, impact=impact, error=error,
                              burst=burst)

    def _event_id(self) -> uuid.UUID:
        if self._id_rng is None:
            return uuid.uuid4()
        return uuid.UUID(int=self._id_rng.getrandbits(128), version=4)

    def _rows(self, sql_type: SqlType, impact: bool) -> int:
        rng, limit = self._rng, self.config.impact_rows
        if impact:
            return rng.randint(limit + 1, 9 * limit)
        if sql_type is SqlType.SELECT:
            return int(rng.paretovariate(1.3)) - 1 if rng.random() < 0.7 else rng.randint(0, 500)
        if sql_type in (SqlType.UPDATE, SqlType.DELETE):
            return min(int(rng.paretovariate(1.5)) - 1, limit - 1)
        if sql_type is SqlType.INSERT:
            return 1 if rng.random() < 0.9 else rng.randint(2, 100)
        return 0

    def _template(self, app: AppProfile, sql_type: SqlType) -> Callable[[bool], tuple[str, str]]:
        """Pick a statement shape; return ``render(parameterised) -> (sql, normalised)``."""
        rng = self._rng
        table = rng.choice(app.tables)
        col = rng.choice(_COLUMNS)
        if sql_type is SqlType.SELECT:
            tpl = rng.choice(_SELECT_TEMPLATES)
        elif sql_type is SqlType.INSERT:
            tpl = rng.choice(_INSERT_TEMPLATES)
        elif sql_type is SqlType.UPDATE:
            tpl = rng.choice(_UPDATE_TEMPLATES)
        elif sql_type is SqlType.DELETE:
            tpl = rng.choice(_DELETE_TEMPLATES)
        elif sql_type is SqlType.DDL:
            tpl = rng.choice(_DDL_TEMPLATES)
        else:
            stmt = rng.choice(_OTHER_STATEMENTS)
            return lambda _param: (stmt, stmt)
        normalized = tpl.format(t=table, c=col, v="?", v2="?", s="?")

        def render(parameterised: bool) -> tuple[str, str]:
            if parameterised:
                return normalized, normalized
            return tpl.format(t=table, c=col, v=self._literal(col), v2=rng.randint(1, 10_000),
                              s=f"'{rng.choice(_STATUSES)}'"), normalized

        return render

    def _literal(self, col: str) -> str:
        rng = self._rng
        if col in ("status",):
            return f"'{rng.choice(_STATUSES)}'"
        if col == "region":
            return f"'{rng.choice(_REGIONS)}'"
        if col in ("created_at", "updated_at"):
            return f"'2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00:00'"
        if col == "amount":
            return f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}"
        return str(rng.randint(1, 5_000_000))


_SELECT_TEMPLATES = (
    "SELECT * FROM {t} WHERE {c} = {v}",
    "SELECT id, status, updated_at FROM {t} WHERE {c} = {v} ORDER BY updated_at DESC LIMIT {v2}",
    "SELECT count(*) FROM {t} WHERE {c} = {v} AND status = {s}",
    "SELECT t.id, t.{c} FROM {t} t JOIN accounts a ON a.id = t.owner_id WHERE t.{c} > {v}",
)
_INSERT_TEMPLATES = (
    "INSERT INTO {t} (id, {c}, status, created_at) VALUES ({v2}, {v}, {s}, now())",
    "INSERT INTO {t} (id, status) VALUES ({v2}, {s}) ON CONFLICT (id) DO NOTHING",
)
_UPDATE_TEMPLATES = (
    "UPDATE {t} SET status = {s}, updated_at = now() WHERE {c} = {v}",
    "UPDATE {t} SET {c} = {v} WHERE id = {v2}",
)
_DELETE_TEMPLATES = (
    "DELETE FROM {t} WHERE {c} = {v}",
    "DELETE FROM {t} WHERE {c} < {v} AND status = {s}",
)
_DDL_TEMPLATES = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{t}_{c} ON {t} ({c})",
    "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS note_{c} text",
    "ANALYZE {t}",
)
_OTHER_STATEMENTS = ("BEGIN", "COMMIT", "ROLLBACK", "SET statement_timeout = '30s'", "SHOW search_path")
