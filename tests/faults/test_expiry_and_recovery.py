"""Faults expire by themselves; a killed runner's faults are undone by cleanup and by the watchdog."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from click.testing import CliRunner

from faults import clickhouse_stall, journal, network_latency, network_partition, postgres_failover
from faults.cli import cleanup_command
from stack.core import LocalStack
from tests.faults.conftest import wait_baseline, wait_no_helpers

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]


def _toxics(stack: LocalStack, edge: str) -> list[str]:
    return [t["name"] for t in requests.get(f"{stack.endpoints.toxiproxy_url}/proxies/{edge}",
                                            timeout=5).json()["toxics"]]


def _wait(predicate: Any, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - t0


def test_partition_expires_by_itself(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    result = network_partition.partition_network("kafka", duration=2, configuration=config)
    assert _toxics(stack, "kafka")
    waited = _wait(lambda: not _toxics(stack, "kafka"), 10, "partition expiry")
    assert waited >= 1.0  # not removed early
    # The timer removes the toxics, then closes the journal entry: give it that moment.
    _wait(lambda: (journal.read(Path(result["journal"])) or {}).get("status") == "reverted", 10,
          "journal entry closed at expiry")
    wait_no_helpers(state_dir)


def test_clickhouse_stall_expires_by_itself(stack: LocalStack, config: dict[str, Any]) -> None:
    result = clickhouse_stall.stall_clickhouse(2, configuration=config)
    proc = psutil.Process(result["details"]["pid"])
    assert proc.status() == psutil.STATUS_STOPPED
    _wait(lambda: proc.status() != psutil.STATUS_STOPPED, 10, "SIGCONT at expiry")


def test_postgres_stop_expires_by_itself(stack: LocalStack, config: dict[str, Any]) -> None:
    postgres_failover.fail_over_postgres("stop", 2, configuration=config)
    assert stack.supervisor.process_info()["postgres"]["statename"] == "STOPPED"
    _wait(lambda: stack.supervisor.process_info()["postgres"]["statename"] == "RUNNING", 30, "postgres restart")
    wait_baseline(stack, 60)


RUNNER = textwrap.dedent("""
    import json, sys, time
    from faults import network_partition
    cfg = json.loads(sys.argv[1])
    network_partition.partition_network("postgres", configuration=cfg)
    print("injected", flush=True)
    time.sleep(600)
""")


def _start_runner(config: dict[str, Any]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(config)], stdout=subprocess.PIPE, text=True,
                            cwd=str(REPO))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "injected", f"runner did not inject (rc {proc.poll()})"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_cleanup_undoes_what_a_killed_runner_left(stack: LocalStack, config: dict[str, Any],
                                                  state_dir: Path) -> None:
    cfg = {**config, "watchdog": False}
    runner = _start_runner(cfg)
    try:
        _kill(runner)
        time.sleep(cfg["heartbeat_timeout"] + 1)  # no watchdog: nothing heals it by itself
        assert _toxics(stack, "postgres")
        result = CliRunner().invoke(cleanup_command, ["--run", cfg["run_id"], "--port-base",
                                                      str(stack.endpoints.port_base), "--state-dir", str(state_dir)])
        assert result.exit_code == 0, result.output
        assert "reverted" in result.output and "network_partition" in result.output
        assert _toxics(stack, "postgres") == []
        assert [e["status"] for _, e in journal.entries(state_dir)] == ["reverted"]
        again = CliRunner().invoke(cleanup_command, ["--all", "--state-dir", str(state_dir)])
        assert again.exit_code == 0 and "no open faults" in again.output
    finally:
        if runner.poll() is None:
            _kill(runner)


def test_cleanup_filters_by_port_base(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    network_partition.partition_network("kafka", configuration={**config, "watchdog": False})
    other = CliRunner().invoke(cleanup_command, ["--port-base", str(stack.endpoints.port_base + 40),
                                                 "--state-dir", str(state_dir)])
    assert other.exit_code == 0 and "no open faults" in other.output
    assert _toxics(stack, "kafka")
    mine = CliRunner().invoke(cleanup_command, ["--port-base", str(stack.endpoints.port_base),
                                                "--state-dir", str(state_dir)])
    assert mine.exit_code == 0 and _toxics(stack, "kafka") == []


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGSTOP"])
def test_watchdog_reverts_a_dead_or_hung_runners_faults_in_bounded_time(stack: LocalStack, config: dict[str, Any],
                                                                        state_dir: Path, sig: str) -> None:
    """A dead runner (SIGKILL: its pid is gone) is seen at the next poll; a hung one (SIGSTOP: alive, not
    beating) when its heartbeat is ``heartbeat_timeout`` old, and not before."""
    timeout = float(config["heartbeat_timeout"])
    runner = _start_runner(config)
    try:
        time.sleep(timeout + 1)  # a live runner keeps beating: the watchdog leaves its fault alone
        assert _toxics(stack, "postgres"), "watchdog reverted a fault of a live runner"
        runner.send_signal(getattr(signal, sig))
        waited = _wait(lambda: not _toxics(stack, "postgres"), timeout + 10, "watchdog revert")
        print(f"\nwatchdog healed the partition {waited:.2f} s after {sig} of the runner "
              f"(heartbeat timeout {timeout:g} s)")
        if sig == "SIGSTOP":
            assert waited >= timeout - 2.5  # it waited for the heartbeat to go stale, not less
        # The toxics go first, then the entry is closed with the watchdog's own reason (the undo it ran closes it
        # as its caller, journal.reverting_as: before that, a CI run read the undo's name between two writes,
        # 2026-12-01); it exits once nothing is open.
        _wait(lambda: [e["status"] for _, e in journal.entries(state_dir)] == ["reverted"], 10,
              "journal entry closed by the watchdog")
        wait_no_helpers(state_dir, 10)  # the watchdog exits once nothing is open
        by = journal.entries(state_dir)[0][1]["reverted_by"]
        assert "watchdog" in by and ("runner gone" if sig == "SIGKILL" else "heartbeat") in by, by
    finally:
        if runner.poll() is None:
            _kill(runner)


def test_cleanup_dry_run_lists_and_changes_nothing(stack: LocalStack, config: dict[str, Any],
                                                   state_dir: Path) -> None:
    network_latency.add_latency("clickhouse", 50, configuration={**config, "watchdog": False})
    result = CliRunner().invoke(cleanup_command, ["--dry-run", "--json", "--port-base", str(stack.endpoints.port_base),
                                                  "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["reverted"]
    assert [r["fault"] for r in listed] == ["network_latency"]
    assert "remove_latency" in listed[0]["detail"]
    assert _toxics(stack, "clickhouse") == ["chaos-latency-downstream"]
    assert [e["status"] for _, e in journal.entries(state_dir)] == ["active"]
