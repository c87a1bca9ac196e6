"""JUnit XML: counts, mapping of outcomes, and inconclusive is never a pass."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from probes.verdict import Outcome
from resilience.report import ScenarioResult, write_junit
from tests.report.conftest import DURATION

RunFactory = Callable[..., Path]


@pytest.fixture
def results(run_factory: RunFactory) -> list[ScenarioResult]:
    dirs = [run_factory("a", outcome="pass", scenario="pod_failure"),
            run_factory("b", outcome="fail", scenario="postgres_failure"),
            run_factory("c", outcome="inconclusive", scenario="clickhouse_failure"),
            run_factory("d", summary=False, scenario="cluster_loss")]
    return [ScenarioResult.from_run_dir(d) for d in dirs]


def test_scenario_result_from_run_dir(results: list[ScenarioResult]) -> None:
    ok, failed, inconclusive, crashed = results
    assert (ok.scenario, ok.outcome, ok.exit_code, ok.duration_s) == ("pod_failure", Outcome.PASS, 0, DURATION)
    assert ok.failing == [] and ok.inconclusive == [] and ok.target == "local"
    assert (ok.rto_replicas_ready_s, ok.rto_data_flow_s, ok.rpo_s, ok.lost) == (7.0, 12.0, 0.0, 0)
    assert failed.outcome is Outcome.FAIL and failed.exit_code == 1
    assert failed.failing == [("pdb_min_available", "measured 1 replicas, objective >= 2")]
    assert inconclusive.outcome is Outcome.INCONCLUSIVE and inconclusive.exit_code == 2
    assert inconclusive.inconclusive == [("consumer_lag_critical", "Prometheus returned no data")]
    assert crashed.crashed and crashed.outcome is Outcome.INCONCLUSIVE and crashed.exit_code == 2
    assert crashed.inconclusive[0][0] == "run" and "crashed" in crashed.inconclusive[0][1]


def test_summary_without_verdicts_is_not_a_pass(run_factory: RunFactory) -> None:
    r = ScenarioResult.from_run_dir(run_factory(outcome="pass", verdicts=[]))
    assert r.outcome is Outcome.INCONCLUSIVE and r.inconclusive


def test_junit_counts_and_mapping(results: list[ScenarioResult], tmp_path: Path) -> None:
    path = write_junit(results, tmp_path / "out" / "junit.xml")
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "resilience-gate"
    counts = [suite.get(k) for k in ("tests", "failures", "errors", "skipped")]
    assert counts == ["4", "1", "2", "0"]
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"pod_failure", "postgres_failure", "clickhouse_failure", "cluster_loss"}
    for case in cases.values():
        assert case.get("classname") == "resilience.local"
        assert case.findtext("system-out") and "report: " in (case.findtext("system-out") or "")
    assert float(cases["pod_failure"].get("time") or 0) == pytest.approx(DURATION)
    assert list(cases["pod_failure"]) == [cases["pod_failure"].find("system-out")]  # a pass has nothing else
    failure = cases["postgres_failure"].find("failure")
    assert failure is not None and "pdb_min_available" in (failure.get("message") or "")
    assert "also not judged" in (failure.text or "")
    error = cases["clickhouse_failure"].find("error")
    assert error is not None and error.get("type") == "inconclusive"
    assert "consumer_lag_critical" in (error.get("message") or "")
    crash = cases["cluster_loss"].find("error")
    assert crash is not None and crash.get("type") == "crashed"
    assert str(results[0].report_path) in (cases["pod_failure"].findtext("system-out") or "")


def test_inconclusive_is_never_a_pass(results: list[ScenarioResult], tmp_path: Path) -> None:
    """What CI tools do: a testcase passes iff it has no failure, error or skipped child."""
    root = ET.parse(write_junit(results, tmp_path / "junit.xml")).getroot()
    passed = {c.get("name") for c in root.iter("testcase")
              if c.find("failure") is None and c.find("error") is None and c.find("skipped") is None}
    assert passed == {"pod_failure"}


def test_junit_survives_control_characters(run_factory: RunFactory, tmp_path: Path) -> None:
    run_dir = run_factory(outcome="fail")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["verdicts"][2]["reason"] = "bad \x1b[31mred\x1b[0m \x00 & <tag>"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    root = ET.parse(write_junit([ScenarioResult.from_run_dir(run_dir)], tmp_path / "j.xml")).getroot()
    failure = next(root.iter("failure"))
    assert "& <tag>" in (failure.text or "")


def test_empty_gate(tmp_path: Path) -> None:
    root = ET.parse(write_junit([], tmp_path / "j.xml")).getroot()
    assert root.get("tests") == "0"
