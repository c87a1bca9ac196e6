"""Two test sessions never share a stack: the second one on a port base stops at once and names the holder.

Each session stack begins by purging what runs at its port base, so without the claim a second session
(another checkout, a colleague, a helper) tears down the first one's stack mid-run, and the first one
fails in a cascade of errors that point nowhere near the cause. Remove ``claim(...)`` from the root
conftest's ``stack`` fixture and this test fails (the second session goes on to purge and start a stack).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PORT_BASE = 19987  # no stack of the suite lives here; the session under test never gets to start one


def test_a_second_session_on_a_port_base_in_use_stops_before_touching_the_stack(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import conftest; "
        f"conftest.claim('port-{PORT_BASE}'); print('held', flush=True); time.sleep(120)"), str(REPO)],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--stack-port-base", str(PORT_BASE),
             "tests/stack/test_stack_clients.py::test_postgres_select_1_and_schema"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env={**__import__("os").environ, "RESILIENCE_DATA_ROOT": str(tmp_path)})
        out = second.stdout + second.stderr
        assert second.returncode == 3, out
        assert f"port-{PORT_BASE} is in use by another test session (pid {holder.pid}" in out, out
        assert not (tmp_path / f"test-{PORT_BASE}").exists(), "the second session touched a stack"
        print(f"second session stopped after {time.monotonic() - started:.1f} s")
    finally:
        holder.kill()
        holder.wait()
