"""What the local backup, loss and restore share: where backups live, the scripts, the stores' reads.

A backup of the embedded stack (``<data-dir>/backups/<id>/``, docs/backup.md) is made and restored by
the scripts in ``deploy/backup/`` that a user runs on staging too; this module runs them with the
stack's ports and directories and turns their failures into ``ActivityFailed`` naming the script and
its last output lines.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed

from faults.local import _ha
from faults.local.processes import Programs
from stack.components import postgres as pg_component
from stack.paths import REPO_ROOT
from target.settings import TargetSettings

logger = logging.getLogger(__name__)

SCRIPTS = REPO_ROOT / "deploy" / "backup"
MANIFEST = "manifest.json"
LOST_MARKER = "LOST.json"
"""Written by ``lose_store_data`` before it deletes anything, removed by a completed restore: while it is
there the stores hold less than the backup and a restore is owed (the restore's idempotence rests on it)."""
EVENTS_TABLE = "audit_events"
VIOLATIONS_TABLE = "violations"


def require_minimal(programs: Programs, settings: TargetSettings, what: str) -> None:
    """Backups act on the minimal profile's single PostgreSQL server and plain MergeTree table."""
    if _ha.is_ha(settings):
        raise ActivityFailed(f"{what}: the ha profile's PostgreSQL is managed by Patroni and its ClickHouse "
                             "tables are replicated; backup and restore support the minimal profile "
                             "(docs/backup.md)")


def root(programs: Programs) -> Path:
    """``<data-dir>/backups`` of this stack."""
    return pg_component.backup_root(programs.stack.ctx)


def manifests(programs: Programs) -> list[dict[str, Any]]:
    """Every complete backup's manifest, oldest first (a backup without a manifest did not finish)."""
    base = root(programs)
    found = []
    for path in sorted(base.glob(f"*/{MANIFEST}")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            logger.warning("backup manifest %s unreadable: %s", path, exc)
    return found


def latest(programs: Programs, what: str) -> dict[str, Any]:
    """The newest complete backup's manifest; ``ActivityFailed`` when the stack has none."""
    found = manifests(programs)
    if not found:
        raise ActivityFailed(f"{what}: no backup of this stack in {root(programs)}: take one first "
                             "(faults.backup.take_backup)")
    return found[-1]


def lost_marker(programs: Programs) -> Path:
    return root(programs) / LOST_MARKER


def run_script(name: str, args: list[str], what: str, *, as_postgres: bool = False, timeout: float = 300.0,
               env: dict[str, str] | None = None) -> str:
    """Run ``deploy/backup/<name>`` and return its standard output (stripped)."""
    cmd = [str(SCRIPTS / name), *args]
    if as_postgres:
        cmd = ["runuser", "-u", "postgres", "--", "env", *(f"{k}={v}" for k, v in (env or {}).items()), *cmd]
    logger.info("%s: running %s", what, " ".join(cmd))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              env={**os.environ, **(env or {})}, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ActivityFailed(f"{what}: {name}: {exc}") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise ActivityFailed(f"{what}: {name} exited {done.returncode}: {tail}")
    return done.stdout.strip()


def pg_env(programs: Programs) -> dict[str, str]:
    """libpq variables of the server's superuser over its unix socket (trust, as ``postgres``)."""
    ctx = programs.stack.ctx
    return {"PGHOST": str(ctx.data_dir / "postgres" / "run"), "PGPORT": str(ctx.endpoints.port("postgres")),
            "PGUSER": "postgres", "PG_BINDIR": str(ctx.tools.pg_bindir)}


def clickhouse_url(programs: Programs) -> str:
    return f"http://127.0.0.1:{programs.stack.ctx.endpoints.port('clickhouse_http')}/"


def clickhouse_path(programs: Programs) -> Path:
    """The server's ``<path>`` (stack/components/clickhouse.py renders it)."""
    return programs.stack.ctx.data_dir / "clickhouse"


def clickhouse(programs: Programs, query: str, what: str, timeout: float = 60.0) -> str:
    """One query on ClickHouse's HTTP interface; its text answer."""
    url = clickhouse_url(programs)
    try:
        resp = requests.post(url, data=query.encode(), timeout=(3.0, timeout))
    except requests.RequestException as exc:
        raise ActivityFailed(f"{what}: ClickHouse at {url}: {exc}") from None
    if resp.status_code != 200:
        raise ActivityFailed(f"{what}: ClickHouse at {url}: {query!r}: HTTP {resp.status_code}: {resp.text[:300]}")
    return resp.text.strip()


def events_table(programs: Programs) -> str:
    return f"{programs.stack.ctx.ch_database}.{EVENTS_TABLE}"


def clickhouse_rows(programs: Programs, what: str) -> int:
    return int(clickhouse(programs, f"SELECT count() FROM {events_table(programs)}", what) or 0)


def postgres_rows(programs: Programs, what: str) -> int:
    """Rows of the violations table (as the audit user, directly: no proxy)."""
    import psycopg

    kwargs = programs.stack.ctx.postgres_kwargs()
    try:
        with psycopg.connect(**kwargs, connect_timeout=5, autocommit=True) as conn:  # type: ignore[arg-type]
            row = conn.execute(f"SELECT count(*) FROM {VIOLATIONS_TABLE}").fetchone()
    except psycopg.Error as exc:
        raise ActivityFailed(f"{what}: PostgreSQL at {kwargs['host']}:{kwargs['port']}: {exc}") from None
    return int(row[0]) if row else 0


def wait_postgres_primary(programs: Programs, what: str, timeout: float = 180.0) -> float:
    """Wait until the server has finished recovery (promoted) and the audit database answers; seconds waited."""
    import psycopg

    kwargs = programs.stack.ctx.postgres_kwargs()
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout:
        try:
            with psycopg.connect(**kwargs, connect_timeout=3, autocommit=True) as conn:  # type: ignore[arg-type]
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row and row[0] is False:
                    return time.monotonic() - t0
                last = "still in recovery"
        except psycopg.Error as exc:
            last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        time.sleep(0.5)
    raise ActivityFailed(f"{what}: PostgreSQL not a writable primary after {timeout:.0f} s: {last}")
