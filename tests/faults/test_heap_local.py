"""The heap fault's local backend on the real stack (the Python service: no JVM in it).

What the Spring stack proves live (``service_heap_pressure --service spring``: the heap held at 0.97-0.98,
both heap alerts fired) needs a JVM; here, on the stack every test session has, what must hold whatever
the service: a replica that is not a JVM is refused before anything is journaled or touched, naming
``--service spring``; the leftover audit names a replica whose heap a hog still holds (its status file, the
agent's own, is the evidence); and the release removes the status file of a JVM that is gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from faults import heap, journal, residue
from faults.local.heap import marker_dir
from stack.core import LocalStack
from target.settings import resolve

pytestmark = pytest.mark.stack


def test_a_replica_that_is_not_a_jvm_is_refused_before_anything(stack: LocalStack, config: dict[str, Any],
                                                                state_dir: Path) -> None:
    before = stack.supervisor.process_info()
    with pytest.raises(ActivityFailed, match=r"audit-service-\d.* is not a JVM .*--service spring"):
        heap.fill_heap(configuration=config)
    assert list(journal.entries(state_dir)) == []
    assert {n: i["pid"] for n, i in stack.supervisor.process_info().items()} == {n: i["pid"] for n, i in before.items()}
    assert not marker_dir(resolve(config)).exists() or not list(marker_dir(resolve(config)).iterdir())


def test_a_held_heap_is_residue_and_a_gone_jvms_status_file_is_released(stack: LocalStack,
                                                                       config: dict[str, Any]) -> None:
    cfg = {**config, "watchdog": False}
    settings = resolve(cfg)
    before = residue.snapshot(settings)
    replica = stack.supervisor.process_info()["audit-service-1"]
    directory = marker_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    held = directory / f"audit-service-1-{replica['pid']}"
    held.write_text("mark=test held_mib=200 after_gc_mib=248 max_mib=256\n")  # what the agent writes while it holds
    gone = directory / "audit-service-2-999999999"
    gone.write_text("mark=test held_mib=200 after_gc_mib=248 max_mib=256\n")
    try:
        found = " | ".join(map(str, residue.diff(before, residue.snapshot(settings)).leftovers))
        assert f"program audit-service-1: pid {replica['pid']}: a heap hog still holds its heap" in found, found
        assert "audit-service-2" not in found  # a status file whose JVM is gone holds nothing
        held.unlink()  # (a Python replica cannot be asked to let go: the agent would remove its own file)
        released = heap.release_heap(configuration=cfg)
        assert released["details"]["released"] == []
        assert not gone.exists()
    finally:
        held.unlink(missing_ok=True)
        gone.unlink(missing_ok=True)
    assert residue.diff(before, residue.snapshot(settings)).clean
