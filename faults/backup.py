"""A backup of the stores, taken as a step of an experiment: the recovery point a restore goes back to.

Not a fault: nothing is broken and nothing needs undoing, so it is not journaled (a backup left on disk
is what backups are for; the oldest are pruned). The backup is the real operation a user runs on
staging (``deploy/backup/``, docs/backup.md): ClickHouse's FREEZE, ``pg_basebackup`` with WAL archiving
for point-in-time recovery, and the consumer group's committed offsets from which Kafka is replayed.
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["take_backup"]


def take_backup(keep: int = 2, configuration: Configuration | None = None,
                secrets: Secrets | None = None) -> dict[str, Any]:
    """Back up PostgreSQL and ClickHouse and record the consumer group's offsets (the backup point).

    The offsets are read first: the service commits an offset only once both stores hold every event
    before it, so the copies that follow hold at least those events, and a Kafka replay from the
    offsets brings back everything the backup lacks.

    Args:
        keep: complete backups of this stack kept (older ones and the WAL they alone need are deleted).

    Returns the backup's manifest: ``id``, ``backup_dir``, ``taken_at_ms`` (the backup point),
    ``offsets`` (partition -> committed offset, ``null`` when none yet), ``clickhouse`` (parts copied),
    ``postgres`` (the WAL file the base backup starts from, the archive), ``seconds``, ``pruned``;
    on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: a bad ``keep``, the ha profile (Patroni, replicated tables: not supported), the
            stack or a store not running, the stores' data lost and not restored yet, or a script failed
            (its last output lines are in the message; a half-made backup is deleted).
    """
    keep = check.integer("take_backup", "keep", keep, 1)
    return engine.act(__name__, "take_backup", {"keep": keep}, configuration, secrets)
