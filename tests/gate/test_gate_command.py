"""``resilience gate`` itself: a fast subset through the real command in CI, and its exit code and JUnit
when scenarios fail, are inconclusive or cannot start.

The per-scenario verdicts are proven elsewhere (tests/runner, tests/judge); here the gate's own
job is: run each selected experiment, keep one result per scenario (a scenario that cannot start
included), aggregate the exit code, write junit.xml and index.html that say the same.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from probes.verdict import Outcome
from resilience.experiments import load, resolve
from resilience.gate import GateOptions, exit_code, run_gate
from resilience.plan import RunError, RunOptions
from resilience.runner import RunResult
from stack.core import LocalStack

FAST = ("pod_failure", "config_change")


def _testcases(junit: Path) -> dict[str, ET.Element]:
    root = ET.parse(junit).getroot()
    return {tc.get("name") or "": tc for tc in root.iter("testcase")}


@pytest.mark.extended
@pytest.mark.stack
@pytest.mark.slow
def test_the_fast_gate_through_the_real_command(stack: LocalStack, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    args = [sys.executable, "-m", "resilience.cli", "gate", *[a for n in FAST for a in ("--experiment", n)],
            "--port-base", str(stack.endpoints.port_base), "--data-dir", str(stack.data_dir),
            "--reports-dir", str(tmp_path / "reports"), "--junit", str(junit)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1500)
    gate_dir = next((tmp_path / "reports").glob("gate-*"))
    runs = sorted(p for p in gate_dir.iterdir() if p.is_dir())
    summaries = {json.loads((r / "summary.json").read_text())["scenario"]: json.loads((r / "summary.json").read_text())
                 for r in runs}
    assert set(summaries) == {load(resolve(n)).ext.scenario for n in FAST}, proc.stdout[-3000:]
    codes = [s["exit_code"] for s in summaries.values()]
    assert proc.returncode == exit_code(codes), proc.stdout[-3000:] + proc.stderr[-2000:]
    cases = _testcases(junit)
    assert (gate_dir / "junit.xml").read_bytes() == junit.read_bytes()
    for scenario, summary in summaries.items():
        case = cases[scenario]
        kinds = {child.tag for child in case}
        expected = {"pass": set(), "fail": {"failure"}, "inconclusive": {"error"}}[summary["outcome"]]
        assert kinds & {"failure", "error"} == expected, (scenario, summary["outcome"], kinds)
    index = (gate_dir / "index.html").read_text()
    for r in runs:
        assert (r / "report.html").exists() and f"{r.name}/report.html" in index
    # On a quiet machine the fast gate passes; a verdict other than pass names its reasons here.
    not_passed = {s: [f"{v['slo']}: {v['outcome']} {v['reason']}" for v in summary["verdicts"]
                      if v["outcome"] != "pass"]
                  for s, summary in summaries.items() if summary["outcome"] != "pass"}
    assert proc.returncode == 0 and not not_passed, json.dumps(not_passed, indent=1)


def _run_dir(root: Path, name: str, outcome: str, code: int, verdicts: list[dict[str, object]]) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"scenario": name, "target": "local", "title": name, "started_at": 1.0,
                                            "ended_at": 61.0}))
    (d / "summary.json").write_text(json.dumps({"scenario": name, "outcome": outcome, "exit_code": code,
                                                "verdicts": verdicts, "errors": []}))
    return d


def test_one_failed_one_inconclusive_and_one_not_started_make_exit_1_and_say_so(tmp_path: Path) -> None:
    """The gate's aggregation and JUnit on three real experiment files, each run replaced by a known outcome."""
    made = tmp_path / "made"
    outcomes = {
        "pod_failure": _run_dir(made, "pod_failure", "fail", 1, [
            {"slo": "rto_replicas_ready", "outcome": "fail", "measured": 75.0, "objective": "<= 60",
             "unit": "seconds", "reason": "never recovered"}]),
        "service_oom": _run_dir(made, "service_oom", "inconclusive", 2, [
            {"slo": "fault_effect:replicas_ready", "outcome": "inconclusive", "measured": 3.0,
             "objective": "replicas_ready <= 2", "unit": "value", "reason": "fault did not take effect"}]),
    }

    def run_one(options: RunOptions) -> RunResult:
        name = Path(options.experiment).stem
        if name not in outcomes:
            raise RunError(f"Prometheus at http://127.0.0.1:1 is not reachable ({name})")
        summary = json.loads((outcomes[name] / "summary.json").read_text())
        return RunResult(outcomes[name], Outcome(summary["outcome"]), summary["exit_code"], summary)

    chosen = [load(resolve(n)) for n in ("pod_failure", "service_oom", "config_change")]
    result = run_gate(GateOptions(reports_dir=tmp_path / "reports"), run_one, chosen, settle=lambda _: None)
    assert result.exit_code == 1
    cases = _testcases(result.junit)
    assert {c.tag for c in cases["pod_failure"]} >= {"failure"}
    assert "rto_replicas_ready" in (cases["pod_failure"].find("failure").get("message") or "")  # type: ignore[union-attr]
    assert cases["service_oom"].find("error") is not None
    not_started = cases["config_change"].find("error")
    assert not_started is not None and "did not start" in (not_started.get("message") or "") + (not_started.text or "")
    index = result.index.read_text()
    assert "config_change" in index and "did not start" in index


def test_the_gate_settles_the_target_between_experiments_and_says_so(tmp_path: Path) -> None:
    """Before every experiment but the first the target is settled; what was done is kept, and a target
    that cannot be brought back makes that experiment "did not start" without ending the gate."""
    ran: list[str] = []
    settled_before: list[str] = []

    def run_one(options: RunOptions) -> RunResult:
        name = Path(options.experiment).stem
        ran.append(name)
        assert options.rate == 100.0  # the gate's --rate reaches every run
        d = _run_dir(tmp_path / "made", name, "pass", 0, [])
        return RunResult(d, Outcome.PASS, 0, json.loads((d / "summary.json").read_text()))

    def settle(options: RunOptions) -> str | None:
        name = Path(options.experiment).stem
        settled_before.append(name)
        if name == "service_oom":
            return "the stack was unhealthy (audit-service-0: process STOPPED); audit-service-0: started"
        if name == "config_change":
            raise RunError("the stack at port base 1 was left unhealthy and did not come back: kafka")
        return None

    chosen = [load(resolve(n)) for n in ("pod_failure", "service_oom", "config_change", "postgres_failure")]
    result = run_gate(GateOptions(reports_dir=tmp_path / "reports", rate=100.0), run_one, chosen, settle=settle)
    assert settled_before == ["service_oom", "config_change", "postgres_failure"]  # never before the first
    assert ran == ["pod_failure", "service_oom", "postgres_failure"]
    assert result.settled == ["before service_oom: the stack was unhealthy (audit-service-0: process STOPPED); "
                              "audit-service-0: started"]
    not_started = _testcases(result.junit)["config_change"].find("error")
    assert not_started is not None and "did not come back: kafka" in (not_started.get("message") or "") + (
        not_started.text or "")
    assert result.exit_code == 2
    assert "Settled between scenarios" in result.index.read_text() and "before service_oom" in result.index.read_text()


@pytest.mark.stack
def test_settle_local_brings_a_stopped_replica_back_and_names_it(stack: LocalStack) -> None:
    from resilience.gate import settle_local

    options = RunOptions(experiment="pod_failure", port_base=stack.endpoints.port_base, data_dir=stack.data_dir)
    assert settle_local(options) is None  # healthy: nothing done
    stack.supervisor.stop("audit-service-1")
    note = settle_local(options)
    assert note is not None and "audit-service-1 (process STOPPED): started" in note, note
    assert stack.status().healthy


@pytest.mark.parametrize("codes, expected", [([0, 0], 0), ([0, 2], 2), ([2, 1, 0], 1), ([], 2)])
def test_exit_code_aggregation(codes: list[int], expected: int) -> None:
    assert exit_code(codes) == expected


def test_a_long_experiment_runs_only_when_asked_for() -> None:
    """``consumer_lag_critical`` (~10 min) is out of the default gate, in with --tag long or by name."""
    from resilience.gate import select

    def names(options: GateOptions) -> set[str]:
        return {e.name for e in select(options)[0]}

    assert "consumer_lag_critical" not in names(GateOptions())
    assert "consumer_lag_critical" not in names(GateOptions(tags=("lag",)))
    assert "consumer_lag_critical" in names(GateOptions(tags=("long",)))
    assert "consumer_lag_critical" in names(GateOptions(names=("consumer_lag_critical",)))
    assert "pod_failure" in names(GateOptions())


@pytest.mark.stack
def test_heal_waits_until_prometheus_scrapes_a_restarted_replica_up(stack: LocalStack) -> None:
    """The status a gate read may predate Prometheus's scrape of the stopped replica (CI, 2026-12-01:
    settled, then "6/7 targets up"): heal waits for Prometheus whenever it restarted anything."""
    from clients.wait import wait_until
    from stack.core import StackStatus

    stack.supervisor.stop("audit-service-1")
    wait_until(lambda: "not up: audit-service-1" in str(stack.status().as_dict()), 30, 0.5,
               "Prometheus never scraped the stopped replica down")
    early = stack.status()  # as read before Prometheus noticed: only the replica is sick
    early = StackStatus(**{**early.__dict__, "components": [
        c if c.name != "prometheus" else type(c)(**{**c.__dict__, "healthy": True, "detail": "up"})
        for c in early.components]})
    waited: list[str] = []
    stack.heal(progress=lambda name, phase, _detail: waited.append(name) if phase == "healthy" else None,
               status=early)
    assert "prometheus" in waited
    assert stack.status().healthy


def test_an_experiment_the_service_cannot_take_is_skipped_and_listed_not_made_inconclusive(tmp_path: Path) -> None:
    """stale_api_key needs a read API; the Python service has none. The real plan refuses it (``NotApplicable``,
    before any fault); the gate lists it as skipped, and a gate whose other experiments passed still exits 0.
    Without the distinction every Python gate ended "inconclusive" on it (the cluster gate of 2026-12-02 08:08)."""
    from resilience.plan import NotApplicable, plan

    def run_one(options: RunOptions) -> RunResult:
        name = Path(options.experiment).stem
        if name == "stale_api_key":
            plan(options)  # raises
        d = _run_dir(tmp_path / "made", name, "pass", 0, [])
        return RunResult(d, Outcome.PASS, 0, json.loads((d / "summary.json").read_text()))

    with pytest.raises(NotApplicable, match="needs the service's read API; the python service has none"):
        plan(RunOptions(experiment="stale_api_key", service="python"))
    chosen = [load(resolve(n)) for n in ("pod_failure", "stale_api_key")]
    result = run_gate(GateOptions(reports_dir=tmp_path / "reports", service="python"), run_one, chosen,
                      settle=lambda _: None)
    assert result.exit_code == 0, [r.exit_code for r in result.results]
    assert [r.scenario for r in result.results] == ["pod_failure"]
    assert len(result.skipped) == 1 and result.skipped[0].startswith("stale_api_key: ") and "read API" in \
        result.skipped[0], result.skipped
    assert "stale_api_key" not in _testcases(result.junit)
    index = result.index.read_text()
    assert "Skipped: not applicable to this service" in index and "stale_api_key" in index
