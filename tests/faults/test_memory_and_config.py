"""The OOM and configuration-change faults, on the real stack: injected, observed, reverted to baseline.

The ``config`` fixture (conftest.py) gives each test its own journal and run, and checks the
stack is back at its baseline afterwards whatever happened.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from chaoslib.exceptions import ActivityFailed

from faults import checker_config as config_fault
from faults import journal, memory
from stack.components.audit_service import checkers_file
from stack.core import LocalStack

pytestmark = pytest.mark.stack


def _configprops(stack: LocalStack, i: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{stack.endpoints.replica_port(i)}/actuator/configprops"
    return requests.get(url, timeout=5).json()  # type: ignore[no-any-return]


def test_oom_kill_is_a_real_kernel_oom_and_is_reverted(stack: LocalStack, config: dict[str, Any]) -> None:
    before = {n: i["pid"] for n, i in stack.supervisor.process_info().items() if n.startswith("audit-service")}
    out = memory.oom_kill_replica(limit_mb=32, configuration=config)
    d = out["details"]
    assert d["oom_kills"] is None or d["oom_kills"] >= 1, d  # the kernel's own count, where it reports one
    assert d["pid"] == before[d["program"]], "the killed pid should be the replica's"
    assert Path(d["cgroup"]).exists(), "the limit stays until the remove"
    removed = memory.release_memory_limit(configuration=config)
    assert not Path(d["cgroup"]).exists()
    assert removed["reverted_entries"] == [out["fault_id"]]
    after = stack.supervisor.process_info()
    assert after[d["program"]]["pid"] != d["pid"] and after[d["program"]]["statename"] == "RUNNING"
    entries = journal.entries(Path(config["fault_state_dir"]), config["run_id"])
    assert [e["status"] for _, e in entries] == ["reverted"]


def test_release_memory_limit_is_idempotent(config: dict[str, Any]) -> None:
    first = memory.release_memory_limit(configuration=config)
    second = memory.release_memory_limit(configuration=config)
    assert "no limit was set" in first["details"]["changed"] and "no limit was set" in second["details"]["changed"]


def test_config_change_takes_effect_on_every_replica_and_is_restored(stack: LocalStack,
                                                                      config: dict[str, Any]) -> None:
    path = checkers_file(stack.ctx)
    original = path.read_text()
    old = _configprops(stack, 0)["checkers"]["slow_query"]["threshold_ms"]
    try:
        out = config_fault.change_checker_threshold("slow_query", "threshold_ms", old + 2345, configuration=config)
        assert out["details"]["restarted"] == ["audit-service-0", "audit-service-1", "audit-service-2"]
        assert [_configprops(stack, i)["checkers"]["slow_query"]["threshold_ms"] for i in range(3)] == [old + 2345] * 3
    finally:
        config_fault.restore_checker_config(configuration=config)
    assert path.read_text() == original
    assert [_configprops(stack, i)["checkers"]["slow_query"]["threshold_ms"] for i in range(3)] == [old] * 3
    assert config_fault.restore_checker_config(configuration=config)["details"]["changed"].startswith("nothing")


@pytest.mark.extended
def test_a_retried_revert_does_not_restart_a_replica_already_on_the_restored_file(
        stack: LocalStack, config: dict[str, Any]) -> None:
    """A revert cut short (a Spring replica slower to start than the wait, here: a revert interrupted after
    its first restart) is retried by the runner, the cleanup or the watchdog: the retry must converge, not
    restart again the replica that is already starting with the restored file. Fails if every retry rolls
    every replica (seen on the Spring stack: audit-service-0 restarted by each attempt, never ready)."""
    path = checkers_file(stack.ctx)
    original = path.read_text()
    old = _configprops(stack, 0)["checkers"]["slow_query"]["threshold_ms"]
    try:
        config_fault.change_checker_threshold("slow_query", "threshold_ms", old + 1111, configuration=config)
        # the first attempt of a revert: the file put back, replica 0 restarted with it, then cut short
        path.write_text(original)
        time.sleep(1.1)  # supervisord's start times are whole seconds: a restart in the same second is not "after"
        stack.supervisor.stop("audit-service-0", 60)
        stack.supervisor.ensure_running("audit-service-0", 60)
        before = {n: i["pid"] for n, i in stack.supervisor.process_info().items() if n.startswith("audit-service")}
        out = config_fault.restore_checker_config(configuration=config)
        after = {n: i["pid"] for n, i in stack.supervisor.process_info().items() if n.startswith("audit-service")}
        assert after["audit-service-0"] == before["audit-service-0"], "a retry restarted a replica on the file"
        assert after["audit-service-1"] != before["audit-service-1"] and after["audit-service-2"] != before[
            "audit-service-2"], "replicas still on the changed file were not restarted"
        assert out["details"]["restarted"] == ["audit-service-0", "audit-service-1", "audit-service-2"]
    finally:
        config_fault.restore_checker_config(configuration=config)
    assert path.read_text() == original
    assert [_configprops(stack, i)["checkers"]["slow_query"]["threshold_ms"] for i in range(3)] == [old] * 3


@pytest.mark.parametrize("args, match", [
    ({"checker": "nope", "field": "threshold_ms", "value": 1}, "no checker 'nope'"),
    ({"checker": "slow_query", "field": "colour", "value": 1}, "no numeric field 'colour'"),
    ({"checker": "slow_query", "field": "threshold_ms", "value": -5}, "the service would refuse -5"),
    ({"checker": "slow_query", "field": "threshold_ms", "value": 2.5}, "is an integer; value=2.5 is not"),
])
def test_bad_config_change_is_refused_and_nothing_changes(stack: LocalStack, config: dict[str, Any],
                                                          args: dict[str, Any], match: str) -> None:
    path = checkers_file(stack.ctx)
    original = path.read_text()
    pids = {n: i["pid"] for n, i in stack.supervisor.process_info().items()}
    with pytest.raises(ActivityFailed, match=match):
        config_fault.change_checker_threshold(**args, configuration=config)
    assert path.read_text() == original
    assert {n: i["pid"] for n, i in stack.supervisor.process_info().items()} == pids
    assert journal.entries(Path(config["fault_state_dir"]), config["run_id"]) == []
