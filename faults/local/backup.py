"""Local backend of :mod:`faults.backup`: a backup of the embedded stack's stores, and its recovery point.

In this order, so that replaying Kafka from the recorded offsets covers everything the backup lacks:

1. the consumer group's committed offsets (the service commits an offset only once both stores hold the
   events before it, so everything below them is in the stores now, hence in the copies that follow);
2. ClickHouse: ``deploy/backup/clickhouse-backup.sh`` (FREEZE, the parts copied out of shadow/);
3. PostgreSQL: ``deploy/backup/pg-base-backup.sh`` (pg_basebackup, WAL archiving on from now).

Old backups beyond ``keep`` are deleted, and archived WAL older than the oldest kept base backup with
``pg_archivecleanup``.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.kafka_offsets import OffsetsError, committed_offsets
from faults.local import _backups
from faults.local.processes import Programs
from stack.components import postgres as pg_component
from stack.components.base import chown_postgres
from target.settings import resolve


def take_backup(keep: int = 2, configuration: Configuration | None = None,
                secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.backup.take_backup`."""
    settings = resolve(configuration)
    what = "take backup"
    programs = Programs(settings)
    programs.require_running(what)
    _backups.require_minimal(programs, settings, what)
    for program in ("postgres", "clickhouse", "kafka"):
        programs.running_info(program, what)
    base = _backups.root(programs)
    if _backups.lost_marker(programs).exists():
        raise ActivityFailed(f"{what}: the stores' data is lost ({_backups.lost_marker(programs)}): restore first "
                             "(faults.store_loss.restore_from_backup)")
    backup_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = base / backup_id
    if settings.dry_run:
        return {"would": f"back up PostgreSQL and ClickHouse of stack {settings.stack_port_base} into {dest}, "
                         f"recording group {settings.consumer_group}'s offsets", "backup_dir": str(dest)}
    if dest.exists():
        raise ActivityFailed(f"{what}: {dest} exists (one backup per second at most)")
    t0 = time.monotonic()
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    archive = pg_component.wal_archive(programs.stack.ctx)
    archive.mkdir(exist_ok=True)
    chown_postgres(archive)
    dest.mkdir()
    chown_postgres(dest)
    # 1. the recovery point in Kafka's terms
    bootstrap = programs.stack.ctx.endpoints.kafka_bootstrap
    taken_at_ms = int(time.time() * 1000)
    try:
        offsets = committed_offsets(bootstrap, settings.consumer_group, settings.topic)
    except OffsetsError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise ActivityFailed(f"{what}: {exc}") from None
    try:
        # 2. ClickHouse
        t_ch = time.monotonic()
        parts = int(_backups.run_script(
            "clickhouse-backup.sh", [_backups.clickhouse_url(programs), programs.stack.ctx.ch_database,
                                     _backups.EVENTS_TABLE, str(_backups.clickhouse_path(programs)),
                                     str(dest / "clickhouse")], what).splitlines()[-1])
        ch_s = time.monotonic() - t_ch
        # 3. PostgreSQL
        t_pg = time.monotonic()
        start_wal = _backups.run_script("pg-base-backup.sh", [str(dest / "postgres"), str(archive)], what,
                                        as_postgres=True, env=_backups.pg_env(programs)).splitlines()[-1]
        pg_s = time.monotonic() - t_pg
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    manifest = {
        "id": backup_id, "backup_dir": str(dest), "taken_at_ms": taken_at_ms,
        "topic": settings.topic, "consumer_group": settings.consumer_group,
        "offsets": {str(p): o for p, o in offsets.items()},
        "clickhouse": {"parts": parts, "table": _backups.events_table(programs), "seconds": round(ch_s, 2)},
        "postgres": {"start_wal": start_wal, "wal_archive": str(archive), "seconds": round(pg_s, 2)},
        "seconds": round(time.monotonic() - t0, 2),
    }
    (dest / _backups.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["pruned"] = _prune(programs, keep, what)
    return {**manifest, "changed": f"backup {backup_id}: {parts} ClickHouse parts, base backup from WAL "
                                   f"{start_wal}, offsets of {len(offsets)} partitions"}


def _prune(programs: Programs, keep: int, what: str) -> list[str]:
    """Delete backups beyond the newest ``keep`` and the archived WAL the oldest kept one does not need."""
    found = _backups.manifests(programs)
    pruned = []
    for old in found[:-keep] if keep < len(found) else []:
        shutil.rmtree(old["backup_dir"], ignore_errors=True)
        pruned.append(old["id"])
    kept = found[-keep:]
    archive = pg_component.wal_archive(programs.stack.ctx)
    if kept and archive.is_dir():
        cleanup = programs.stack.ctx.tools.pg_bindir / "pg_archivecleanup"
        import subprocess

        done = subprocess.run([str(cleanup), str(archive), kept[0]["postgres"]["start_wal"]],
                              capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise ActivityFailed(f"{what}: pg_archivecleanup {archive}: {done.stderr.strip()[-300:]}")
    return pruned
