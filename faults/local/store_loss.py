"""Local backend of :mod:`faults.store_loss`: the stores' data lost, and the restore that brings it back.

The loss: PostgreSQL stopped and its PGDATA deleted; every partition of ClickHouse's events table
dropped. The backups (``<data-dir>/backups``) and the WAL archive survive, as backup storage does.

The restore (docs/backup.md), the guide's "restore from backup + replay Kafka":

1. every audit-service replica stopped (nothing writes, and the consumer group empties);
2. PostgreSQL: ``deploy/backup/pg-restore.sh`` (the base backup laid down, the archived WAL replayed,
   promoted), the server started and awaited as a primary;
3. ClickHouse: ``deploy/backup/clickhouse-restore.sh`` (parts into detached/, ATTACH PARTITION);
4. Kafka: the consumer group set back to the offsets recorded with the backup (``replay``), so the
   service consumes again everything after the backup point;
5. the replicas started.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from clients.kafka_offsets import OffsetsError, committed_offsets, reset_offsets
from faults.local import _backups
from faults.local.processes import Programs, start_again
from stack.components import postgres as pg_component
from stack.components.audit_service import GROUP
from target.settings import resolve


def lose_store_data(duration: float | None = None, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.store_loss.lose_store_data`."""
    settings = resolve(configuration)
    what = "lose store data"
    programs = Programs(settings)
    programs.require_running(what)
    _backups.require_minimal(programs, settings, what)
    backup = _backups.latest(programs, what)
    marker = _backups.lost_marker(programs)
    if marker.exists():
        raise ActivityFailed(f"{what}: already lost ({marker}); restore first (faults.store_loss.restore_from_backup)")
    for program in ("postgres", "clickhouse"):
        programs.running_info(program, what)
    pgdata = pg_component.pgdata_dir(programs.stack.ctx)
    table = _backups.events_table(programs)
    if settings.dry_run:
        return {"would": f"stop PostgreSQL and delete {pgdata}; drop every partition of {table}; "
                         f"restorable from backup {backup['id']}", "backup_id": backup["id"]}
    ch_before = _backups.clickhouse_rows(programs, what)
    pg_before = _backups.postgres_rows(programs, what)
    # Committed offsets at the loss: what the service had made durable (the replay must go back further).
    try:
        offsets = committed_offsets(programs.stack.ctx.endpoints.kafka_bootstrap, settings.consumer_group,
                                    settings.topic)
    except OffsetsError as exc:
        raise ActivityFailed(f"{what}: {exc}") from None
    started_ms = int(time.time() * 1000)
    marker.write_text(json.dumps({"backup_id": backup["id"], "loss_started_at_ms": started_ms,
                                  "offsets_at_loss": {str(p): o for p, o in offsets.items()}}) + "\n")
    pid = programs.stop("postgres", what=what)
    shutil.rmtree(pgdata, ignore_errors=True)
    partitions = _backups.clickhouse(
        programs, f"SELECT DISTINCT partition_id FROM system.parts WHERE database = "
                  f"'{programs.stack.ctx.ch_database}' AND table = '{_backups.EVENTS_TABLE}' AND active", what)
    for pid_ in partitions.split():
        _backups.clickhouse(programs, f"ALTER TABLE {table} DROP PARTITION ID '{pid_}'", what)
    # The loss is over once both deletions are: an event acknowledged until then may have been stored and deleted.
    lost_at_ms = int(time.time() * 1000)
    ch_after = _backups.clickhouse_rows(programs, what)
    return {"backup_id": backup["id"], "backup_taken_at_ms": backup["taken_at_ms"], "lost_at_ms": lost_at_ms,
            "loss_started_at_ms": started_ms,
            "backup_offsets": backup["offsets"], "offsets_at_loss": {str(p): o for p, o in offsets.items()},
            "clickhouse_rows_before": ch_before, "clickhouse_rows_after": ch_after,
            "clickhouse_partitions_dropped": partitions.split(), "postgres_rows_before": pg_before,
            "postgres_pid": pid, "pgdata_deleted": str(pgdata),
            "changed": f"PostgreSQL stopped and {pgdata} deleted ({pg_before} violations); {len(partitions.split())} "
                       f"partitions of {table} dropped ({ch_before} rows)"}


def restore_from_backup(replay: bool = True, configuration: Configuration | None = None,
                        secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.store_loss.restore_from_backup`."""
    settings = resolve(configuration)
    what = "restore from backup"
    programs = Programs(settings)
    if not programs.supervisord_running():
        return {"changed": "stack not running: nothing to undo", "would": "nothing"}
    marker = _backups.lost_marker(programs)
    if not marker.exists():
        if settings.dry_run:
            return {"would": "nothing to restore (no loss recorded); make PostgreSQL and the replicas RUNNING"}
        done = {p: start_again(settings, p, what)["changed"]
                for p in ["postgres", *(m["name"] for m in programs.group(GROUP, what))]}
        return {"changed": "nothing to restore (no loss recorded)", "programs": done}
    lost = json.loads(marker.read_text())
    backup = next((m for m in _backups.manifests(programs) if m["id"] == lost["backup_id"]), None)
    if backup is None:
        raise ActivityFailed(f"{what}: backup {lost['backup_id']} named by {marker} is gone from "
                             f"{_backups.root(programs)}")
    ctx = programs.stack.ctx
    if settings.dry_run:
        return {"would": f"stop the replicas, restore PostgreSQL and ClickHouse from backup {backup['id']}"
                         + (", reset the consumer group to its offsets" if replay else "") + ", start the replicas"}
    t0 = time.monotonic()
    steps: dict[str, float] = {}
    replicas = [m["name"] for m in programs.group(GROUP, what)]
    for name in replicas:  # all at once: a replica whose store is gone may take its whole shutdown deadline
        programs.request_stop(name, what)
    for name in replicas:
        programs.wait_state(name, ("STOPPED", "EXITED", "FATAL"), 60.0, what)
    steps["replicas_stopped_s"] = time.monotonic() - t0
    # PostgreSQL: point-in-time recovery to the end of the archive
    t = time.monotonic()
    programs.stop("postgres", what=what)
    _backups.run_script("pg-restore.sh", [str(backup["backup_dir"]) + "/postgres", str(pg_component.pgdata_dir(ctx)),
                                          backup["postgres"]["wal_archive"]], what, as_postgres=True)
    programs.ensure_running("postgres", what=what)
    _backups.wait_postgres_primary(programs, what)
    steps["postgres_s"] = time.monotonic() - t
    pg_rows = _backups.postgres_rows(programs, what)
    # ClickHouse: the frozen parts attached again
    t = time.monotonic()
    ch_rows = int(_backups.run_script(
        "clickhouse-restore.sh", [_backups.clickhouse_url(programs), ctx.ch_database, _backups.EVENTS_TABLE,
                                  str(_backups.clickhouse_path(programs)), str(backup["backup_dir"]) + "/clickhouse"],
        what).splitlines()[-1])
    steps["clickhouse_s"] = time.monotonic() - t
    # Kafka: back to the backup's offsets, so the service consumes again what the backup lacks
    t = time.monotonic()
    reset: dict[int, dict[str, int | None]] = {}
    if replay:
        wanted = {int(p): o for p, o in backup["offsets"].items()}
        try:
            reset = reset_offsets(ctx.endpoints.kafka_bootstrap, settings.consumer_group, settings.topic, wanted)
        except OffsetsError as exc:
            raise ActivityFailed(f"{what}: {exc}") from None
    steps["kafka_s"] = time.monotonic() - t
    t = time.monotonic()
    for name in replicas:
        start_again(settings, name, what)
    steps["replicas_started_s"] = time.monotonic() - t
    marker.unlink()
    replayed = sum((r["from"] or 0) - (r["to"] or 0) for r in reset.values())
    seconds = time.monotonic() - t0
    return {"backup_id": backup["id"], "replay": replay, "seconds": round(seconds, 2),
            "steps": {k: round(v, 2) for k, v in steps.items()}, "postgres_rows": pg_rows, "clickhouse_rows": ch_rows,
            "offsets_reset": {str(p): r for p, r in reset.items()}, "events_to_replay": replayed,
            "changed": f"restored backup {backup['id']} in {seconds:.1f} s (PostgreSQL {pg_rows} violations, "
                       f"ClickHouse {ch_rows} rows)" + (f"; group set back {replayed} events for the replay" if replay
                                                        else "; no Kafka replay")}
