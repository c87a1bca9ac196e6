"""Every path from "something went wrong" to a verdict, on a recorded real run.

The fixture (``fixtures/pod_failure``, made by ``build_fixture.py`` from a real ``resilience run
pod_failure`` that passed) is re-judged offline, as ``resilience report`` does. Each test changes
one thing — the ledger, the store read, a recorded Prometheus series, the run's record, or the
objective (a what-if SLO file) — and checks the verdict that must follow. docs/report.md lists
these paths and the test of each.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from probes.slo import DEFAULT_SLO_FILE, load_catalogue
from probes.verdict import Outcome, Verdict
from resilience.judge import Judgement, judge

FIXTURE = Path(__file__).parent / "fixtures" / "pod_failure"
READY = "sqlaudit_ready"
E2E = "sqlaudit_end_to_end_latency_seconds_bucket"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "run"))


def _run(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "run.json").read_text()))


def _edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text())
    data = change(data) or data
    path.write_text(json.dumps(data))


def _edit_series(run_dir: Path, query_part: str, value: Callable[[float, float], float | None]) -> None:
    """Rewrite every recorded range answer of a query containing ``query_part``: ``value(t, v)`` gives the
    new value of the sample at ``t`` (relative to the fault's start), ``None`` drops the sample."""
    fault = float(_run(run_dir)["fault"]["start"])

    def change(calls: list[dict[str, Any]]) -> None:
        for call in calls:
            if call["kind"] == "range" and query_part in call["query"] and call.get("result"):
                for series in call["result"]:
                    values = []
                    for t, v in series["values"]:
                        new = value(float(t) - fault, float(v))
                        if new is not None:
                            values.append([t, str(new)])
                    series["values"] = values

    _edit_json(run_dir / "recorded" / "prometheus.json", change)


def _what_if(tmp_path: Path, rto_s: float) -> Any:
    """The SLO catalogue with pod_failure's RTO set to ``rto_s``."""
    cat = yaml.safe_load(DEFAULT_SLO_FILE.read_text())
    next(s for s in cat["scenarios"] if s["id"] == "pod_failure")["rto"]["max_s"] = rto_s
    path = tmp_path / "what-if.yaml"
    path.write_text(yaml.safe_dump(cat, sort_keys=False))
    return load_catalogue(path)


def _judge(run_dir: Path, catalogue: Any = None) -> Judgement:
    return judge(run_dir, _run(run_dir), "http://127.0.0.1:1", live=False, catalogue=catalogue)


def _verdict(j: Judgement, slo: str) -> Verdict:
    return next(v for v in j.verdicts if v.slo == slo)


def _observed_after_fault(run_dir: Path) -> float:
    run = _run(run_dir)
    return float(run["rollback_started_at"]) - float(run["fault"]["start"])


# --------------------------------------------------------------------------- as recorded
def test_the_recorded_run_passes_every_slo(run_dir: Path) -> None:
    j = _judge(run_dir)
    assert j.outcome is Outcome.PASS, [(v.slo, v.outcome, v.reason) for v in j.verdicts if not v.passed]
    assert {v.slo for v in j.verdicts} >= {"load_achieved", "fault_effect:replicas_ready", "rto_replicas_ready",
                                           "rto_data_flow", "rpo", "data_loss", "availability", "pdb_min_available"}


# ------------------------------------------------------------------ data: inconclusive
def test_an_empty_ledger_is_inconclusive(run_dir: Path) -> None:
    for path in (run_dir / "ledger").glob("acked-*.jsonl"):
        path.write_text("")
    j = _judge(run_dir)
    assert j.outcome is Outcome.INCONCLUSIVE
    assert _verdict(j, "data_loss").outcome is Outcome.INCONCLUSIVE
    assert "the ledger holds no acknowledged event" in _verdict(j, "data_loss").reason


def test_a_pipeline_that_did_not_drain_is_inconclusive(run_dir: Path) -> None:
    _edit_json(run_dir / "recorded" / "store.json",
               lambda s: s["drain"].update(drained=False, reason="lag still 812 after 180 s"))
    j = _judge(run_dir)
    assert j.outcome is Outcome.INCONCLUSIVE
    assert _verdict(j, "data_loss").reason == "lag still 812 after 180 s"
    assert _verdict(j, "rpo").outcome is Outcome.INCONCLUSIVE


def test_an_unreachable_store_is_inconclusive(run_dir: Path) -> None:
    _edit_json(run_dir / "recorded" / "store.json",
               lambda s: s["drain"].update(store_error="ClickHouse at 127.0.0.1:19004: Connection refused"))
    j = _judge(run_dir)
    assert j.outcome is Outcome.INCONCLUSIVE
    assert "ClickHouse at 127.0.0.1:19004" in _verdict(j, "data_loss").reason


def test_load_below_its_ratio_is_inconclusive(run_dir: Path) -> None:
    _edit_json(run_dir / "run.json", lambda r: r["load"].update(rate_eps=r["load"]["rate_eps"] * 2))
    j = _judge(run_dir)
    assert j.outcome is Outcome.INCONCLUSIVE
    v = _verdict(j, "load_achieved")
    assert v.outcome is Outcome.INCONCLUSIVE and "the run proves little" in v.reason


def test_prometheus_unreachable_is_inconclusive_and_names_it(run_dir: Path) -> None:
    def fail(calls: list[dict[str, Any]]) -> None:
        for call in calls:
            if READY in call["query"]:
                call["result"], call["error"] = None, "Prometheus at http://127.0.0.1:19007: connection refused"

    _edit_json(run_dir / "recorded" / "prometheus.json", fail)
    j = _judge(run_dir)
    assert j.outcome is Outcome.INCONCLUSIVE
    assert "http://127.0.0.1:19007" in _verdict(j, "rto_replicas_ready").reason


def test_an_error_during_the_run_makes_a_pass_inconclusive(run_dir: Path) -> None:
    _edit_json(run_dir / "run.json", lambda r: r.update(error="experiment interrupted: KeyboardInterrupt"))
    j = _judge(run_dir)
    assert all(v.passed for v in j.verdicts)
    assert j.outcome is Outcome.INCONCLUSIVE and "KeyboardInterrupt" in j.errors[0]


# -------------------------------------------------------------------- fault effect
def test_a_fault_that_did_not_bite_is_inconclusive_not_a_pass(run_dir: Path) -> None:
    _edit_series(run_dir, READY, lambda t, v: max(v, 3.0))  # no replica ever went unready
    j = _judge(run_dir)
    effect = _verdict(j, "fault_effect:replicas_ready")
    assert effect.outcome is Outcome.INCONCLUSIVE and "fault did not take effect" in effect.reason
    assert _verdict(j, "rto_replicas_ready").outcome is Outcome.PASS  # "never broke": RTO 0 — yet no pass:
    assert j.outcome is Outcome.INCONCLUSIVE


def test_a_run_without_a_recorded_fault_is_inconclusive(run_dir: Path) -> None:
    _edit_json(run_dir / "run.json", lambda r: r.update(fault=None))
    j = _judge(run_dir)
    assert j.outcome is Outcome.INCONCLUSIVE
    assert _verdict(j, "fault_effect:replicas_ready").reason == "no fault recorded in the journal"
    assert _verdict(j, "rto_replicas_ready").reason == "no fault start recorded"


# ------------------------------------------------------------------------ recovery
def test_never_recovered_in_an_observation_that_covers_the_objective_fails(run_dir: Path, tmp_path: Path) -> None:
    _edit_series(run_dir, READY, lambda t, v: 2.0 if t >= 0 else v)
    objective = _observed_after_fault(run_dir) - 5
    j = _judge(run_dir, _what_if(tmp_path, objective))
    v = _verdict(j, "rto_replicas_ready")
    assert v.outcome is Outcome.FAIL and j.outcome is Outcome.FAIL, v
    assert j.rto["replicas_ready"]["status"] == "never_recovered"


def test_never_recovered_in_an_observation_shorter_than_the_objective_is_inconclusive(run_dir: Path) -> None:
    _edit_series(run_dir, READY, lambda t, v: 2.0 if t >= 0 else v)
    assert _observed_after_fault(run_dir) < 60
    v = _verdict(_judge(run_dir), "rto_replicas_ready")
    assert v.outcome is Outcome.INCONCLUSIVE and "run longer to judge it" in v.reason


def test_a_recovery_still_settling_when_the_run_ended_fails_once_it_began_past_the_objective(
        run_dir: Path, tmp_path: Path) -> None:
    """Ready again only in the last 3 s of the observation: the stabilisation window was not seen, so the RTO is
    unknown, but it is at least the time it began. Past the objective that is a fail whatever followed (the
    cluster's kafka_broker_loss said "inconclusive" of a recovery that began at +70.9 s against 60 s); within
    the objective it stays inconclusive (it might still have passed)."""
    observed = _observed_after_fault(run_dir)
    _edit_series(run_dir, READY, lambda t, v: v if t < 0 else (3.0 if t >= observed - 3 else 2.0))
    late = _verdict(_judge(run_dir, _what_if(tmp_path, observed - 10)), "rto_replicas_ready")
    assert late.outcome is Outcome.FAIL, late
    assert "the RTO is at least" in late.reason and late.measured is not None and late.measured >= observed - 4
    open_ = _verdict(_judge(run_dir, _what_if(tmp_path, observed + 100)), "rto_replicas_ready")
    assert open_.outcome is Outcome.INCONCLUSIVE and "stabilisation window" in open_.reason, open_


def test_flapping_never_recovers(run_dir: Path, tmp_path: Path) -> None:
    _edit_series(run_dir, READY, lambda t, v: v if t < 0 else (3.0 if int(t // 4) % 2 else 2.0))
    j = _judge(run_dir, _what_if(tmp_path, _observed_after_fault(run_dir) - 5))
    assert _verdict(j, "rto_replicas_ready").outcome is Outcome.FAIL
    assert j.rto["replicas_ready"]["status"] == "never_recovered"


def test_a_recovery_that_only_came_with_the_rollback_fails_and_says_so(run_dir: Path, tmp_path: Path) -> None:
    # The rollback is moved 12 s earlier, so a 10 s stable window fits between it and the end of the recording;
    # the replica is back half a second after the rollback started, not before.
    _edit_json(run_dir / "run.json", lambda r: r.update(rollback_started_at=r["rollback_started_at"] - 12))
    rollback = _observed_after_fault(run_dir)
    _edit_series(run_dir, READY, lambda t, v: v if t < 0 else (2.0 if t < rollback + 0.5 else 3.0))
    j = _judge(run_dir, _what_if(tmp_path, rollback - 5))
    v = _verdict(j, "rto_replicas_ready")
    assert v.outcome is Outcome.FAIL, v
    assert "recovered by rollback" in v.reason
    assert j.rto["replicas_ready"]["status"] == "recovered_by_rollback"


def test_a_baseline_out_of_slo_makes_the_data_flow_rto_inconclusive(run_dir: Path) -> None:
    _edit_series(run_dir, E2E, lambda t, v: 0.9 if t < 0 else v)
    v = _verdict(_judge(run_dir), "rto_data_flow")
    assert v.outcome is Outcome.INCONCLUSIVE and "before anything was broken" in v.reason


def test_a_scrape_gap_after_the_fault_is_inconclusive_not_never_recovered(run_dir: Path, tmp_path: Path) -> None:
    _edit_series(run_dir, READY, lambda t, v: None if 0 <= t < 12 else (2.0 if t >= 0 else v))
    j = _judge(run_dir, _what_if(tmp_path, 10))
    v = _verdict(j, "rto_replicas_ready")
    assert v.outcome is Outcome.INCONCLUSIVE and "scrape gap" in v.reason


# ------------------------------------------------------------------------ data loss
def test_events_deleted_from_the_store_fail_and_every_one_is_named(run_dir: Path) -> None:
    store = json.loads((run_dir / "recorded" / "store.json").read_text())
    gone = sorted(store["stored"])[:25]
    _edit_json(run_dir / "recorded" / "store.json", lambda s: [s["stored"].pop(e) for e in gone] and None)
    j = _judge(run_dir)
    v = _verdict(j, "data_loss")
    assert v.outcome is Outcome.FAIL and v.measured == 25
    listed = [json.loads(line) for line in (run_dir / "lost.jsonl").read_text().splitlines()]
    assert sorted(r["event_id"] for r in listed) == gone  # every one, not the first 20
    assert all(r["partition"] is not None and r["offset"] is not None and r["produced_at"] for r in listed)
    assert j.data_loss["lost_listed"] == 25 and j.data_loss["lost_file"] == "lost.jsonl"
    assert len(j.data_loss["lost_ids"]) == 20 and j.data_loss["lost_ids_truncated"]


def test_events_lost_before_the_fault_fail_the_rpo(run_dir: Path) -> None:
    run = _run(run_dir)
    fault_ms = float(run["fault"]["start"]) * 1000
    store = json.loads((run_dir / "recorded" / "store.json").read_text())
    before = [e for e, (_, _, produced) in store["stored"].items() if produced < fault_ms - 5000][:3]
    _edit_json(run_dir / "recorded" / "store.json", lambda s: [s["stored"].pop(e) for e in before] and None)
    v = _verdict(_judge(run_dir), "rpo")
    assert v.outcome is Outcome.FAIL and v.measured is not None and v.measured > 5


def test_violations_missing_from_postgres_fail_and_set_the_postgres_rpo(run_dir: Path) -> None:
    run = _run(run_dir)
    fault_ms = float(run["fault"]["start"]) * 1000
    store = json.loads((run_dir / "recorded" / "store.json").read_text())
    early = sorted((produced, e) for e, (_, _, produced) in store["stored"].items() if produced < fault_ms - 8000)[:2]
    late = next(e for e, (_, _, produced) in store["stored"].items() if produced > fault_ms)
    missing = {"SlowQuery": [early[0][1], late], "ActualImpact": [early[1][1]]}
    _edit_json(run_dir / "recorded" / "store.json",
               lambda s: s.update(violations={"status": "measured", "checked": 10, "missing": missing}))
    j = _judge(run_dir)
    lost = _verdict(j, "violations_lost")
    assert lost.outcome is Outcome.FAIL and lost.measured == 3 and early[0][1] in lost.reason
    rpo = _verdict(j, "rpo_postgres")
    late_ms = store["stored"][late][2]
    assert rpo.outcome is Outcome.FAIL and rpo.measured == pytest.approx((late_ms - early[0][0]) / 1000, abs=0.01)
    assert early[0][1] in rpo.reason and early[1][1] in rpo.reason and late in rpo.reason


def test_violations_lost_after_the_fault_started_set_the_postgres_rpo_too(run_dir: Path) -> None:
    """A split brain's old leader acknowledges writes after the cut that the failover then drops: they are
    lost as surely as those before it (the asynchronous split brain lost 31 and this SLO read 0 s)."""
    run = _run(run_dir)
    fault_ms = float(run["fault"]["start"]) * 1000
    store = json.loads((run_dir / "recorded" / "store.json").read_text())
    late = sorted((produced, e) for e, (_, _, produced) in store["stored"].items() if produced > fault_ms + 1000)[:2]
    _edit_json(run_dir / "recorded" / "store.json", lambda s: s.update(
        violations={"status": "measured", "checked": 10, "missing": {"SlowQuery": [e for _, e in late]}}))
    rpo = _verdict(_judge(run_dir), "rpo_postgres")
    assert rpo.outcome is Outcome.FAIL, rpo
    assert rpo.measured == pytest.approx((late[-1][0] - fault_ms) / 1000, abs=0.01)
    assert all(e in rpo.reason for _, e in late) and "0 produced before the fault, 2 during or after it" in rpo.reason
