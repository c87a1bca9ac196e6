"""The history store: every run and gate, in SQLite on one machine or PostgreSQL in a cluster.

Where it is (:func:`history_url`): the settings key ``history_url`` (env ``RESILIENCE_HISTORY_URL``,
or the target file), an SQLAlchemy URL or a PostgreSQL DSN; by default the SQLite file
``history.sqlite`` in the suite's data root (``/var/tmp/sql-audit-resilience``, moved by
``RESILIENCE_DATA_ROOT``): outside git, shared by every checkout on the machine so releases
built from different checkouts compare, and isolated wherever a test isolates its stacks.

The schema belongs to the Alembic migrations (``migrations/``): :meth:`HistoryStore.open`
upgrades the database to the newest revision before anything else, in one transaction.

Writing never blocks or fails a run: :func:`record_run_safely` gives the write a bounded time in a
thread of its own and returns a note instead of raising.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, select, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from resilience.history.models import Comparison, Gate, Measurement, Run
from resilience.history.record import RunRecord, environment, run_record, versions
from stack.paths import DEFAULT_DATA_ROOT

logger = logging.getLogger(__name__)

__all__ = ["HISTORY_URL_ENV", "WRITE_TIMEOUT_S", "HistoryError", "HistoryStore", "bounded", "default_sqlite_path",
           "history_url", "record_run_safely", "redacted"]

HISTORY_URL_ENV = "RESILIENCE_HISTORY_URL"
WRITE_TIMEOUT_S = 10.0
"""How long a run waits for its history write before it gives up with a note."""
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "0001"
"""The newest migration (a test checks it is Alembic's head): a store already there is not touched."""

_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


class HistoryError(Exception):
    """The history store cannot be opened or read; the message names the (password-free) URL."""


def default_sqlite_path(environ: Mapping[str, str] | None = None) -> Path:
    """``<data root>/history.sqlite`` (data root: ``RESILIENCE_DATA_ROOT``, default /var/tmp/sql-audit-resilience)."""
    env = os.environ if environ is None else environ
    return Path(env.get("RESILIENCE_DATA_ROOT") or DEFAULT_DATA_ROOT) / "history.sqlite"


def history_url(given: str | None = None, environ: Mapping[str, str] | None = None) -> URL:
    """The store's SQLAlchemy URL: ``given``, else the settings key ``history_url``, else the default SQLite file.

    A PostgreSQL DSN (``postgresql://user@host/db``, ``postgres://...``) uses the psycopg 3 driver; a
    bare path is an SQLite file.

    Raises:
        HistoryError: the URL cannot be parsed (the message names where it came from).
    """
    env = os.environ if environ is None else environ
    where = "--history-url"
    text = given
    if not text:
        from target.settings import SettingsError, resolve

        try:
            text = resolve(environ=env).history_url
        except SettingsError as exc:
            raise HistoryError(str(exc)) from None
        where = "settings key history_url"
    if not text:
        return URL.create("sqlite", database=str(default_sqlite_path(env)))
    if "://" not in text:
        return URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise HistoryError(f"{where}: not a database URL: {exc}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def redacted(url: URL | str) -> str:
    """The URL without its password, for messages and logs."""
    u = make_url(url) if isinstance(url, str) else url
    return u.render_as_string(hide_password=True)


def _engine(url: URL) -> Engine:
    key = url.render_as_string(hide_password=False)
    with _lock:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        if url.get_backend_name() == "sqlite":
            if url.database:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 5.0})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA journal_mode=WAL")  # readers (history, gate) never wait for a writer
                cur.close()
        else:
            engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
        _engines[key] = engine
        return engine


def _current_revision(engine: Engine) -> str | None:
    """The revision in ``alembic_version``, or ``None`` (no such table yet, or unreadable)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # no table yet: a new store
        return None


def _migrate(engine: Engine, url: URL) -> None:
    """Upgrade the database to the newest migration (once per process and URL)."""
    key = url.render_as_string(hide_password=False)
    if key in _migrated:
        return
    if _current_revision(engine) == HEAD:  # the common case, without importing Alembic
        _migrated.add(key)
        return
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.begin() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current != head:
            logger.info("history %s: migrating %s -> %s", redacted(url), current or "empty", head)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    _migrated.add(key)


@dataclass(frozen=True)
class RunRow:
    """A run as read back from the store (plain values, no session attached)."""

    pk: int
    run_id: str
    scenario: str
    experiment: str
    target: str
    profile: str | None
    outcome: str
    score: float | None
    started_at: float
    release: str | None
    git_commit: str | None
    aborted_by: str | None
    trial_group: str | None
    gate_id: str | None
    run_dir: str | None
    values: dict[str, float | None]
    objectives: dict[str, str | None]
    outcomes: dict[str, str]


class HistoryStore:
    """The history database: open it with :meth:`open`, which migrates it first."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self.url = url

    @classmethod
    def open(cls, url: str | URL | None = None) -> HistoryStore:
        """Open (and migrate) the store at ``url`` (default: :func:`history_url`).

        Raises:
            HistoryError: it cannot be reached or migrated; the message names the URL without password.
        """
        u = url if isinstance(url, URL) else history_url(url)
        try:
            engine = _engine(u)
            _migrate(engine, u)
        except Exception as exc:  # driver errors of any database
            raise HistoryError(f"history {redacted(u)}: {type(exc).__name__}: {_first_line(exc)}") from None
        return cls(engine, u)

    def __str__(self) -> str:
        return redacted(self.url)

    # ------------------------------------------------------------------ writing
    def record_run(self, record: RunRecord) -> int:
        """Insert or replace the run ``record.run_id`` with its measurements; returns its primary key."""
        with Session(self.engine) as session, session.begin():
            existing = session.scalar(select(Run).where(Run.run_id == record.run_id))
            if existing is not None:
                session.delete(existing)
                session.flush()
            gate_pk = None
            if record.gate_id:
                gate_pk = session.scalar(select(Gate.id).where(Gate.gate_id == record.gate_id))
            row = Run(run_id=record.run_id, scenario=record.scenario, experiment=record.experiment,
                      recorded_at=time.time(), gate_pk=gate_pk, **record.fields)
            row.measurements = [Measurement(**m) for m in record.measurements]
            session.add(row)
            session.flush()
            return int(row.id)

    def record_gate(self, gate: dict[str, Any], run_ids: Sequence[str],
                    comparisons: Iterable[dict[str, Any]] = ()) -> int:
        """Insert or replace the gate ``gate["gate_id"]``, link its runs and store its comparisons."""
        with Session(self.engine) as session, session.begin():
            session.execute(delete(Gate).where(Gate.gate_id == gate["gate_id"]))
            row = Gate(**gate)
            row.comparisons = [Comparison(**c) for c in comparisons]
            session.add(row)
            session.flush()
            if run_ids:
                session.execute(update(Run).where(Run.run_id.in_(list(run_ids))).values(gate_pk=row.id))
            return int(row.id)

    # ------------------------------------------------------------------ reading
    def runs(self, scenario: str | None = None, experiment: str | None = None, *, limit: int | None = None,
             before: float | None = None, run_ids: Sequence[str] | None = None,
             trial_group: str | None = None, gate_id: str | None = None, release: str | None = None,
             target: str | None = None, profile: str | None = None, exclude: Sequence[str] = ()) -> list[RunRow]:
        """Runs, newest first, with their measured values, filtered by any of the arguments.

        Plain column queries, no ORM objects: a gate reads a thousand runs for a baseline in well under
        a second (``benchmarks/history_store.py``).
        """
        cols = (Run.id, Run.run_id, Run.scenario, Run.experiment, Run.target, Run.profile, Run.outcome, Run.score,
                Run.started_at, Run.release, Run.git_commit, Run.aborted_by, Run.trial_group, Gate.gate_id,
                Run.run_dir)
        q = select(*cols).outerjoin(Gate, Run.gate_pk == Gate.id)
        if scenario:
            q = q.where(Run.scenario == scenario)
        if experiment:
            q = q.where(Run.experiment == experiment)
        if before is not None:
            q = q.where(Run.started_at < before)
        if run_ids is not None:
            q = q.where(Run.run_id.in_(list(run_ids)))
        if trial_group:
            q = q.where(Run.trial_group == trial_group)
        if gate_id:
            q = q.where(Gate.gate_id == gate_id)
        if release:
            q = q.where((Run.release == release) | (Run.service_version == release)
                        | (Run.git_commit.startswith(release) if len(release) >= 7 else Run.release == release))
        if target:
            q = q.where(Run.target == target)
        if profile:
            q = q.where(Run.profile == profile)
        if exclude:
            q = q.where(Run.run_id.not_in(list(exclude)))
        q = q.order_by(Run.started_at.desc(), Run.id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            found = conn.execute(q).all()
            per_run: dict[int, list[Any]] = {row[0]: [] for row in found}
            pks = list(per_run)
            for chunk in _chunks(pks, 900):
                mq = select(Measurement.run_pk, Measurement.slo, Measurement.measured, Measurement.objective,
                            Measurement.outcome).where(Measurement.run_pk.in_(chunk))
                for m in conn.execute(mq):
                    per_run[m[0]].append(m)
        return [RunRow(pk=r[0], run_id=r[1], scenario=r[2], experiment=r[3], target=r[4], profile=r[5], outcome=r[6],
                       score=r[7], started_at=r[8], release=r[9], git_commit=r[10], aborted_by=r[11],
                       trial_group=r[12], gate_id=r[13], run_dir=r[14],
                       values={m[1]: m[2] for m in per_run[r[0]]}, objectives={m[1]: m[3] for m in per_run[r[0]]},
                       outcomes={m[1]: m[4] for m in per_run[r[0]]})
                for r in found]

    def gates(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Gates, newest first, as dicts of their columns."""
        q = select(Gate).order_by(Gate.started_at.desc())
        if limit is not None:
            q = q.limit(limit)
        with Session(self.engine) as session:
            return [{c.name: getattr(g, c.name) for c in Gate.__table__.columns} for g in session.scalars(q)]

    def gate_exists(self, gate_id: str) -> bool:
        """Whether a gate with this id is recorded."""
        with Session(self.engine) as session:
            return session.scalar(select(Gate.id).where(Gate.gate_id == gate_id)) is not None

    def count_runs(self) -> int:
        """How many runs the store holds."""
        from sqlalchemy import func

        with Session(self.engine) as session:
            return int(session.scalar(select(func.count(Run.id))) or 0)


def bounded(work: Callable[[], None], timeout_s: float, what: str) -> str | None:
    """Run ``work`` in a daemon thread for at most ``timeout_s``; ``None`` when it finished, else a note saying why not.

    A write that hangs (a database that does not answer) is left behind in its thread, never waited for.
    """
    error: list[str] = []

    def guarded() -> None:
        try:
            work()
        except Exception as exc:
            error.append(f"{type(exc).__name__}: {_first_line(exc)}")

    worker = threading.Thread(target=guarded, name=f"history-{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        note = f"history: {what} not recorded within {timeout_s:g} s"
    elif error:
        note = f"history: {what} not recorded: {error[0]}"
    else:
        return None
    logger.warning("%s", note)
    return note


def record_run_safely(run_dir: Path, url: str | None = None, timeout_s: float = WRITE_TIMEOUT_S) -> dict[str, Any]:
    """Record the run in ``run_dir``; never raises and never waits longer than ``timeout_s``.

    Returns what summary.json keeps under ``history``: ``{"recorded": true, "store": URL, "run_pk": N}``,
    or ``{"recorded": false, "note": why}`` — a note only: the run's verdicts do not depend on it.
    """
    outcome: dict[str, Any] = {}
    target = "?"

    def write() -> None:
        nonlocal target
        try:
            u = history_url(url)
            target = redacted(u)
            store = HistoryStore.open(u)
            rec = run_record(run_dir, versions(_target_of(run_dir)), environment())
            outcome.update(recorded=True, store=target, run_pk=store.record_run(rec),
                           release=rec.fields.get("release"))
        except Exception as exc:
            outcome.update(recorded=False, note=f"the run history could not be written to {target}: "
                                                f"{_first_line(exc)} (the verdicts are unaffected; "
                                                f"`resilience history import {run_dir.parent}` adds it later)")
            logger.warning("history: %s", outcome["note"])

    t0 = time.monotonic()
    worker = threading.Thread(target=write, name="history-write", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        note = (f"the run history could not be written to {target} within {timeout_s:g} s (the verdicts are "
                f"unaffected; `resilience history import {run_dir.parent}` adds it later)")
        logger.warning("history: %s", note)
        return {"recorded": False, "note": note}
    outcome["write_s"] = round(time.monotonic() - t0, 3)
    return dict(outcome)


def _target_of(run_dir: Path) -> str:
    from resilience.rundir import read_json

    run = read_json(run_dir / "run.json")
    return str(run.get("target") or "local") if isinstance(run, dict) else "local"


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
