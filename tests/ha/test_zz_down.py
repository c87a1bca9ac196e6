"""The ha stack's ``down``: every process gone, Patroni's postmasters included. Last of tests/ha (it stops the
session's ha stack), hence the file name."""

from __future__ import annotations

import psutil
import pytest

from stack.components import patroni
from stack.core import LocalStack

pytestmark = [pytest.mark.ha, pytest.mark.stack]


def test_down_leaves_no_process(ha_stack: LocalStack) -> None:
    sup = ha_stack.supervisor.pid()
    assert sup
    pids = {sup, *(p.pid for p in psutil.Process(sup).children(recursive=True))}
    postmasters = {pid for m in patroni.PG_MEMBERS if (pid := patroni.postmaster_pid(ha_stack.ctx, m))}
    assert len(postmasters) == 2, "expected both Patroni members' postmasters"
    pids |= postmasters
    stopped = set(ha_stack.down())
    assert pids <= stopped, sorted(pids - stopped)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"still running after down: {alive}"
