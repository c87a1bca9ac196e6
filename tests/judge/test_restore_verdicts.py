"""The restore scenario's verdicts, re-judged offline from a recorded real run that passed.

The fixture (``fixtures/restore_from_backup``, ``build_fixture.py --keep 100`` of ``resilience run
restore_from_backup``) keeps one acknowledged event in a hundred. Each test deletes events on purpose
from the recorded store read, or edits what an action returned in the journal, and checks the verdict:
every deleted event at risk is named, the recovery point is the gap to the earliest one, and a restore
that proves nothing is inconclusive, never a pass.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadtests.ledger import read_ledger
from probes import restore
from probes.verdict import Outcome, Verdict
from resilience.judge import RESTORE_LOST_FILE, Judgement, judge

FIXTURE = Path(__file__).parent / "fixtures" / "restore_from_backup"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "run"))


def _judge(run_dir: Path) -> Judgement:
    return judge(run_dir, json.loads((run_dir / "run.json").read_text()), "http://127.0.0.1:1", live=False)


def _verdict(j: Judgement, slo: str) -> Verdict:
    return next(v for v in j.verdicts if v.slo == slo)


def _edit(path: Path, change: Callable[[Any], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _facts(run_dir: Path) -> tuple[restore.RestoreRun, dict[str, Any]]:
    journal = json.loads((run_dir / "journal.json").read_text())
    return restore.from_journal(journal), dict(read_ledger(run_dir / "ledger", strict=False).acked)


def _delete(run_dir: Path, ids: set[str]) -> None:
    _edit(run_dir / "recorded" / "store.json", lambda s: [s["stored"].pop(i) for i in ids])


def _named(run_dir: Path) -> list[str]:
    return [json.loads(line)["event_id"] for line in (run_dir / RESTORE_LOST_FILE).read_text().splitlines()]


def test_the_recorded_restore_passes_with_every_event_at_risk_back(run_dir: Path) -> None:
    j = _judge(run_dir)
    assert j.outcome is Outcome.PASS, [(v.slo, v.outcome, v.reason) for v in j.verdicts if not v.passed]
    lost = _verdict(j, "restore_lost")
    assert lost.measured == 0 and lost.details["at_risk"] > 50 and lost.details["replay"] is True
    assert _verdict(j, "rpo_restore").measured == 0
    assert _verdict(j, "restore_duration").measured == pytest.approx(70.14)


def test_events_deleted_on_purpose_after_the_backup_are_each_named(run_dir: Path) -> None:
    facts, records = _facts(run_dir)
    risky = sorted(restore.at_risk(records.values(), facts.topic, facts.backup_offsets, facts.lost_at_ms),
                   key=lambda r: r.offset)
    deleted = {r.event_id for r in risky[5:12]}
    before_backup = next(r for r in records.values() if r not in risky)
    _delete(run_dir, deleted | {before_backup.event_id})  # and one the backup holds: data_loss, not the restore's
    j = _judge(run_dir)
    lost = _verdict(j, "restore_lost")
    assert lost.outcome is Outcome.FAIL and lost.measured == len(deleted)
    assert set(_named(run_dir)) == deleted and set(lost.details["lost_ids"]) == deleted
    assert all(e in lost.reason for e in deleted)
    earliest = min(records[e].produced_at for e in deleted)
    assert _verdict(j, "rpo_restore").measured == pytest.approx((facts.lost_at_ms - earliest) / 1000, abs=1e-3)
    assert _verdict(j, "data_loss").measured == len(deleted) + 1
    assert j.outcome is Outcome.FAIL


def test_without_the_replay_the_rpo_is_the_gap_between_the_backup_point_and_the_loss(run_dir: Path) -> None:
    """What a restore without a replay loses: every event at risk the service had consumed before the loss."""
    facts, records = _facts(run_dir)
    journal = json.loads((run_dir / "journal.json").read_text())
    loss = next(e["output"]["details"] for e in journal["run"]
                if e["activity"]["provider"].get("func") == "lose_store_data")
    consumed = {int(p): o for p, o in loss["offsets_at_loss"].items()}
    gone = {r.event_id for r in restore.at_risk(records.values(), facts.topic, facts.backup_offsets, facts.lost_at_ms)
            if r.offset < (consumed.get(r.partition) or 0)}
    _delete(run_dir, gone)
    j = _judge(run_dir)
    assert set(_named(run_dir)) == gone
    rpo = _verdict(j, "rpo_restore").measured
    assert rpo is not None and facts.gap_s * 0.8 <= rpo <= facts.gap_s + 20, (rpo, facts.gap_s)


def _edit_output(run_dir: Path, func: str, change: Callable[[dict[str, Any]], None]) -> None:
    def edit(journal: dict[str, Any]) -> None:
        for entry in journal["run"]:
            if entry["activity"]["provider"].get("func") == func:
                change(entry["output"])
    _edit(run_dir / "journal.json", edit)


@pytest.mark.parametrize(("edit", "why"), [
    (lambda d: _edit_output(d, "lose_store_data", lambda o: o["details"].update(clickhouse_rows_after=10**9)),
     "the loss did not bite"),
    (lambda d: _edit_output(d, "take_backup", lambda o: o.update(offsets={p: 10**9 for p in o["offsets"]})),
     "no event was acknowledged between the backup point and the loss"),
    (lambda d: _edit_output(d, "take_backup", lambda o: o.update(id="another")), "which no take_backup"),
    (lambda d: _edit(d / "journal.json", lambda j: j.update(run=[e for e in j["run"] if e["activity"]["provider"]
                                                               .get("func") != "restore_from_backup"])),
     "no restore_from_backup restored"),
])
def test_a_restore_that_proves_nothing_is_inconclusive(run_dir: Path, edit: Callable[[Path], None], why: str) -> None:
    edit(run_dir)
    j = _judge(run_dir)
    lost = _verdict(j, "restore_lost")
    assert lost.outcome is Outcome.INCONCLUSIVE and why in lost.reason, lost
    assert _verdict(j, "rpo_restore").outcome is Outcome.INCONCLUSIVE
    assert j.outcome is not Outcome.PASS
