"""The README's test command: the suite as two pytest sessions side by side (``make test`` runs this file).

The suite mostly waits on real recoveries (a Kafka rebalance, a pod Ready again, a failover), so two
sessions share the machine's two cores well: on a quiet machine the serial run took 38 min, this split
about two thirds of that (docs/benchmarks.md, "make test"). No pytest plugin does the split: pytest-xdist's
``--dist loadgroup`` did not keep the packages that own a stack on one worker here (its groups were
ignored, pytest-xdist#1241, #1295), and two workers each starting the test cluster collide.

- Session **A** runs the packages that start stacks of their own at fixed port bases, or the one test
  cluster (``cluster``, ``ha``, ``k8s``, ``secure``, ``spring``), and ``gate``, ``service`` and ``stack``, so
  that the two sessions take about as long (per-package times of a serial run, 2026-12-02);
- session **B** runs every other package, with its session stack ``SPLIT_PORT_OFFSET`` ports above A's,
  and a data root and fault journal of its own (a kill switch or a ``cleanup --all`` of one session never
  reaches the other's stacks).

A's output streams live; B's goes to ``reports/test-logs/session-b.log`` and is printed when both are done.
The exit code is A's if it is not 0, else B's (pytest's codes: 1 a test failed, 2 interrupted, ...).
Arguments go to both sessions (``make test PYTEST_ARGS="-x"``); when they name test paths, one ordinary
pytest session runs them instead (``make test PYTEST_ARGS=tests/stack``). Ctrl-C stops both (each tears
its stacks down as a serial run does).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout
TESTS = ROOT / "tests"
LOGS = ROOT / "reports" / "test-logs"
SESSION_A = ("cluster", "gate", "ha", "k8s", "secure", "service", "spring", "stack")
SPLIT_PORT_OFFSET = 1000
DEFAULT_PORT_BASE = 19500  # conftest.DEFAULT_TEST_PORT_BASE
DEFAULT_DATA_ROOT = Path("/var/tmp/sql-audit-resilience")  # stack.paths.DEFAULT_DATA_ROOT


def _names_paths(args: list[str]) -> bool:
    return any(not a.startswith("-") and Path(a.split("::")[0]).exists() for a in args)


def _packages() -> tuple[list[str], list[str]]:
    packages = sorted(p.name for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py")))
    a = [f"tests/{p}" for p in packages if p in SESSION_A]
    b = [f"tests/{p}" for p in packages if p not in SESSION_A]
    return a, b


def _env_b() -> dict[str, str]:
    base = int(os.environ.get("RESILIENCE_TEST_PORT_BASE", DEFAULT_PORT_BASE)) + SPLIT_PORT_OFFSET
    root = Path(os.environ.get("RESILIENCE_DATA_ROOT", DEFAULT_DATA_ROOT)) / "session-b"
    return {**os.environ, "RESILIENCE_TEST_PORT_BASE": str(base), "RESILIENCE_DATA_ROOT": str(root),
            "RESILIENCE_STATE_DIR": str(root / "faults")}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a CI timeout) stops both sessions as Ctrl-C does


def main(args: list[str]) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    pytest = [sys.executable, "-m", "pytest"]
    if _names_paths(args):
        return subprocess.call([*pytest, *args], cwd=ROOT)
    a, b = _packages()
    LOGS.mkdir(parents=True, exist_ok=True)
    log_b = LOGS / "session-b.log"
    t0 = time.monotonic()
    print(f"session A (live below): {' '.join(a)}\nsession B (log {log_b.relative_to(ROOT)}): {' '.join(b)}",
          flush=True)
    with log_b.open("w") as out:
        proc_b = subprocess.Popen([*pytest, *args, *b], cwd=ROOT, env=_env_b(), stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        proc_a = subprocess.Popen([*pytest, *args, *a], cwd=ROOT, start_new_session=True)
        try:
            code_a = proc_a.wait()
            code_b = proc_b.wait()
        except KeyboardInterrupt:
            for proc in (proc_a, proc_b):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGINT)
            code_a, code_b = proc_a.wait(), proc_b.wait()
            print(f"interrupted: session A exited {code_a}, session B {code_b}", flush=True)
            return 2
    print(f"\n{'=' * 30} session B ({log_b.relative_to(ROOT)}) {'=' * 30}", flush=True)
    sys.stdout.write(log_b.read_text())
    minutes = (time.monotonic() - t0) / 60
    print(f"\nsession A exited {code_a}, session B {code_b}; both in {minutes:.1f} min", flush=True)
    return code_a or code_b


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
