"""The ``residue`` verdict's paths, judged offline on the recorded pod-failure run (fixtures/pod_failure).

The fixture predates the audit (its run.json names no residue file: no residue verdict, as for every
run recorded before it). Each test gives it a ``residue.json`` made by the real diff of two snapshots.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from faults import residue
from probes.verdict import Outcome, Verdict
from resilience.judge import Judgement, judge
from tests.faults.test_residue_rules import TOXIC, local

FIXTURE = Path(__file__).parent / "fixtures" / "pod_failure"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "run"))


def _judge(run_dir: Path, audited: dict[str, Any] | None, *, name_it: bool = True) -> Judgement:
    run = json.loads((run_dir / "run.json").read_text())
    if name_it:
        run["residue"] = "residue.json"
    if audited is not None:
        (run_dir / "residue.json").write_text(json.dumps(audited))
    return judge(run_dir, run, "http://127.0.0.1:1", live=False)


def _audited(after: dict[str, Any] | None) -> dict[str, Any]:
    before = local()
    found = residue.diff(before, after).as_dict() if after is not None else None
    return {"format": 1, "before": before, "after": after, "audit": found, "waited_s": 3.0}


def _residue(j: Judgement) -> Verdict:
    return next(v for v in j.verdicts if v.slo == "residue")


def test_a_run_recorded_before_the_audit_has_no_residue_verdict(run_dir: Path) -> None:
    j = _judge(run_dir, None, name_it=False)
    assert all(v.slo != "residue" for v in j.verdicts) and j.outcome is Outcome.PASS


def test_a_target_back_where_it_started_passes(run_dir: Path) -> None:
    after = local()
    after["items"]["programs"]["programs"]["audit-service-0"].update(pid=99, started=9.0)  # the killed replica
    j = _judge(run_dir, _audited(after))
    v = _residue(j)
    assert v.outcome is Outcome.PASS and v.measured == 0
    assert "audit-service-0: restarted during the run" in " ".join(v.details["notes"])
    assert j.outcome is Outcome.PASS


def test_a_leftover_fails_the_run_and_is_named(run_dir: Path) -> None:
    after = copy.deepcopy(local())
    after["items"]["toxiproxy"]["clickhouse"]["toxics"] = [TOXIC]
    after["items"]["programs"]["programs"]["clickhouse"]["state"] = "STOPPED"
    j = _judge(run_dir, _audited(after))
    v = _residue(j)
    assert v.outcome is Outcome.FAIL and v.measured == 2
    assert "toxic chaos-partition-upstream" in v.reason and "program clickhouse: STOPPED" in v.reason
    assert j.outcome is Outcome.FAIL and j.exit_code == 1


@pytest.mark.parametrize(("audited", "why"), [
    (None, "no snapshot from before the experiment"),
    (_audited(None), "the run ended before its audit"),
])
def test_an_audit_that_did_not_complete_is_inconclusive_never_a_pass(run_dir: Path, audited: dict[str, Any] | None,
                                                                    why: str) -> None:
    j = _judge(run_dir, audited)
    v = _residue(j)
    assert v.outcome is Outcome.INCONCLUSIVE and why in v.reason
    assert j.outcome is Outcome.INCONCLUSIVE
