"""The residue audit counts only the helpers of runs on *this* target.

Stacks side by side on one machine share the fault journal's directory. A watchdog working for a run
on another stack is that stack's business: counting it here failed healthy runs as "left a watchdog
behind" while another stack's run was in its fault window. Remove the target check in
``faults.residue.read_processes`` and ``test_a_helper_of_another_stack_is_not_this_stacks_residue`` fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from faults import journal, residue
from target.settings import resolve


@pytest.fixture
def helpers(tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """A fake ``faults.cli watchdog`` for a run on this stack and one for a run on another stack."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for run_id, port_base in (("ours", 19500), ("theirs", 24000)):
        settings = resolve({"fault_state_dir": str(tmp_path), "run_id": run_id, "stack_port_base": port_base}, {})
        journal.ensure_run(settings)
        procs[run_id] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "faults.cli",
                                          "watchdog", "--run", run_id, str(tmp_path)])
    yield procs
    for proc in procs.values():
        proc.kill()
        proc.wait()


def test_a_helper_of_another_stack_is_not_this_stacks_residue(tmp_path: Path,
                                                             helpers: dict[str, subprocess.Popen[bytes]]) -> None:
    settings = resolve({"fault_state_dir": str(tmp_path), "run_id": "now", "stack_port_base": 19500}, {})
    found = residue.read_processes(settings)["helpers"]
    assert str(helpers["ours"].pid) in found
    assert str(helpers["theirs"].pid) not in found


def test_a_cleanup_naming_the_journal_is_no_helper(tmp_path: Path) -> None:
    """``faults.cli cleanup --state-dir <journal>`` is the one reading it, not a run's helper: in the runner Job's
    cleanup container (pid 1 of its pod, as the dead run's watchdog was in its own) it named itself a leftover and
    failed the Job. Count every ``faults.cli`` again in ``read_processes`` and this test fails."""
    settings = resolve({"fault_state_dir": str(tmp_path), "run_id": "now", "stack_port_base": 19500}, {})
    cleanup = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "faults.cli", "cleanup",
                                "--all", "--state-dir", str(tmp_path), "-v"])
    try:
        assert str(cleanup.pid) not in residue.read_processes(settings)["helpers"]
    finally:
        cleanup.kill()
        cleanup.wait()


def test_the_run_records_which_target_it_acts_on(tmp_path: Path) -> None:
    settings = resolve({"fault_state_dir": str(tmp_path), "run_id": "r1", "stack_port_base": 24000}, {})
    journal.ensure_run(settings)
    assert journal.run_meta(tmp_path, "r1")["target"] == "local:24000"
