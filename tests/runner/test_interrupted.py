"""The real `resilience run` interrupted while a lasting fault is active: SIGINT, SIGTERM, SIGKILL.

Each case runs a copy of a catalogue experiment whose fault lasts 15 minutes (and whose load would
too) as a subprocess, waits until the fault is journaled ``active``, and sends the signal:

* SIGINT (to the runner's process group, as Ctrl-C does) and SIGTERM (to the runner, as ``kill``
  or a CI timeout does): the runner's rollbacks revert the fault, it stops its load, audits the
  target and exits; its own ``residue`` verdict must pass;
* SIGKILL: nothing of the runner runs again; its watchdog must see it dead, revert the fault and
  stop its load.

Then the target must be back at the snapshot the test took before the run (the residue diff,
settled) and independently by a direct look (the fault's own effect gone, no Locust producing),
and ``resilience cleanup`` must exit 0 saying "nothing to do". Every case prints its measured
times (signal -> fault reverted, signal -> load gone); they are reported in docs/faults.md, never
asserted beyond the documented bound.

The full matrix is 6 lasting faults x 3 signals. The README's test command runs the ``CI_CASES``, the two
leftovers we fear most: a partition (SIGINT, the rollbacks in the runner's own process, and SIGKILL, its
watchdog) and a stopped process (SIGKILL); the rollback path is the same chaoslib code for every fault.
``-m interrupt_matrix`` (``make test-extended``) runs the other fifteen. The heap fault needs a JVM: its cases
run on a Spring stack (``tests/spring/test_spring_runner_interrupted.py``, the same :func:`interrupt_case`,
all of it extended).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import yaml

from faults import journal, residue
from faults.local.heap import read_markers, status_dir
from resilience.runner import WARM_FILE
from stack.components.audit_service import GROUP as SERVICE_GROUP
from stack.core import LocalStack
from target.settings import resolve

REPO = Path(__file__).resolve().parents[2]
LASTING_S = 900
"""Fault, pause and load durations of the test experiments: far longer than any test."""
WARMUP_S = 8
DETECT_BOUND_S = {"SIGINT": 5.0, "SIGTERM": 5.0, "SIGKILL": 5.0}
"""docs/faults.md: within 5 s of the signal a rollback or the watchdog has undone the fault's effect (the
toxic is gone, SIGCONT sent, the program started, the config file restored)."""
REVERT_BOUND_S = {"network_partition": 10.0, "clickhouse_stall": 10.0, "postgres_stop": 120.0,
                  "config_change": 420.0, "kafka_broker": 120.0, "heap": 10.0}
"""docs/faults.md: the seconds after the signal within which the revert has completed (its own waits:
PostgreSQL and Kafka accept connections again, each replica restarted and ready), on a busy 2-core
machine: the revert's own timeouts (120 s per program) bound it."""


def _locate(doc: dict[str, Any], module: str) -> dict[str, Any]:
    return next(a for a in doc["method"] if a.get("provider", {}).get("module") == module)


# name -> (catalogue experiment, fault module, is the fault still there?)
def _toxics(stack: LocalStack) -> bool:
    proxy = requests.get(f"{stack.endpoints.toxiproxy_url}/proxies/clickhouse", timeout=5).json()
    return bool(proxy["toxics"]) or not proxy["enabled"]


def _stalled(stack: LocalStack) -> bool:
    info = stack.supervisor.info("clickhouse")
    try:
        return psutil.Process(int(info["pid"])).status() == psutil.STATUS_STOPPED
    except psutil.Error:
        return False


def _down(program: str) -> Callable[[LocalStack], bool]:
    def down(stack: LocalStack) -> bool:
        return str(stack.supervisor.info(program)["statename"]) != "RUNNING"

    return down


def _config_changed(stack: LocalStack) -> bool:
    from sqlaudit.config import DEFAULT_CHECKERS_FILE
    from stack.components.audit_service import checkers_file

    return checkers_file(stack.ctx).read_bytes() != DEFAULT_CHECKERS_FILE.read_bytes()


def _heap_held(stack: LocalStack) -> bool:
    return any(m["alive"] for m in read_markers(status_dir(stack.data_dir)).values())


FAULTS: dict[str, tuple[str, str, Callable[[LocalStack], bool]]] = {
    "network_partition": ("clickhouse_partition", "faults.network_partition", _toxics),
    "clickhouse_stall": ("clickhouse_stall", "faults.clickhouse_stall", _stalled),
    "postgres_stop": ("postgres_failure", "faults.postgres_failover", _down("postgres")),
    "config_change": ("config_change", "faults.checker_config", _config_changed),
    "kafka_broker": ("kafka_broker_loss", "faults.kafka_broker", _down("kafka")),
    "heap": ("service_heap_pressure", "faults.heap", _heap_held),
}
JVM_FAULTS = {"heap"}
"""Faults the Python reference service refuses: their cases run on the Spring stack."""

CI_CASES = {("network_partition", "SIGINT"), ("network_partition", "SIGKILL"), ("postgres_stop", "SIGKILL"),
            ("heap", "SIGKILL")}


def lasting_experiment(tmp: Path, fault: str) -> Path:
    """A copy of the fault's catalogue experiment whose fault, pause after it and load last LASTING_S."""
    name, module, _ = FAULTS[fault]
    doc = yaml.safe_load((REPO / "experiments" / f"{name}.yaml").read_text())
    doc["method"][0]["pauses"] = {"after": WARMUP_S}
    action = _locate(doc, module)
    args = action["provider"].setdefault("arguments", {})
    if "duration" in args:
        args["duration"] = LASTING_S
    if module == "faults.heap":  # not the experiment's 0.97: a burst of the service's own allocation can then beat the
        args["fill"] = 0.9       # hog to the last regions and end the JVM (OutOfMemoryError, 2026-12-02, the second
                                 # hold of a session); a case is about the undo, not the fill
    action["pauses"] = {"after": LASTING_S}
    doc["configuration"]["load_duration"]["default"] = str(LASTING_S)
    doc["configuration"]["load_rate"]["default"] = "100"
    doc["title"] = f"{doc['title']} (lasting {LASTING_S} s, for the interruption tests)"
    path = tmp / f"{name}-lasting.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cases(jvm: bool = False) -> Iterator[Any]:
    """The matrix's cases as pytest params: the Python stack's, or (``jvm``) the Spring stack's."""
    for fault in (f for f in FAULTS if (f in JVM_FAULTS) == jvm):
        for sig in ("SIGINT", "SIGTERM", "SIGKILL"):
            marks = [] if (fault, sig) in CI_CASES else [pytest.mark.interrupt_matrix]
            yield pytest.param(fault, sig, id=f"{fault}-{sig}", marks=marks)


def _wait(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.1) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(poll)
    return time.monotonic() - t0


def _active(state: Path) -> list[dict[str, Any]]:
    return [e for _, e in journal.entries(state) if e.get("status") == "active"]


def _failed(state: Path) -> list[str]:
    """Errors of faults that failed to apply (and were undone at once): the case cannot go on."""
    return [str(e.get("error")) for _, e in journal.entries(state) if e.get("status") == "failed"]


def _loads(stack: LocalStack) -> list[psutil.Process]:
    """The Locust processes producing into ``stack``'s Kafka."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any("locust" in a for a in cmd) \
                and stack.endpoints.kafka_bootstrap in cmd:
            found.append(proc)
    return found


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The runner's environment: a private journal (so cleanup and the checks see only this run)."""
    state = tmp_path / "journal"
    environ = {**os.environ, "RESILIENCE_STATE_DIR": str(state), "PYTHONUNBUFFERED": "1"}
    try:
        yield environ
    finally:
        from faults.cleanup import cleanup

        cleanup(state)  # whatever happened, nothing of this test stays on the shared stack
        for proc in psutil.process_iter():  # this run's load: its environment names this journal
            with contextlib.suppress(psutil.Error):
                if proc.environ().get("RESILIENCE_STATE_DIR") == str(state) and "locust" in " ".join(proc.cmdline()):
                    proc.kill()


pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.mark.parametrize(("fault", "sig"), list(cases()))
def test_runner_interrupted_during_a_lasting_fault_leaves_nothing(stack: LocalStack, env: dict[str, str],
                                                                   tmp_path: Path, fault: str, sig: str) -> None:
    interrupt_case(stack, env, tmp_path, fault, sig)


def _marked_warm(stack: LocalStack) -> None:
    """A case is about the undo, not the baseline: mark the replicas warm, so that the runner does not first load
    a JVM service for its JIT's minute (resilience/runner.py, ``_warm_up``; 60 of the Spring case's 100 s)."""
    pids = {c.name: int(info["pid"]) for c in stack.components() if c.group == SERVICE_GROUP
            and (info := stack.supervisor.process_info().get(c.name)) and info.get("pid")}
    (stack.data_dir / WARM_FILE).write_text(json.dumps({"pids": pids, "at": time.time(), "load": "marked by a test"}))


def interrupt_case(stack: LocalStack, env: dict[str, str], tmp_path: Path, fault: str, sig: str) -> None:
    """Run the fault's lasting experiment, send ``sig`` while the fault is active, check that nothing stays."""
    state = Path(env["RESILIENCE_STATE_DIR"])
    cfg = {"stack_port_base": stack.endpoints.port_base, "stack_data_dir": str(stack.data_dir),
           "fault_state_dir": str(state)}
    settings = resolve(cfg)
    _wait(lambda: residue.diff(residue.at_rest(s := residue.snapshot(settings)), s, "at rest").clean, 120,
          "the stack at rest before the run", poll=1.0)
    before = residue.snapshot(settings)
    _, _, effect = FAULTS[fault]
    _marked_warm(stack)
    log = (tmp_path / "runner.out").open("w")
    # Started the way a shell without job control starts a background job (`resilience run ... &` in a script, a CI
    # agent's step): with SIGINT ignored. The CLI restores Ctrl-C's handler (resilience/cli.py main); without
    # that the SIGINT case fails: nothing reverts the fault.
    interrupt_handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    runner = subprocess.Popen([sys.executable, "-m", "resilience.cli", "run", str(lasting_experiment(tmp_path, fault)),
                               "--port-base", str(stack.endpoints.port_base), "--data-dir", str(stack.data_dir),
                               "--reports-dir", str(tmp_path / "reports")],
                              stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO), env=env, start_new_session=True)
    signal.signal(signal.SIGINT, interrupt_handler)
    try:
        _wait(lambda: _active(state) or runner.poll() is not None or _failed(state), 300, "fault journaled active",
              poll=0.2)
        assert runner.poll() is None, f"the runner exited early: {(tmp_path / 'runner.out').read_text()[-3000:]}"
        assert not _failed(state), f"the fault failed: {_failed(state)}"
        assert effect(stack), f"{fault}: journaled active but not in effect"
        assert _loads(stack), "no load running while the fault is active"
        entry = _active(state)[0]
        t0 = time.time()
        if sig == "SIGINT":
            os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's process group
        else:
            runner.send_signal(getattr(signal, sig))
        reverting = _wait(lambda: not effect(stack), DETECT_BOUND_S[sig], f"{fault}: revert started after {sig}")
        path = state / entry["run_id"] / "faults" / f"{entry['id']}.json"
        _wait(lambda: (journal.read(path) or {}).get("status") == "reverted", REVERT_BOUND_S[fault],
              f"{fault}: revert completed after {sig}", poll=0.2)
        closed = journal.read(path) or {}
        load_gone = _wait(lambda: not _loads(stack), 40, f"load stopped after {sig}", poll=0.2) + time.time() - t0
        print(f"\n{fault} {sig}: fault's effect gone {reverting:.2f} s after the signal, revert completed after "
              f"{closed['reverted_at'] - t0:.2f} s (by {closed.get('reverted_by')}); load gone after {load_gone:.2f} s")
        if sig == "SIGKILL":  # the remove closes the entry first, then the watchdog signs it
            _wait(lambda: "watchdog" in str((journal.read(path) or {}).get("reverted_by")), 10,
                  f"entry closed by the watchdog (by {(journal.read(path) or {}).get('reverted_by')})")
        rc = runner.wait(timeout=600)
        if sig != "SIGKILL":
            run_dirs = list((tmp_path / "reports").glob("*"))
            summary = json.loads((run_dirs[0] / "summary.json").read_text())
            verdict = next(v for v in summary["verdicts"] if v["slo"] == "residue")
            assert verdict["outcome"] == "pass", verdict
            assert rc == 2, f"an interrupted run is inconclusive, got {rc}"
        _, audit, waited = residue.settle(settings, before, timeout=90)
        print(f"{fault} {sig}: back at the snapshot from before {time.time() - t0:.1f} s after the signal "
              f"({'; '.join(map(str, audit.notes)) or 'no change'})")
        assert audit.clean, f"not back where it started after {waited:.0f} s more: {audit.describe()}"
        assert not effect(stack)
        cleanup = subprocess.run([sys.executable, "-m", "resilience.cli", "cleanup", "--port-base",
                                  str(stack.endpoints.port_base), "--state-dir", str(state)],
                                 capture_output=True, text=True, timeout=120, cwd=str(REPO), env=env)
        assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
        assert "nothing to do" in cleanup.stdout, cleanup.stdout + cleanup.stderr
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(30)
        log.close()


def test_a_gate_interrupted_stops_after_that_experiments_rollback(stack: LocalStack, env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    """SIGTERM (a CI job's timeout) or Ctrl-C ends the gate, not only the experiment it hit.

    Chaos Toolkit turns the signal into a journal ``interrupted`` and returns after the rollbacks, as for a
    safeguard's abort; a gate on the cluster went on to its next experiment after Ctrl-C and after SIGTERM
    (2026-12-02). The runner now raises it again once the rollbacks ran (resilience/runner.py, ``signals``):
    without that, the second experiment of this gate starts and the test fails on its run directory."""
    state = Path(env["RESILIENCE_STATE_DIR"])
    catalogue = tmp_path / "catalogue"
    catalogue.mkdir()
    lasting_experiment(catalogue, "network_partition")  # clickhouse_partition-lasting.yaml: first by file name
    lasting_experiment(catalogue, "clickhouse_stall")   # clickhouse_stall-lasting.yaml: must never start
    reports = tmp_path / "reports"
    log = (tmp_path / "gate.out").open("w")
    gate = subprocess.Popen([sys.executable, "-m", "resilience.cli", "gate", "--catalogue", str(catalogue),
                             "--port-base", str(stack.endpoints.port_base), "--data-dir", str(stack.data_dir),
                             "--reports-dir", str(reports)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO), env=env, start_new_session=True)
    try:
        _wait(lambda: _active(state) or gate.poll() is not None, 300, "first fault journaled active", poll=0.2)
        assert gate.poll() is None, f"the gate exited early: {(tmp_path / 'gate.out').read_text()[-3000:]}"
        gate.send_signal(signal.SIGTERM)
        rc = gate.wait(timeout=180)
        out = (tmp_path / "gate.out").read_text()
        assert rc == 2, f"an interrupted gate is inconclusive, got {rc}: {out[-3000:]}"
        (gate_dir,) = reports.glob("gate-*")
        runs = [p.name for p in gate_dir.iterdir() if p.is_dir()]
        assert len(runs) == 1 and runs[0].endswith("clickhouse_partition-lasting"), runs
        assert not any("stall" in e.get("fault", "") for _, e in journal.entries(state)), "the second one started"
        junit = (gate_dir / "junit.xml").read_text()
        assert junit.count("<testcase") == 2 and "the gate was interrupted during clickhouse_partition-lasting" in junit
        assert "interrupted" in out and not _toxics(stack)
    finally:
        if gate.poll() is None:
            gate.kill()
            gate.wait(30)
        log.close()
