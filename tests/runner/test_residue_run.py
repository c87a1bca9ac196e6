"""The residue verdict of real runs: a run that leaves something behind fails and names it; a run does not
start on a target that carries this library's leftovers; ``resilience cleanup`` reports the same diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from resilience.judge import judge
from resilience.runner import RunOptions, run
from stack.core import LocalStack
from target.settings import DEFAULT_STATE_DIR
from tests.runner.careless_actions import TOXIC

pytestmark = [pytest.mark.stack]

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = Path(__file__).parent / "experiments" / "leave_residue.yaml"


def _state() -> Path:
    return Path(os.environ.get("RESILIENCE_STATE_DIR") or DEFAULT_STATE_DIR)


def _cleanup(stack: LocalStack) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "resilience.cli", "cleanup", "--port-base",
                           str(stack.endpoints.port_base), "--state-dir", str(_state())],
                          capture_output=True, text=True, timeout=120, cwd=str(REPO))


def _toxic(stack: LocalStack, proxy: str, name: str) -> str:
    return f"{stack.endpoints.toxiproxy_url}/proxies/{proxy}/toxics/{name}"


@pytest.fixture
def careless(stack: LocalStack) -> Iterator[None]:
    """Whatever the careless actions leave is removed afterwards (the toxic, the process)."""
    try:
        yield
    finally:
        requests.delete(_toxic(stack, "postgres", TOXIC), timeout=5)
        root = str(stack.data_dir.resolve())
        for proc in psutil.process_iter(["cmdline", "cwd"]):
            if proc.info["cmdline"] == ["sleep", "600"] and (proc.info["cwd"] or "").startswith(root):
                proc.kill()


@pytest.mark.extended
def test_a_run_that_leaves_things_behind_fails_and_names_them(stack: LocalStack, tmp_path: Path,
                                                               careless: None) -> None:
    result = run(RunOptions(experiment=str(EXPERIMENT), port_base=stack.endpoints.port_base, data_dir=stack.data_dir,
                            reports_dir=tmp_path / "reports"))
    verdict = next(v for v in result.summary["verdicts"] if v["slo"] == "residue")
    assert verdict["outcome"] == "fail", verdict
    assert f"toxiproxy proxy postgres: toxic {TOXIC}" in verdict["reason"], verdict["reason"]
    assert "left in the stack's directory" in verdict["reason"] and "sleep 600" in verdict["reason"]
    assert verdict["measured"] == 2
    assert result.exit_code == 1, json.dumps(result.summary["verdicts"], indent=1)
    others = {v["slo"]: v["outcome"] for v in result.summary["verdicts"] if v["slo"] != "residue"}
    assert "fail" not in others.values(), f"the residue verdict alone must fail this run: {others}"
    meta = json.loads((result.run_dir / "run.json").read_text())
    offline = judge(result.run_dir, meta, "http://127.0.0.1:1", live=False)
    assert next(v for v in offline.verdicts if v.slo == "residue").as_dict() == verdict  # kept in the run directory
    found = _cleanup(stack)
    assert found.returncode == 1, found.stdout + found.stderr  # a leftover in toxiproxy: this library's to own
    assert f"toxic {TOXIC}" in found.stdout and "sleep 600" in found.stdout, found.stdout


def test_cleanup_says_nothing_to_do_once_the_leftovers_are_gone(stack: LocalStack) -> None:
    found = _cleanup(stack)
    assert found.returncode == 0, found.stdout + found.stderr
    assert "nothing to do" in found.stdout, found.stdout


def test_a_run_does_not_start_on_a_target_carrying_the_librarys_leftovers(stack: LocalStack, tmp_path: Path) -> None:
    """A toxic named like this library's (a run killed before its journal entry was written, an old version...)."""
    url = f"{stack.endpoints.toxiproxy_url}/proxies/kafka/toxics"
    requests.post(url, json={"name": "chaos-partition-upstream", "type": "timeout", "stream": "upstream",
                             "toxicity": 1.0, "attributes": {"timeout": 0}}, timeout=5).raise_for_status()
    entries = len(list(_state().rglob("faults/*.json"))) if _state().exists() else 0
    try:
        cli = subprocess.run([sys.executable, "-m", "resilience.cli", "run", "pod_failure", "--port-base",
                              str(stack.endpoints.port_base), "--data-dir", str(stack.data_dir), "--reports-dir",
                              str(tmp_path / "reports")], capture_output=True, text=True, timeout=300, cwd=str(REPO))
    finally:
        requests.delete(f"{url}/chaos-partition-upstream", timeout=5)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "not at rest before the run" in cli.stderr and "chaos-partition-upstream" in cli.stderr, cli.stderr
    assert "nothing was injected" in cli.stderr
    assert (len(list(_state().rglob("faults/*.json"))) if _state().exists() else 0) == entries
