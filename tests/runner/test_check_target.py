"""``resilience check-target`` and the same check before a run: a metric the profile names but Prometheus
lacks is named, and nothing is injected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from probes.slo import DEFAULT_SLO_FILE
from stack.core import LocalStack
from target.settings import resolve

pytestmark = [pytest.mark.stack]

TYPO = "sqlaudit_events_processd_total"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "resilience.cli", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def slo_missing_one_metric(tmp_path: Path) -> Path:
    """The catalogue with python-reference's processed_rate reading a metric no service exports."""
    cat = yaml.safe_load(DEFAULT_SLO_FILE.read_text())
    measures = cat["profiles"]["python-reference"]["measures"]
    measures["processed_rate"] = measures["processed_rate"].replace("sqlaudit_events_processed_total", TYPO)
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(cat, sort_keys=False))
    return path


def test_every_measure_of_the_local_target_is_there(stack: LocalStack) -> None:
    proc = _cli("check-target", "--port-base", str(stack.endpoints.port_base), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert {m["measure"]: m["status"] for m in report["measures"]}.keys() >= {"replicas_ready", "consumer_lag"}
    bad = {m["measure"]: (m["status"], m["detail"]) for m in report["measures"] if m["status"] not in ("ok", "idle")
           and not (m["status"] == "optional" and m["measure"].startswith("api_"))}  # no read API: not applicable
    assert not bad, bad


def test_a_metric_prometheus_lacks_is_named_and_exits_2(stack: LocalStack, slo_missing_one_metric: Path) -> None:
    proc = _cli("check-target", "--port-base", str(stack.endpoints.port_base), "--slo-file",
                str(slo_missing_one_metric))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "processed_rate" in line)
    assert line.startswith("missing") and f'{TYPO}{{job="audit-service"}}' in line


def test_a_run_whose_metrics_do_not_fit_stops_before_any_fault(stack: LocalStack, slo_missing_one_metric: Path,
                                                              tmp_path: Path) -> None:
    """kafka_broker_loss's effect reads processed_rate: the run is refused, naming the metric, and no fault
    of any run appears in the journal."""
    state = resolve().fault_state_dir
    before = sorted(state.rglob("faults/*.json")) if state.exists() else []
    proc = _cli("run", "kafka_broker_loss", "--port-base", str(stack.endpoints.port_base), "--data-dir",
                str(stack.data_dir), "--slo-file", str(slo_missing_one_metric), "--reports-dir", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert TYPO in proc.stderr and "nothing was injected" in proc.stderr
    after = sorted(state.rglob("faults/*.json")) if state.exists() else []
    assert after == before
