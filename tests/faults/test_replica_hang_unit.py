"""The hang fault's rollback is pid-safe and idempotent: real stopped processes, no stack.

A hang records each frozen replica's pid and start time. Once the liveness prober has restarted a replica,
its hung pid is gone (or, later, reused by another process): the rollback must then signal nothing and say
the replica was restarted, and a second rollback must be as harmless as the first. Here the "replicas" are
``sleep`` processes in sessions of their own (process-group leaders, as supervisord makes its programs),
and the stack the journal entries name is not running, so only the recorded pids are considered.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

from faults import journal, replica_hang
from target.settings import resolve

PORT_BASE = 23940  # nothing runs there: the stack is "not running", only the journal's pids count


@pytest.fixture
def configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for var in ("RESILIENCE_TARGET_CONFIG", "RESILIENCE_STATE_DIR", "RESILIENCE_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    return {"fault_state_dir": str(tmp_path / "journal"), "run_id": "hang-test", "watchdog": False,
            "stack_port_base": PORT_BASE, "stack_data_dir": str(tmp_path / "stack")}


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two stopped ``sleep`` processes, killed at the end whatever happened."""
    procs = [subprocess.Popen(["sleep", "120"], start_new_session=True) for _ in range(2)]
    for p in procs:
        p.send_signal(signal.SIGSTOP)
    for p in procs:
        deadline = time.monotonic() + 5
        while psutil.Process(p.pid).status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
            time.sleep(0.01)
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait(5)


def _journal_hang(configuration: dict[str, Any], pids: dict[str, int], times: dict[str, float]) -> Path:
    settings = resolve(configuration)
    undo = {"activity": "faults.replica_hang.resume_replicas", "arguments": {"group": "audit-service"}}
    path, _ = journal.new_entry(settings, "faults.replica_hang.hang_replicas", {"group": "audit-service"}, undo,
                                None, {})
    journal.update(path, status="active", details={"hung": sorted(pids), "pids": pids, "create_times": times})
    return path


def test_resume_continues_the_process_still_hung_and_leaves_a_restarted_ones_pid_alone(
        configuration: dict[str, Any], stopped: list[subprocess.Popen[bytes]]) -> None:
    still_hung, reused = stopped
    gone = subprocess.Popen(["true"])
    gone.wait(5)
    pids = {"audit-service-0": still_hung.pid, "audit-service-1": reused.pid, "audit-service-2": gone.pid}
    times = {"audit-service-0": psutil.Process(still_hung.pid).create_time(),
             # the pid now belongs to another process (a later start time): the hung one was restarted
             "audit-service-1": psutil.Process(reused.pid).create_time() - 100.0,
             "audit-service-2": time.time() - 50}
    path = _journal_hang(configuration, pids, times)

    out = replica_hang.resume_replicas(configuration=configuration)

    assert out["details"]["resumed"] == [still_hung.pid]
    assert out["details"]["restarted"] == ["audit-service-1", "audit-service-2"]
    assert psutil.Process(still_hung.pid).status() != psutil.STATUS_STOPPED
    assert psutil.Process(reused.pid).status() == psutil.STATUS_STOPPED, "signalled a process the hang never stopped"
    assert out["reverted_entries"] == [journal.read(path)["id"]]  # type: ignore[index]
    # idempotent: a second rollback (the watchdog, cleanup) finds nothing to do and fails nothing
    again = replica_hang.resume_replicas(configuration=configuration)
    assert again["details"]["resumed"] == [] and again["reverted_entries"] == []
    assert psutil.Process(reused.pid).status() == psutil.STATUS_STOPPED


def test_dry_run_plans_without_signalling(configuration: dict[str, Any],
                                          stopped: list[subprocess.Popen[bytes]]) -> None:
    proc = stopped[0]
    _journal_hang(configuration, {"audit-service-0": proc.pid},
                  {"audit-service-0": psutil.Process(proc.pid).create_time()})
    out = replica_hang.resume_replicas(configuration={**configuration, "dry_run": True})
    assert out["dry_run"] and str(proc.pid) in out["plan"]["would"]
    assert psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({}, "give exactly one of count or percentage"),
    ({"count": 1, "percentage": 50}, "give exactly one of count or percentage"),
    ({"count": 0}, "count"),
    ({"count": 1, "duration": -1}, "duration"),
])
def test_bad_arguments_are_refused_before_anything(configuration: dict[str, Any], kwargs: dict[str, Any],
                                                   problem: str) -> None:
    from chaoslib.exceptions import ActivityFailed

    with pytest.raises(ActivityFailed, match=problem):
        replica_hang.hang_replicas(**kwargs, configuration=configuration)
    assert journal.entries(Path(configuration["fault_state_dir"])) == []


def test_hang_on_a_stack_that_is_not_running_says_so(configuration: dict[str, Any]) -> None:
    from chaoslib.exceptions import ActivityFailed

    with pytest.raises(ActivityFailed, match="not running"):
        replica_hang.hang_replicas(count=1, configuration=configuration)


class _FakePrograms:
    """supervisord's view of a group of three replicas, whose pids are real processes of the test."""

    members: ClassVar[list[dict[str, Any]]] = []
    where = "fake supervisord"

    def __init__(self, settings: Any) -> None:
        pass

    def require_running(self, what: str) -> None:
        pass

    def group(self, group: str, what: str) -> list[dict[str, Any]]:
        return self.members


@pytest.mark.parametrize(("kwargs", "extra", "problem"), [
    ({"count": 3}, {}, "blast radius: 3 of 3 exceeds the limit of 2"),
    ({"percentage": 100}, {}, "blast radius: 3 of 3 exceeds the limit of 2"),
    ({"count": 2}, {"max_replicas_killed": 1}, "exceeds the limit of 1"),
    ({"count": 2, "stopped": True}, {}, "would leave none"),
    ({"count": 3, "allow_all": True, "stopped": True}, {}, "3 requested but only 2 RUNNING and not stopped"),
])
def test_blast_radius_counts_only_replicas_still_answering(
        configuration: dict[str, Any], monkeypatch: pytest.MonkeyPatch, stopped: list[subprocess.Popen[bytes]],
        kwargs: dict[str, Any], extra: dict[str, Any], problem: str) -> None:
    from chaoslib.exceptions import ActivityFailed

    from faults.local import replica_hang as backend

    one_stopped = kwargs.pop("stopped", False)
    running = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        pids = [stopped[0].pid if one_stopped else running.pid, running.pid, running.pid]
        _FakePrograms.members = [{"name": f"audit-service-{i}", "statename": "RUNNING", "pid": pid}
                                 for i, pid in enumerate(pids)]
        monkeypatch.setattr(backend, "Programs", _FakePrograms)
        with pytest.raises(ActivityFailed, match=problem):
            replica_hang.hang_replicas(**kwargs, configuration={**configuration, **extra})
        assert journal.entries(Path(configuration["fault_state_dir"])) == []
        plan = replica_hang.hang_replicas(count=1, configuration={**configuration, "dry_run": True})
        assert "SIGSTOP 1 of" in plan["plan"]["would"]
    finally:
        running.kill()
        running.wait(5)
