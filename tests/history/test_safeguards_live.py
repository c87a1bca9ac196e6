"""Safeguards and the kill switch against the real local stack (markers stack, slow).

- A ClickHouse partition that takes every replica out of service, in an experiment that promises to
  keep availability: the burn-rate safeguard aborts it, every fault is reverted within 5 s of the
  breach (the breach timed independently, from Prometheus, after the fact), the toxics are gone and
  the verdict says "aborted by safeguard" with the rule and the value.
- `resilience halt` during a long partition: healed within 5 s, a new `run` refused (exit 2, message)
  until `resilience resume`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from faults import journal, killswitch
from probes import prom
from probes.burnrate import burn_rules
from probes.slo import load_catalogue
from resilience.runner import RunOptions, run
from stack.core import LocalStack
from target.settings import resolve
from tests.history.live import partition_experiment

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def _toxics(stack: LocalStack, edge: str = "clickhouse") -> list[str]:
    proxy = requests.get(f"{stack.endpoints.toxiproxy_url}/proxies/{edge}", timeout=5).json()
    return [t["name"] for t in proxy.get("toxics", [])] + ([] if proxy.get("enabled", True) else ["<disabled>"])


def _state_dir() -> Path:
    return resolve({}).fault_state_dir


@pytest.fixture
def history_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RESILIENCE_HISTORY_URL", f"sqlite:///{tmp_path / 'history.sqlite'}")
    yield


@pytest.mark.extended
def test_a_fault_breaking_availability_is_aborted_by_the_safeguard_within_5_s(
        stack: LocalStack, tmp_path: Path, history_env: None) -> None:
    exp = partition_experiment(tmp_path / "exp", judge_availability=True)
    t0 = time.time()
    result = run(RunOptions(experiment=str(exp), port_base=stack.endpoints.port_base, data_dir=stack.data_dir,
                            reports_dir=tmp_path / "reports", rate=100))
    took = time.time() - t0
    verdicts = {v["slo"]: v for v in result.summary["verdicts"]}
    assert "safeguard" in verdicts, json.dumps(result.summary["verdicts"], indent=1)
    sg = verdicts["safeguard"]
    assert sg["outcome"] == "fail" and result.exit_code == 1
    assert sg["reason"].startswith("aborted by safeguard: availability budget (0.1) burning ≥ ")
    assert " = " in sg["reason"]
    assert sg["measured"] >= 6.0
    # the method was cut short (60 s partition + 45 s pause) and every rollback ran
    j = json.loads((result.run_dir / "journal.json").read_text())
    assert j["status"] == "interrupted"
    assert [r["activity"]["name"] for r in j["rollbacks"]] == ["heal-clickhouse-partition", "stop-load-if-running"]
    assert all(r["status"] == "succeeded" for r in j["rollbacks"])
    run_id = json.loads((result.run_dir / "run.json").read_text())["run_id"]
    entries = journal.entries(_state_dir(), run_id)
    assert entries and all(e["status"] == "reverted" for _, e in entries), [e["status"] for _, e in entries]
    assert _toxics(stack) == []
    # the breach, timed independently: the first instant at which the rule held, read back from Prometheus
    stop = json.loads((result.run_dir / "safeguard.json").read_text())
    cat = load_catalogue()
    rules = burn_rules(cat, cat.view("local"), ["availability"])
    rule = next(r for r in rules if r.factor == stop["details"]["factor"])
    fault_start = float(entries[0][1]["created_at"])
    since = float(stop["details"]["since"])
    url = stack.endpoints.prometheus_url

    def holds(t: float) -> bool:
        return (prom.instant(url, rule.query(rule.long_s, since, t), at=t) >= rule.factor
                and prom.instant(url, rule.query(rule.short_s, since, t), at=t) >= rule.factor)

    breach = next(t for t in (fault_start + i / 4 for i in range(4 * 40)) if holds(t))
    reverted = max(float(e["reverted_at"]) for _, e in entries)
    print(f"\nsafeguard: fault at +0, breach at +{breach - fault_start:.2f} s, seen at "
          f"+{stop['detected_at'] - fault_start:.2f} s, interrupted at +{stop['interrupted_at'] - fault_start:.2f} s, "
          f"every fault reverted at +{reverted - fault_start:.2f} s: {reverted - breach:.2f} s after the breach; "
          f"run {took:.0f} s instead of about 130 s")
    assert reverted - breach <= 5.0, (breach, reverted)
    rows = result.summary["history"]
    assert rows["recorded"] is True


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "resilience.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


@pytest.mark.extended
def test_halt_heals_a_partition_within_5_s_and_refuses_runs_until_resume(
        stack: LocalStack, tmp_path: Path, history_env: None) -> None:
    exp = partition_experiment(tmp_path / "exp", judge_availability=False, partition_s=90, after_s=60, load_s=100)
    where = ["--port-base", str(stack.endpoints.port_base), "--data-dir", str(stack.data_dir)]
    proc = subprocess.Popen([sys.executable, "-m", "resilience.cli", "run", str(exp), *where, "--rate", "100",
                             "--reports-dir", str(tmp_path / "reports")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        active: list[tuple[Path, dict[str, object]]] = []
        while time.monotonic() < deadline and not active:
            active = [(p, e) for p, e in journal.open_entries(_state_dir(), port_base=stack.endpoints.port_base)
                      if e.get("status") == "active" and "partition" in str(e.get("action"))]
            time.sleep(0.2)
        assert active, "the partition never became active:\n" + "".join(output)
        assert _toxics(stack), "no toxic while the partition is active"
        time.sleep(3)
        halted = _cli("halt", "--reason", "test: incident in progress", "--wait", "20")
        assert halted.returncode == 0, halted.stdout + halted.stderr
        switch = killswitch.local_status(_state_dir())
        assert switch is not None and switch.at is not None
        t_halt = switch.at
        path = active[0][0]
        entry = journal.read(path) or {}
        assert entry.get("status") == "reverted", entry
        healed_after = float(str(entry["reverted_at"])) - t_halt
        assert _toxics(stack) == []
        refused = _cli("run", "pod_failure", *where)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "halted by the kill switch" in refused.stderr and "test: incident in progress" in refused.stderr
        assert "resilience resume" in refused.stderr and "nothing was injected" in refused.stderr
        code = proc.wait(timeout=300)
    finally:
        _cli("resume")
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"\nhalt: partition healed {healed_after:.2f} s after the kill switch was set; run exit {code}")
    assert healed_after <= 5.0
    assert code == 2, "".join(output)
    assert "kill_switch" in "".join(output) and "halted by the kill switch" in "".join(output)
    after = _cli("run", "pod_failure", *where, "--abort-if", "{no_such_measure} > 1")
    assert after.returncode == 2 and "halted" not in after.stderr, after.stderr
    assert "no_such_measure not a measure" in after.stderr


def test_the_watchdog_reverts_a_fault_and_the_engine_refuses_new_ones_while_halted(
        stack: LocalStack, tmp_path: Path) -> None:
    """Even with no safeguard control at all (a stuck runner, a bare `chaos run`): the run's watchdog sees the
    kill switch on its next round and reverts the fault, and no new fault can be injected."""
    from chaoslib.exceptions import ActivityFailed

    from faults import network_partition
    from faults.cleanup import cleanup

    state = tmp_path / "journal"
    cfg = {"stack_port_base": stack.endpoints.port_base, "stack_data_dir": str(stack.data_dir),
           "fault_state_dir": str(state), "run_id": "halt-watchdog", "heartbeat_timeout": 30}
    settings = resolve(cfg)
    try:
        network_partition.partition_network("clickhouse", duration=120, configuration=cfg)
        assert _toxics(stack)
        killswitch.halt(settings, "test: watchdog path")
        t0 = time.monotonic()
        while journal.open_entries(state) and time.monotonic() - t0 < 10:
            time.sleep(0.1)
        took = time.monotonic() - t0
        # the undo closes the entry as "remove_partition (pid <watchdog>)" first, then the watchdog signs it
        deadline = time.monotonic() + 5
        while "kill switch" not in str(journal.entries(state)[0][1].get("reverted_by")) and time.monotonic() < deadline:
            time.sleep(0.1)
        [(_, entry)] = journal.entries(state)
        assert entry["status"] == "reverted" and "kill switch" in str(entry.get("reverted_by")), entry
        assert _toxics(stack) == []
        print(f"\nwatchdog: partition reverted {took:.2f} s after the kill switch, by {entry['reverted_by']}")
        # a backstop for a stuck runner (the control path is the one held to 5 s): one round a second, plus a
        # Python process importing the fault's module on a loaded machine (1.2 to 6.6 s measured)
        assert took <= 10.0
        with pytest.raises(ActivityFailed, match="refused: halted by the kill switch"):
            network_partition.partition_network("clickhouse", duration=10, configuration=cfg)
        assert len(journal.entries(state)) == 1, "a refused fault must not even be journaled"
    finally:
        killswitch.resume(settings)
        cleanup(state)
