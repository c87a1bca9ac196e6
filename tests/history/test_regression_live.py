"""A release made measurably slower is "regressed" against a baseline of unchanged runs; an unchanged
re-run is "no change" — repeated trials on the real local stack, through `resilience gate`'s own code.

The "release" is the same experiment (one replica SIGKILLed under light load, the replicas' RTO
judged) with a latency toxic on the service's Kafka edge from before the kill (the group's rejoin
then takes longer), or without. Each variant runs TRIALS times as a gate (`repeat`); the baseline is
the first gate. Power: 5 against 5 makes p ≤ 0.05 reachable only with Cliff's delta ≥ 0.84 (the exact
test's smallest p is 0.0079), so the slow-down must be several noise widths (measured and printed).
"""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from resilience import experiments as xp
from resilience.gate import GateOptions, run_gate
from resilience.history.store import HistoryStore
from resilience.runner import RunOptions, RunResult, run
from stack.core import LocalStack
from tests.history.live import regression_experiment

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.extended, pytest.mark.timeout(2700)]

TRIALS = 5
SLOW_MS = 500


def test_slower_release_regresses_and_unchanged_rerun_does_not(stack: LocalStack, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESILIENCE_HISTORY_URL", f"sqlite:///{tmp_path / 'history.sqlite'}")
    fast = xp.load(regression_experiment(tmp_path / "release-a"))
    slow = xp.load(regression_experiment(tmp_path / "release-b", slow_ms=SLOW_MS))

    def run_one(options: RunOptions) -> RunResult:
        options.data_dir = stack.data_dir
        return run(options)

    def gate(exp: xp.Experiment, release: str, baseline: str | None) -> tuple[int, dict[str, dict[str, object]], Path]:
        monkeypatch.setenv("RESILIENCE_RELEASE", release)
        opts = GateOptions(port_base=stack.endpoints.port_base, reports_dir=tmp_path / "reports", repeat=TRIALS,
                           baseline=baseline)
        result = run_gate(opts, run_one, [exp])
        [scenario] = result.results
        return result.exit_code, {str(c["slo"]): c for c in scenario.comparisons}, result.gate_dir

    base_code, _, base_dir = gate(fast, "release-a", None)
    slow_code, slow_cmp, slow_dir = gate(slow, "release-b", base_dir.name)
    same_code, same_cmp, _ = gate(fast, "release-a2", base_dir.name)

    store = HistoryStore.open()
    values = {rel: [r.values["rto_replicas_ready"] for r in store.runs(release=rel)]
              for rel in ("release-a", "release-b", "release-a2")}
    print("\nrto_replicas_ready per release (s):", json.dumps(values))
    for rel, xs in values.items():
        finite = [x for x in xs if x is not None]
        if len(finite) > 1:
            print(f"  {rel}: median {statistics.median(finite):.2f}, sd {statistics.stdev(finite):.2f}, n {len(xs)}")
    rto_slow, rto_same = slow_cmp["rto_replicas_ready"], same_cmp["rto_replicas_ready"]
    print("slower release:", rto_slow["verdict"], rto_slow["reason"])
    print("unchanged re-run:", rto_same["verdict"], rto_same["reason"])
    assert base_code in (0, 2), "the baseline gate failed an SLO"
    assert rto_slow["verdict"] == "regressed", rto_slow
    assert rto_same["verdict"] == "no change", rto_same
    assert slow_code == 1 and same_code != 1
    junit = ET.parse(slow_dir / "junit.xml").getroot()
    failure = junit.find(".//testcase/failure")
    assert failure is not None and failure.get("type") in ("regression", "slo")
    assert "rto_replicas_ready" in (failure.text or "") + (failure.get("message") or "")
    assert "regressed" in (slow_dir / "index.html").read_text()
