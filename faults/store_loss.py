"""The stores' data lost after a backup (a disaster), and the restore from that backup + a Kafka replay.

``lose_store_data`` is the fault: PostgreSQL's data directory and every partition of ClickHouse's events
table are deleted, as a lost volume or a ``DROP`` by mistake would; the backups and the WAL archive
survive. Its undo is ``restore_from_backup``, the operations guide's recovery of lost data (§7.3
"restore from backup + replay Kafka"): so the journal, the expiry timer, the watchdog and
``resilience cleanup`` restore the stores if the runner dies, like any fault's undo. An experiment
calls the restore itself as the recovery it times (restore_from_backup.yaml).
"""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults import arguments as check
from faults import engine

__all__ = ["lose_store_data", "restore_from_backup"]


def lose_store_data(duration: float | None = None, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Delete the stores' data: PostgreSQL stopped and its data directory removed, ClickHouse's events
    table emptied (every partition dropped). Needs a backup of the stack (``faults.backup.take_backup``).

    Args:
        duration: seconds until a detached timer restores from the backup by itself; ``null`` leaves the
            stores lost until ``restore_from_backup``.

    Returns ``fault_id``, ``run_id``, ``expires_at``, ``journal`` and ``details``: ``backup_id``,
    ``backup_taken_at_ms``, ``loss_started_at_ms``, ``lost_at_ms`` (when both deletions were done: an event
    acknowledged until then may have been stored and deleted), ``backup_offsets`` and ``offsets_at_loss`` (the consumer
    group's committed offsets at each), rows held before and after (ClickHouse), violations before
    (PostgreSQL); on a dry run ``{"dry_run": true, "plan": ...}``.

    Raises:
        ActivityFailed: a bad ``duration``; no backup of this stack; already lost and not restored;
            the ha profile; PostgreSQL or ClickHouse not RUNNING (nothing is deleted in these cases).
    """
    duration = check.duration("lose_store_data", duration)
    return engine.inject(__name__, "lose_store_data", {"duration": duration}, "restore_from_backup",
                         {"replay": True}, duration, configuration, secrets, instant=False)


def restore_from_backup(replay: bool = True, configuration: Configuration | None = None,
                        secrets: Secrets | None = None) -> dict[str, Any]:
    """Restore the stores from the backup the loss named, then replay Kafka from the backup's offsets;
    idempotent (no loss recorded: make sure PostgreSQL and the replicas run, and say so).

    The replicas are stopped; PostgreSQL is restored from its base backup and the archived WAL
    (point-in-time recovery to the end of the archive) and promoted; ClickHouse's frozen parts are
    attached again; the consumer group is set back to the offsets recorded with the backup; the
    replicas are started and consume again every event after the backup point.

    Args:
        replay: set the consumer group back to the backup's offsets. ``false`` restores the stores
            only: every event acknowledged after the backup point and consumed before the loss is then
            lost (what the restore scenario's verdict must name, event by event).

    Returns ``{"fault", "target", "reverted_entries", "details"}``; ``details``: ``seconds`` (the restore's
    duration), ``steps``, rows restored, ``offsets_reset`` (partition -> from, to) and
    ``events_to_replay``.

    Raises:
        ActivityFailed: a bad ``replay``; the backup the loss named is gone; a script failed; PostgreSQL
            not a writable primary within 180 s; the consumer group still had members after 60 s.
    """
    replay = check.boolean("restore_from_backup", "replay", replay)
    return engine.remove(__name__, "restore_from_backup", {"replay": replay}, configuration, secrets)
