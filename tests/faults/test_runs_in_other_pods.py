"""A run recorded by a runner in another pod: its pid means nothing here, its heartbeat tells (no stack needed).

Runner pods share the fault journal on one volume (deploy/k8s/base). A runner in another pod records its pid in
its own pid namespace (often 1), so a cleanup container looking that pid up in its own namespace finds some other
process, or none, and would revert a live run's faults. Every pid is recorded with its pid namespace; an owner
in another one is judged by the run's heartbeat alone, and ``cleanup --dead-only`` (the runner pods' cleanup
container) leaves a run at work alone and exits 3.
"""

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from faults import companions, journal
from faults.cli import cleanup_command
from target.settings import resolve

UNDO = {"activity": "faults.network_partition.remove_partition", "arguments": {"edge": "clickhouse"}}
OTHER_POD = "pid:[4026599999]"
TIMEOUT = 0.5  # the run's heartbeat timeout: the waits of --dead-only are twice it


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RESILIENCE_TARGET_CONFIG", "RESILIENCE_STATE_DIR", "RESILIENCE_RUN_ID", "KUBECONFIG",
                "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)


def _dead_pid() -> int:
    """A pid no process has here now (a child that ended and was reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _record(state: Path, run_id: str, pid_ns: str | None) -> None:
    """A run with one open partition on a kubernetes namespace, as a runner in another pod (``pid_ns``) or this
    one (``None``: our own pid and namespace) journals it."""
    settings = resolve({"fault_state_dir": str(state), "run_id": run_id, "target": "kubernetes",
                        "k8s_namespace": "sql-audit", "heartbeat_timeout": TIMEOUT, "watchdog": False})
    path, _ = journal.new_entry(settings, "faults.network_partition.partition_network", {"edge": "clickhouse"},
                                UNDO, None, {})
    journal.update(path, status="active")
    if pid_ns is None:
        return
    pid = _dead_pid()  # its pid as seen from here: nobody (it could as well be someone else)
    meta = journal.run_dir(state, run_id) / "run.json"
    for record in (meta, path):
        doc = json.loads(record.read_text())
        doc.update(pid=pid, pid_started=None, pid_ns=pid_ns)
        record.write_text(json.dumps(doc))


@contextlib.contextmanager
def _beating(state: Path, run_id: str) -> Iterator[None]:
    """Run ``run_id``'s heartbeat kept fresh within (its runner at work)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(0.05):
            journal.touch_heartbeat(state, run_id)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def beating(tmp_path: Path) -> Iterator[Path]:
    """A journal whose run ``pod-a`` keeps a fresh heartbeat (its runner, in another pod, at work)."""
    state = tmp_path / "journal"
    _record(state, "pod-a", OTHER_POD)
    with _beating(state, "pod-a"):
        yield state


def _stale(state: Path, run_id: str) -> None:
    old = time.time() - 60
    os.utime(journal.heartbeat_path(state, run_id), (old, old))


def cleanup(state: Path, *args: str) -> Result:
    return CliRunner().invoke(cleanup_command, ["--all", *args, "--state-dir", str(state)])


def test_every_pid_is_journaled_with_its_pid_namespace(tmp_path: Path) -> None:
    _record(tmp_path, "here", None)
    meta = journal.run_meta(tmp_path, "here")
    [(_, entry)] = journal.open_entries(tmp_path, "here")
    assert meta["pid_ns"] == entry["pid_ns"] == os.readlink("/proc/self/ns/pid")


def test_an_owner_in_another_pid_namespace_lives_by_the_runs_heartbeat(beating: Path) -> None:
    [owner] = companions.owners(beating, "pod-a")
    assert owner.foreign and not owner.alive()  # its pid is nobody here, and that says nothing
    assert companions.why_dead(beating, "pod-a", TIMEOUT) is None


def test_an_owner_in_another_pid_namespace_is_dead_once_its_heartbeat_is_stale(tmp_path: Path) -> None:
    _record(tmp_path, "pod-a", OTHER_POD)
    _stale(tmp_path, "pod-a")
    assert "heartbeat" in str(companions.why_dead(tmp_path, "pod-a", TIMEOUT))


def test_dead_only_leaves_a_run_at_work_in_another_pod_alone_and_exits_3(beating: Path,
                                                                          reverted: list[str]) -> None:
    result = cleanup(beating, "--dead-only")
    assert result.exit_code == 3, result.output
    assert "AT WORK" in result.output and "run pod-a" in result.output
    assert "another pid namespace" in result.output
    assert reverted == []
    assert [e["run_id"] for _, e in journal.open_entries(beating)] == ["pod-a"]


def test_dead_only_reverts_a_run_whose_pod_stopped_beating(tmp_path: Path, reverted: list[str]) -> None:
    _record(tmp_path, "pod-a", OTHER_POD)
    _stale(tmp_path, "pod-a")
    result = cleanup(tmp_path, "--dead-only")
    assert result.exit_code == 0, result.output
    assert reverted == ["pod-a"]


def test_dead_only_waits_for_a_heartbeat_that_just_stopped(tmp_path: Path, reverted: list[str]) -> None:
    """The runner pod was killed a moment ago: its heartbeat is still fresh, and goes stale within the wait."""
    _record(tmp_path, "pod-a", OTHER_POD)
    journal.touch_heartbeat(tmp_path, "pod-a")  # fresh when the cleanup starts: reverted only if it waited
    result = cleanup(tmp_path, "--dead-only")
    assert result.exit_code == 0, result.output
    assert reverted == ["pod-a"]


def test_dead_only_spares_a_live_run_of_this_namespace_too(tmp_path: Path, reverted: list[str]) -> None:
    _record(tmp_path, "here", None)  # our own pid: alive; heartbeat written by new_entry, fresh for TIMEOUT
    with _beating(tmp_path, "here"):
        assert cleanup(tmp_path, "--dead-only").exit_code == 3
        assert reverted == []


def test_without_dead_only_cleanup_reverts_what_it_is_told_as_before(beating: Path, reverted: list[str]) -> None:
    """A person's explicit `cleanup --all` still reverts everything in scope (the runner pods pass --dead-only)."""
    result = cleanup(beating)
    assert result.exit_code == 0, result.output
    assert reverted == ["pod-a"]
