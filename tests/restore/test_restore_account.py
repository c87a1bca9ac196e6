"""The per-event restore accounting (probes/restore.py) on hand-made ledgers: which events are at risk,
which are named as lost, the recovery point, and the guards that keep a restore of nothing from passing."""

from __future__ import annotations

import pytest

from loadtests.ledger import AckedRecord
from probes import restore
from probes.restore import RestoreRun

BACKUP_MS = 1_000_000
LOSS_MS = BACKUP_MS + 30_000



def _ledger() -> list[AckedRecord]:
    """Two partitions, 100 events each, one every 500 ms from 20 s before the backup point."""
    recs = []
    for p in (0, 1):
        for o in range(100):
            t = BACKUP_MS - 20_000 + o * 500
            recs.append(AckedRecord(f"e{p}-{o}", "events", p, o, t, t + 5))
    return recs


def _run(offsets: dict[int, int | None] | None = None, **kw: object) -> RestoreRun:
    values: dict[str, object] = dict(backup_id="b1", backup_taken_at_ms=BACKUP_MS, topic="events",
                                     backup_offsets=offsets if offsets is not None else {0: 38, 1: 40},
                                     lost_at_ms=LOSS_MS, clickhouse_rows_before=500, clickhouse_rows_after=0,
                                     restore_seconds=12.5, replay=True)
    values.update(kw)
    return RestoreRun(**values)  # type: ignore[arg-type]


def test_at_risk_is_from_the_backup_offset_to_the_loss() -> None:
    risky = restore.at_risk(_ledger(), "events", {0: 38, 1: None}, LOSS_MS)
    ids = {r.event_id for r in risky}
    # partition 0: offsets 38.. acknowledged before the loss (produced < LOSS_MS - 5 ms: offset <= 99)
    assert {f"e0-{o}" for o in range(38, 100)} <= ids
    assert "e0-37" not in ids
    # a partition without a committed offset: every event acknowledged before the loss
    assert {f"e1-{o}" for o in range(100)} <= ids


def test_events_acknowledged_after_the_loss_are_not_at_risk() -> None:
    late = AckedRecord("late", "events", 0, 500, LOSS_MS - 1, LOSS_MS + 1)
    assert restore.at_risk([late], "events", {0: 0}, LOSS_MS) == []


def test_every_event_missing_is_named_and_the_rpo_is_from_the_earliest() -> None:
    ledger = _ledger()
    deleted = ["e0-45", "e1-41", "e0-90"]  # deleted on purpose after the backup
    stored = {r.event_id for r in ledger} - set(deleted)
    acct = restore.account(ledger, stored, _run())
    assert acct.lost == ["e1-41", "e0-45", "e0-90"]  # produced order
    earliest = next(r.produced_at for r in ledger if r.event_id == "e1-41")
    assert acct.rpo_s == pytest.approx((LOSS_MS - earliest) / 1000)
    assert acct.gap_s == 30.0


def test_without_a_replay_the_rpo_is_the_gap_to_the_backup_point() -> None:
    """Everything at or after the backup offsets missing (no replay): the RPO spans backup point to loss."""
    ledger = _ledger()
    run = _run({0: 40, 1: 40})  # offset 40 was produced exactly at the backup point
    stored = {r.event_id for r in ledger if r.offset < 40}
    acct = restore.account(ledger, stored, run)
    assert set(acct.lost) == {r.event_id for r in restore.at_risk(ledger, "events", run.backup_offsets, LOSS_MS)}
    assert acct.rpo_s == pytest.approx(run.gap_s)


def test_nothing_missing_is_rpo_zero() -> None:
    ledger = _ledger()
    acct = restore.account(ledger, {r.event_id for r in ledger}, _run())
    assert acct.lost == [] and acct.rpo_s == 0.0 and acct.at_risk > 0
    assert restore.guard(_run(), acct) == ""


@pytest.mark.parametrize(("change", "why"), [
    ({"clickhouse_rows_before": 0}, "nothing was lost"),
    ({"clickhouse_rows_after": 500}, "the loss did not bite"),
    ({"restore_seconds": None}, "no restore_from_backup"),
    ({"backup_offsets": {0: 1000, 1: 1000}}, "no event was acknowledged between the backup point and the loss"),
])
def test_a_restore_that_proves_nothing_is_refused(change: dict[str, object], why: str) -> None:
    """Guards: remove one from probes.restore.guard and its case here fails."""
    run = _run(**change)  # type: ignore[arg-type]
    ledger = _ledger()
    acct = restore.account(ledger, {r.event_id for r in ledger}, run)
    assert why in restore.guard(run, acct)


def _journal(restore_details: dict[str, object] | None = None, loss_backup: str = "b1") -> dict[str, object]:
    def act(func: str, output: object) -> dict[str, object]:
        return {"activity": {"provider": {"func": func}}, "status": "succeeded", "output": output}

    backup = {"id": "b1", "taken_at_ms": BACKUP_MS, "topic": "events", "offsets": {"0": 3, "1": None}}
    run = [act("take_backup", backup),
           act("lose_store_data", {"details": {"backup_id": loss_backup, "lost_at_ms": LOSS_MS,
                                               "clickhouse_rows_before": 10, "clickhouse_rows_after": 0}})]
    if restore_details is not None:
        run.append(act("restore_from_backup", {"details": restore_details}))
    return {"run": run, "rollbacks": [act("restore_from_backup", {"details": {"changed": "nothing to restore"}})]}


def test_the_journal_gives_backup_point_loss_and_restore() -> None:
    run = restore.from_journal(_journal({"backup_id": "b1", "seconds": 42.0, "replay": False}))
    assert (run.backup_offsets, run.lost_at_ms, run.restore_seconds, run.replay) == ({0: 3, 1: None}, LOSS_MS,
                                                                                      42.0, False)
    assert restore.from_journal(_journal()).restore_seconds is None  # the rollback's no-op is no restore


@pytest.mark.parametrize(("journal", "why"), [
    ({"run": []}, "no backup point"),
    (_journal(loss_backup="other"), "which no take_backup of this run took"),
])
def test_a_journal_without_backup_or_matching_loss_is_an_error(journal: dict[str, object], why: str) -> None:
    with pytest.raises(restore.RestoreError, match=why):
        restore.from_journal(journal)
