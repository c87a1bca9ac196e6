"""The split-brain accounting (probes/splitbrain.py) and its verdicts (resilience/judge.py), on records shaped
like the canary writer's: what the isolated old leader acknowledged after it lost its leader key, what the new
leader lacks, and the guards that keep a run that proved nothing from passing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from probes import splitbrain
from resilience.judge import SPLIT_BRAIN_FILE, _split_brain

CUT = 1000.0
TTL = 20.0


def _writes(*, acked: int = 13, hung: int = 1, failed: int = 30, refused: int = 50, lost: int = 0,
            promoted_at: float | None = CUT + 22.0, late_ack: float | None = None,
            on_old_extra: dict[str, float] | None = None) -> dict[str, Any]:
    """A record like the live synchronous run's: ``acked`` writes before the cut (10 a second), ``hung`` commits
    cut short by the demotion (committed locally, never acknowledged), failures while the old leader restarted,
    then ``refused`` (read-only) writes after the key was lost. ``lost``: how many acknowledged writes the new
    leader lacks (the last ones: asynchronous replication). ``late_ack``: one more write acknowledged then."""
    attempts: list[list[Any]] = []
    t, seq = CUT - acked * 0.1, 0
    for _ in range(acked):
        seq += 1
        attempts.append([seq, t, t + 0.01, "acknowledged"])
        t += 0.1
    for _ in range(hung):
        seq += 1
        attempts.append([seq, t, CUT + 7.3, "failed"])
    t = CUT + 7.4
    for _ in range(failed):
        seq += 1
        attempts.append([seq, t, t + 0.05, "failed"])
        t += 0.5
    t = max(t, CUT + TTL + 1)
    for _ in range(refused):
        seq += 1
        attempts.append([seq, t, t + 0.01, "refused"])
        t += 0.1
    if late_ack is not None:
        seq += 1
        attempts.append([seq, late_ack - 0.01, late_ack, "acknowledged"])
    acked_seqs = [a[0] for a in attempts if a[3] == "acknowledged"]
    on_old = {str(a[0]): a[1] for a in attempts if a[3] == "acknowledged" or a[2] == CUT + 7.3}
    on_old.update(on_old_extra or {})
    return {"member": "pg1", "candidate": "pg2", "ttl_s": TTL, "run": "r", "attempts": attempts,
            "demoted_at": CUT + 23.7, "promoted_at": promoted_at, "on_old": on_old,
            "on_new": acked_seqs[:len(acked_seqs) - lost], "errors": []}


ISOLATION = {"member": "pg1", "candidate": "pg2", "isolated_at": CUT}


def test_a_clean_synchronous_run_has_no_write_after_the_key_and_nothing_lost() -> None:
    acct = splitbrain.account(_writes(), ISOLATION)
    assert splitbrain.guard(acct) == ""
    assert acct.key_lost_at == CUT + TTL  # the lease ran out before the promotion was seen
    assert acct.refused_after == 50 and acct.acked_after == [] and acct.stored_after == []
    assert acct.lost == [] and acct.rpo_s == 0.0
    assert acct.unacked_on_old == 1  # the commit cut short by the demotion: on the old leader, never acknowledged


def test_asynchronous_losses_are_named_with_their_span() -> None:
    acct = splitbrain.account(_writes(acked=40, lost=25), ISOLATION)
    assert acct.lost == list(range(16, 41)) and splitbrain.guard(acct) == ""
    assert acct.rpo_s == pytest.approx(24 * 0.1 + 0.01)


def test_a_write_acknowledged_after_the_lease_ran_out_counts_even_before_the_promotion_is_seen() -> None:
    """The key's end is the earlier of the promotion and the cut plus the lease: a late promotion poll must
    not excuse an old leader that was still taking writes once its key had expired."""
    acct = splitbrain.account(_writes(promoted_at=CUT + 40.0, late_ack=CUT + TTL + 2.0), ISOLATION)
    assert acct.key_lost_at == CUT + TTL and len(acct.acked_after) == 1


def test_the_old_leaders_own_table_is_read_not_only_the_clients_word() -> None:
    acct = splitbrain.account(_writes(on_old_extra={"999": CUT + TTL + 5.0}), ISOLATION)
    assert acct.stored_after == [999] and acct.acked_after == [] and acct.writes_after == [999]


@pytest.mark.parametrize(("change", "why"), [
    (lambda w, i: (w, None), "nothing was isolated"),
    (lambda w, i: ({**w, "promoted_at": None}, i), "never seen promoted"),
    (lambda w, i: ({**w, "attempts": [a for a in w["attempts"] if a[3] != "refused"]}, i), "proved nothing"),
    (lambda w, i: ({**w, "on_new": None}, i), "could not be read"),
    (lambda w, i: (w, {**i, "member": "pg2"}), "was isolated"),
])
def test_a_run_that_proves_nothing_is_inconclusive(change: Any, why: str) -> None:
    writes, isolation = change(_writes(), ISOLATION)
    assert why in splitbrain.guard(splitbrain.account(writes, isolation))


def _journal(run_dir: Path, writes: dict[str, Any] | None, isolation: dict[str, Any] | None) -> None:
    run = []
    if isolation is not None:
        run.append({"activity": {"name": "isolate-postgres-leader", "provider": {"func": splitbrain.FAULT}},
                    "status": "succeeded", "output": {"fault_id": "f", "details": isolation}})
    if writes is not None:
        run.append({"activity": {"name": "split-brain-writes", "provider": {"func": splitbrain.PROBE}},
                    "status": "succeeded", "output": writes})
    (run_dir / "journal.json").write_text(json.dumps({"run": run}))


def test_the_judge_measures_from_the_journal_and_writes_the_account(tmp_path: Path) -> None:
    _journal(tmp_path, _writes(acked=40, lost=3, late_ack=CUT + 30.0), ISOLATION)
    m = _split_brain(tmp_path)
    assert m["split_brain_writes"].value == 1  # one write, seen both acknowledged and in the old leader's table
    assert "1 acknowledged to the client, 1 in its own table" in m["split_brain_writes"].reason
    assert m["split_brain_lost"].value == 3 and m["split_brain_rpo"].value is not None
    saved = json.loads((tmp_path / SPLIT_BRAIN_FILE).read_text())
    assert saved["lost_count"] == 3 and saved["reasons"] == []


def test_the_judge_has_no_measure_when_the_writer_proved_nothing(tmp_path: Path) -> None:
    w = _writes()
    _journal(tmp_path, {**w, "attempts": [a for a in w["attempts"] if a[3] != "refused"]}, ISOLATION)
    m = _split_brain(tmp_path)
    assert all(x.value is None and "proved nothing" in x.reason for x in m.values())
    _journal(tmp_path, None, ISOLATION)
    assert all(x.value is None for x in _split_brain(tmp_path).values())
