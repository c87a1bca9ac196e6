"""The recovery point of a restore, event by event: what the backup lacked must come back through Kafka.

A restore scenario takes a backup (``faults.backup.take_backup``: the consumer group's committed offsets
are the backup point), loses the stores' data later (``faults.store_loss.lose_store_data``), and
restores them (``restore_from_backup``: the backup, then a replay of Kafka from the backup's offsets).

At risk
    every event the ledger holds that the backup cannot hold: at or after the backup's committed offset
    of its partition (a partition without a committed offset: every event), and acknowledged by Kafka
    before the loss. Events acknowledged after the loss were never in a store that was lost.
Lost by the restore
    an event at risk that ClickHouse does not hold once the pipeline has drained: the restore and the
    replay did not bring it back. Each one is named.
RPO of the restore
    seconds between the earliest such event's ``produced_at`` and the loss; 0 when none is lost. Without
    a replay every event at risk that the service had consumed before the loss is lost, so the RPO is
    the gap between the backup point and the loss (plus the consumer lag at the backup).

The backup point, the loss and the restore are read from what the experiment's actions returned
(the Chaos Toolkit journal of the run), so ``resilience report`` re-judges a run offline.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

__all__ = ["RestoreAccount", "RestoreError", "RestoreRun", "account", "from_journal"]

BACKUP = "take_backup"
LOSS = "lose_store_data"
RESTORE = "restore_from_backup"


class RestoreError(ValueError):
    """The run's journal does not say what the restore accounting needs (no backup, loss or restore)."""


class _Acked(Protocol):
    """A ledger record (loadtests.ledger.AckedRecord), as far as the accounting reads it."""

    @property
    def event_id(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def produced_at(self) -> int: ...
    @property
    def acked_at(self) -> int: ...


A = TypeVar("A", bound=_Acked)


@dataclass(frozen=True)
class RestoreRun:
    """What the run's backup, loss and restore actions returned."""

    backup_id: str
    backup_taken_at_ms: int
    topic: str
    backup_offsets: dict[int, int | None]
    lost_at_ms: int
    clickhouse_rows_before: int
    clickhouse_rows_after: int
    restore_seconds: float | None
    replay: bool | None
    restore: dict[str, Any] = field(default_factory=dict)

    @property
    def gap_s(self) -> float:
        """Seconds between the backup point and the loss."""
        return (self.lost_at_ms - self.backup_taken_at_ms) / 1000.0


@dataclass(frozen=True)
class RestoreAccount:
    at_risk: int
    lost: list[str]
    """Every event at risk not back after the restore, in produced order."""
    rpo_s: float
    gap_s: float
    earliest_lost_produced_at_ms: int | None = None

    def as_dict(self, max_ids: int = 20) -> dict[str, Any]:
        return {"at_risk": self.at_risk, "lost": len(self.lost), "lost_ids": self.lost[:max_ids],
                "rpo_s": self.rpo_s, "gap_s": self.gap_s,
                "earliest_lost_produced_at_ms": self.earliest_lost_produced_at_ms}


def _outputs(journal: Mapping[str, Any], func: str) -> list[dict[str, Any]]:
    """Outputs of every succeeded activity calling ``func`` (method, then rollbacks)."""
    found = []
    for entry in [*(journal.get("run") or []), *(journal.get("rollbacks") or [])]:
        provider = (entry.get("activity") or {}).get("provider") or {}
        if provider.get("func") == func and entry.get("status") == "succeeded" and isinstance(entry.get("output"),
                                                                                             dict):
            found.append(entry["output"])
    return found


def from_journal(journal: Mapping[str, Any]) -> RestoreRun:
    """The backup point, the loss and the first restore that restored something, from a Chaos Toolkit journal.

    Raises:
        RestoreError: no backup taken, no loss applied, or the loss names another backup.
    """
    backups = _outputs(journal, BACKUP)
    if not backups:
        raise RestoreError(f"no succeeded {BACKUP} action in the run's journal: no backup point")
    losses = [o.get("details") or {} for o in _outputs(journal, LOSS)]
    losses = [d for d in losses if "lost_at_ms" in d]
    if not losses:
        raise RestoreError(f"no succeeded {LOSS} fault in the run's journal: nothing was lost")
    loss = losses[0]
    backup = next((b for b in backups if b.get("id") == loss.get("backup_id")), None)
    if backup is None:
        raise RestoreError(f"the loss names backup {loss.get('backup_id')!r}, which no {BACKUP} of this run took")
    restores = [o.get("details") or {} for o in _outputs(journal, RESTORE)]
    restored = next((d for d in restores if d.get("backup_id") == backup["id"]), {})
    return RestoreRun(
        backup_id=str(backup["id"]), backup_taken_at_ms=int(backup["taken_at_ms"]), topic=str(backup["topic"]),
        backup_offsets={int(p): (None if o is None else int(o)) for p, o in backup["offsets"].items()},
        lost_at_ms=int(loss["lost_at_ms"]), clickhouse_rows_before=int(loss.get("clickhouse_rows_before", 0)),
        clickhouse_rows_after=int(loss.get("clickhouse_rows_after", 0)),
        restore_seconds=float(restored["seconds"]) if "seconds" in restored else None,
        replay=restored.get("replay"), restore=restored)


def at_risk(records: Iterable[A], topic: str, backup_offsets: Mapping[int, int | None],
            lost_at_ms: int) -> list[A]:
    """Ledger records the backup cannot hold and a store had time to lose (see the module doc)."""
    out = []
    for r in records:
        if r.topic != topic or r.acked_at >= lost_at_ms:
            continue
        start = backup_offsets.get(int(r.partition))
        if start is None or r.offset >= start:
            out.append(r)
    return out


def account(records: Iterable[_Acked], stored: Collection[str], run: RestoreRun) -> RestoreAccount:
    """Every event at risk either back in ``stored`` (ClickHouse, after the drain) or named as lost."""
    risky = at_risk(records, run.topic, run.backup_offsets, run.lost_at_ms)
    lost = sorted((r for r in risky if r.event_id not in stored), key=lambda r: (r.produced_at, r.event_id))
    earliest = lost[0].produced_at if lost else None
    rpo = max(0.0, (run.lost_at_ms - earliest) / 1000.0) if earliest is not None else 0.0
    return RestoreAccount(at_risk=len(risky), lost=[r.event_id for r in lost], rpo_s=rpo, gap_s=run.gap_s,
                          earliest_lost_produced_at_ms=earliest)


def guard(run: RestoreRun, acct: RestoreAccount) -> str:
    """Why this run cannot judge a restore ("" when it can): a loss that deleted nothing, nothing at risk,
    or no restore. A restore of data that was never lost must not pass."""
    if run.clickhouse_rows_before <= 0:
        return "ClickHouse held no event when the loss came: nothing was lost, the restore proves nothing"
    if run.clickhouse_rows_after >= run.clickhouse_rows_before:
        return (f"the loss did not bite: ClickHouse held {run.clickhouse_rows_after} events after it, "
                f"{run.clickhouse_rows_before} before")
    if acct.at_risk == 0:
        return ("no event was acknowledged between the backup point and the loss: nothing needed the replay "
                f"(gap {run.gap_s:.1f} s)")
    if run.restore_seconds is None:
        return f"no {RESTORE} restored backup {run.backup_id} in this run"
    return ""
