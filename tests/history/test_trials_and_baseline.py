"""Repeated trials aggregate into one verdict per SLO; a gate compares them with a baseline from the history."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from resilience.baseline import BaselineError, check_selector, compare_scenario, finish_gate
from resilience.history.record import run_record
from resilience.history.store import HistoryStore
from resilience.report import ScenarioResult, render_index, render_report, write_junit
from resilience.trials import aggregate
from tests.history.conftest import write_run
from tests.report.conftest import T0

DAY = 86400.0


def trials_dir(root: Path, name: str, rtos: list[float], started: float, lost: list[int] | None = None) -> Path:
    """A ``run --repeat`` directory: run.json listing the trials, one run directory per trial, summary.json."""
    d = root / name
    d.mkdir(parents=True)
    names = []
    for i, rto in enumerate(rtos):
        t = write_run(d, f"{name}-t{i}", rto=rto, flow=12.0 + i * 0.1, started=started + i * 300, release="v2")
        if lost:
            s = json.loads((t / "summary.json").read_text())
            for v in s["verdicts"]:
                if v["slo"] == "data_loss":
                    v.update(measured=float(lost[i]), outcome="pass" if lost[i] == 0 else "fail")
            (t / "summary.json").write_text(json.dumps(s))
        names.append(t.name)
    run = {"format": 1, "run_id": name, "scenario": "pod_failure", "experiment_name": "pod_failure",
           "experiment": "experiments/pod_failure.yaml", "title": "Single pod failure", "target": "local",
           "stack": {"profile": "minimal"}, "repeat": len(rtos), "trials": names, "started_at": started,
           "ended_at": started + 300 * len(rtos)}
    (d / "run.json").write_text(json.dumps(run))
    (d / "summary.json").write_text(json.dumps(aggregate([d / n for n in names], "pod_failure", len(rtos))))
    return d


def test_trials_aggregate_into_interval_verdicts_and_a_report(tmp_path: Path) -> None:
    d = trials_dir(tmp_path, "x5", [7.0, 7.4, 8.1, 7.7, 7.2], T0, lost=[0, 0, 0, 0, 0])
    s = json.loads((d / "summary.json").read_text())
    v = {x["slo"]: x for x in s["verdicts"]}
    assert s["outcome"] == "pass" and s["exit_code"] == 0 and len(s["trials"]) == 5
    rto = v["rto_replicas_ready"]
    assert rto["outcome"] == "pass" and rto["measured"] == pytest.approx(7.48)
    assert rto["details"]["resolution"] == 0.5 and rto["details"]["low"] < 7.0 and rto["details"]["high"] > 8.0
    assert "95% CI of the mean" in rto["reason"]
    assert v["data_loss"]["outcome"] == "pass" and v["data_loss"]["details"]["low"] == 0
    assert "95% CI" in render_report(d).read_text()


def test_one_trial_losing_events_fails_the_aggregate(tmp_path: Path) -> None:
    d = trials_dir(tmp_path, "x3", [7.0, 7.4, 8.1], T0, lost=[0, 2, 0])
    s = json.loads((d / "summary.json").read_text())
    assert s["outcome"] == "fail" and s["exit_code"] == 1
    assert next(v for v in s["verdicts"] if v["slo"] == "data_loss")["reason"] == "1 of 3 trials measured other than 0"


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HistoryStore:
    """A history holding five baseline runs of pod_failure (release v1, RTO about 7.5 s)."""
    monkeypatch.setenv("RESILIENCE_HISTORY_URL", f"sqlite:///{tmp_path / 'h.sqlite'}")
    store = HistoryStore.open()
    for i, rto in enumerate([7.0, 7.5, 8.0, 7.2, 7.8]):
        store.record_run(run_record(write_run(tmp_path / "old", f"base{i}", rto=rto, started=T0 + i * 600,
                                              release="v1")))
    return store


def test_a_slower_release_is_regressed_and_an_unchanged_one_is_not(history: HistoryStore, tmp_path: Path) -> None:
    slow = trials_dir(tmp_path / "gate-slow", "slow-x5", [12.0, 13.0, 12.5, 12.2, 13.1], T0 + DAY)
    same = trials_dir(tmp_path / "gate-same", "same-x5", [7.1, 7.6, 7.9, 7.3, 7.7], T0 + DAY)
    by_slo = {c["slo"]: c for c in compare_scenario(history, "last-5", slow, before=T0 + DAY)}
    assert by_slo["rto_replicas_ready"]["verdict"] == "regressed"
    assert by_slo["rto_replicas_ready"]["effect_size"] == 1.0 and by_slo["rto_replicas_ready"]["n_baseline"] == 5
    assert by_slo["data_loss"]["verdict"] == "no change"
    unchanged = {c["slo"]: c["verdict"] for c in compare_scenario(history, "v1", same, before=T0 + DAY)}
    assert unchanged["rto_replicas_ready"] == "no change", unchanged
    assert "regressed" not in unchanged.values()


def test_a_regression_fails_the_junit_case_and_shows_on_the_index(history: HistoryStore, tmp_path: Path) -> None:
    gate_dir = tmp_path / "gate-20261201T000000Z"
    slow = trials_dir(gate_dir, "slow-x5", [12.0, 13.0, 12.5, 12.2, 13.1], T0 + DAY)
    trial_ids = json.loads((slow / "run.json").read_text())["trials"]
    for t in trial_ids:  # what each trial's runner does at its end
        history.record_run(run_record(slow / t))
    results = [ScenarioResult.from_run_dir(slow)]
    assert results[0].outcome.value == "pass" and results[0].score is not None
    note = finish_gate("last-5", gate_dir, results, T0 + DAY, 0, target="local", profile="minimal")
    assert note is None and results[0].regressed
    junit = ET.parse(write_junit(results, gate_dir / "junit.xml")).getroot()
    case = junit.find(".//testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "regression" and "rto_replicas_ready" in failure.get(
        "message", "")
    props = {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}
    assert props["baseline.rto_replicas_ready"].startswith("regressed; p=0.007937")
    assert float(props["resilience_score"]) == results[0].score
    assert junit.get("failures") == "1"
    html = render_index(results, gate_dir / "index.html").read_text()
    assert "regressed" in html and 'data-outcome="fail"' in html and "gate-score" in html
    gates = history.gates()
    assert gates[0]["gate_id"] == gate_dir.name and gates[0]["baseline"] == "last-5"
    assert sorted(r.run_id for r in history.runs(gate_id=gate_dir.name)) == sorted(trial_ids)
    assert {r.trial_group for r in history.runs(gate_id=gate_dir.name)} == {"slow-x5"}


def test_a_baseline_that_matches_nothing_is_refused_before_the_gate(history: HistoryStore) -> None:
    assert "release v1" in check_selector(history, "v1")
    assert check_selector(history, "last-3") == "the last 3 runs of each experiment"
    with pytest.raises(BaselineError, match="no gate, run, repeated run or release"):
        check_selector(history, "v9.9.9")


def test_gate_without_history_answers_insufficient_data_not_no_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESILIENCE_HISTORY_URL", "postgresql://nobody@127.0.0.1:9/none")
    gate_dir = tmp_path / "gate-x"
    d = trials_dir(gate_dir, "x2", [7.0, 7.5], T0)
    results = [ScenarioResult.from_run_dir(d)]
    note = finish_gate("last-5", gate_dir, results, T0, 0, target="local", profile="minimal", timeout_s=10)
    assert note and results[0].baseline_unanswered and results[0].gate_exit_code == 2
