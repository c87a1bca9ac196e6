"""A freeze is applied only once its target reads stopped: real processes, no stack.

``kill(SIGSTOP)`` returns before the kernel has stopped every thread of a busy process: the ClickHouse stall
once returned while ClickHouse still ran (a CI run's ``test_clickhouse_stall`` read it ``running``). Every local
SIGSTOP fault freezes through :func:`faults.local.processes.freeze`, which waits for the stop to bite and
fails the fault (so the engine undoes it) when it does not.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest
from chaoslib.exceptions import ActivityFailed

from clients.wait import wait_until
from faults.local.processes import freeze

BUSY = """
import threading
def spin():
    while True:
        pass
for _ in range(8):
    threading.Thread(target=spin, daemon=True).start()
threading.Event().wait()
"""


@pytest.fixture
def busy() -> Iterator[subprocess.Popen[bytes]]:
    """A process-group leader with eight spinning threads, killed at the end whatever happened."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True)
    yield proc
    proc.send_signal(signal.SIGCONT)
    proc.kill()
    proc.wait()


def test_freeze_returns_only_once_every_thread_is_stopped(busy: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        waited = freeze(busy.pid, "freeze a busy process")
        assert psutil.Process(busy.pid).status() == psutil.STATUS_STOPPED
        assert waited < 5
        busy.send_signal(signal.SIGCONT)


def test_a_stop_that_does_not_bite_fails_the_fault_naming_the_pid() -> None:
    zombie = subprocess.Popen(["true"], start_new_session=True)  # exits, and stays a zombie until waited for
    try:
        wait_until(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE, 10, 0.01, "true exited")
        with pytest.raises(ActivityFailed, match=rf"pid {zombie.pid} .*did not bite"):
            freeze(zombie.pid, "freeze a zombie", timeout=0.5)
    finally:
        zombie.wait()
