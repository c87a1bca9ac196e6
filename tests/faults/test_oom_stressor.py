"""The OOM fault's stressor on real processes and the real kernel, no stack: it kills the process it shares a
memory cgroup with, whether that process allocates (a Python replica) or sits on a heap it committed long ago
(a JVM, which a lowered limit alone never killed: the Spring gate's service_oom was "fault did not take effect").
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from faults.local import memory

HOLDER = "b = bytearray(150 << 20)\nb[::4096] = b'\\x01' * len(b[::4096])\nprint('held', flush=True)\nimport time\n" \
         "time.sleep(120)"
JAVA_HOLDER = """public class Hold { public static void main(String[] a) throws Exception {
  byte[][] h = new byte[150][]; for (int i = 0; i < h.length; i++) h[i] = new byte[1 << 20];
  System.out.println("held"); System.out.flush(); Thread.sleep(120000); } }"""


@pytest.fixture
def cgroup_of() -> Iterator[object]:
    made: list[Path] = []

    def make(pid: int) -> tuple[Path, str]:
        version, root = memory._hierarchy()  # no memory controller: the OOM fault cannot run here, a failure
        cg = root / memory._current_cgroup(pid, version).lstrip("/") / f"sqlaudit-test-oom-{uuid.uuid4().hex[:8]}"
        cg.mkdir()
        made.append(cg)
        (cg / "cgroup.procs").write_text(str(pid))
        (cg / ("memory.limit_in_bytes" if version == "v1" else "memory.max")).write_text(str(16 << 20))
        return cg, version

    yield make
    for cg in made:
        for pid in (cg / "cgroup.procs").read_text().split():
            (cg.parent / "cgroup.procs").write_text(pid)
        for _ in range(50):
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _held(cmd: list[str], cwd: Path | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held", "the holder did not start"
    return proc


def _killed_by_the_stressor(proc: subprocess.Popen[str], cgroup_of: object) -> None:
    cg, version = cgroup_of(proc.pid)  # type: ignore[operator]
    stressor = memory._stress(cg, version, proc.pid)
    try:
        assert proc.wait(timeout=30) == -9, "the kernel's OOM killer sends SIGKILL"
    finally:
        stressor.kill()
        stressor.wait()
    assert (memory._oom_kills(cg, version) or 0) >= 1


def test_a_process_that_holds_its_memory_is_oom_killed(cgroup_of: object) -> None:
    _killed_by_the_stressor(_held([sys.executable, "-c", HOLDER]), cgroup_of)


def test_a_jvm_on_its_committed_heap_is_oom_killed(cgroup_of: object, tmp_path: Path) -> None:
    (tmp_path / "Hold.java").write_text(JAVA_HOLDER)
    jvm = _held(["java", "-Xms256m", "-Xmx256m", "-XX:+AlwaysPreTouch", "-XX:+UseSerialGC", "Hold.java"], tmp_path)
    _killed_by_the_stressor(jvm, cgroup_of)
