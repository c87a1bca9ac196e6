"""The heap hog in a real JVM (no stack): it fills, holds, lets go on request and at its deadline.

A stand-in "service" allocates steadily in a G1 heap of 128 MiB (what a replica does, at a smaller size); the
agent is built from source and loaded with ``jcmd`` exactly as :mod:`faults.local.heap` loads it. What the
heap alerts read (used / max) must stay above 95 % while it holds, and the JVM must live through it.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from clients.wait import wait_until
from faults import agents
from faults.local.heap import read_markers

SERVICE = """
public class Service {
    public static void main(String[] args) throws Exception {
        System.out.println("started");
        System.out.flush();
        java.util.ArrayDeque<byte[]> recent = new java.util.ArrayDeque<>();
        while (true) {
            for (int i = 0; i < 50; i++) {
                recent.add(new byte[10_000]);
                if (recent.size() > 1000) recent.poll();
            }
            Thread.sleep(10);
        }
    }
}
"""

@pytest.fixture
def jvm(tmp_path: Path) -> Iterator[psutil.Process]:
    source = tmp_path / "Service.java"
    source.write_text(SERVICE)
    proc = subprocess.Popen(["java", "-Xms32m", "-Xmx128m", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
                             str(source)], stdout=subprocess.PIPE, stderr=(tmp_path / "jvm.log").open("w"))
    try:
        # A replica is loaded once it serves: here once the source launcher has compiled and started the class
        # (compiling takes tens of MiB of the heap a hog would already hold).
        assert proc.stdout is not None and proc.stdout.readline() == b"started\n"
        time.sleep(1)
        yield psutil.Process(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def _heap_used_ratio(pid: int) -> float:
    """used / max of the heap, as Micrometer's jvm_memory_* gauges (and the alert) read it."""
    out = agents.jcmd(pid, "GC.heap_info")
    found = re.search(r"total \d+K, used (\d+)K", out)
    assert found, out
    return int(found.group(1)) / (128 * 1024)


@pytest.mark.extended
def test_the_hog_fills_holds_and_lets_go_on_request(jvm: psutil.Process, tmp_path: Path) -> None:
    marker = tmp_path / f"audit-service-0-{jvm.pid}"
    agents.jcmd(jvm.pid, "JVMTI.agent_load", str(agents.heap_hog_jar()),
                f"fill:0.97,seconds:120,mark:test,marker:{marker}")
    status = wait_until(lambda: (s := read_markers(tmp_path).get(marker)) and s["after_gc_mib"] >= 0.95 * 128 and s,
                        30, 0.2, lambda: f"the heap filled: {read_markers(tmp_path)}, "
                        f"{(tmp_path / 'jvm.log').read_text()}")
    assert status["alive"] and status["max_mib"] == 128 and status["held_mib"] > 64
    time.sleep(2)  # the first mixed collection after the fill frees what the service had promoted: topped up next
    ratios = []
    for _ in range(20):
        ratios.append(_heap_used_ratio(jvm.pid))
        time.sleep(0.5)
    assert min(ratios) > 0.95, ratios  # CriticalHeapMemoryUsage's threshold, at every reading
    agents.jcmd(jvm.pid, "JVMTI.agent_load", str(agents.heap_hog_jar()), "release")
    wait_until(lambda: not marker.exists(), 10, 0.1, "the marker gone")
    assert jvm.is_running() and jvm.status() != psutil.STATUS_ZOMBIE
    assert "stopped: released" in (tmp_path / "jvm.log").read_text()


def test_the_hog_lets_go_by_itself_at_its_deadline(jvm: psutil.Process, tmp_path: Path) -> None:
    marker = tmp_path / f"audit-service-1-{jvm.pid}"
    agents.jcmd(jvm.pid, "JVMTI.agent_load", str(agents.heap_hog_jar()), f"fill:0.9,seconds:4,mark:t,marker:{marker}")
    wait_until(marker.exists, 10, 0.1, "the hog holding")
    wait_until(lambda: not marker.exists(), 15, 0.2,
               lambda: f"the hog let go at its deadline: {(tmp_path / 'jvm.log').read_text()}")
    assert "hold ended: released" in (tmp_path / "jvm.log").read_text()
    assert jvm.is_running()


def _gc_pause_seconds(pid: int) -> float:
    """Seconds the JVM spent in collection pauses so far (young and full: what Micrometer's jvm_gc_pause counts;
    jstat's YGCT + FGCT)."""
    out = subprocess.run([agents.jdk_tool("jstat"), "-gc", str(pid)], capture_output=True, text=True, check=True)
    header, values = (line.split() for line in out.stdout.splitlines()[:2])
    row = dict(zip(header, values, strict=True))
    return float(row["YGCT"]) + float(row["FGCT"])


def _gc_share(pid: int, seconds: float) -> float:
    before = _gc_pause_seconds(pid)
    time.sleep(seconds)
    return (_gc_pause_seconds(pid) - before) / seconds


@pytest.mark.extended
def test_churn_makes_the_collector_pause_several_times_more_than_the_hold_alone(jvm: psutil.Process,
                                                                             tmp_path: Path) -> None:
    """The churn is what FrequentGarbageCollection needs: the hold alone leaves collections rare and short."""
    hog, marker = str(agents.heap_hog_jar()), tmp_path / f"audit-service-0-{jvm.pid}"
    agents.jcmd(jvm.pid, "JVMTI.agent_load", hog, f"fill:0.9,seconds:60,mark:hold,marker:{marker}")
    wait_until(marker.exists, 20, 0.1, "the hog holding")
    time.sleep(2)
    held = _gc_share(jvm.pid, 8)
    agents.jcmd(jvm.pid, "JVMTI.agent_load", hog, f"fill:0.9,seconds:60,churn:100,mark:churn,marker:{marker}")
    wait_until(marker.exists, 20, 0.1, "the hog holding and churning")
    time.sleep(2)
    churning = _gc_share(jvm.pid, 8)
    agents.jcmd(jvm.pid, "JVMTI.agent_load", hog, "release")
    log = (tmp_path / "jvm.log").read_text()
    assert "churning 100 MiB/s" in log
    # Measured here: the hold alone 1.6-1.8 % of the time in pauses (the stand-in's own allocation in the 10 % left),
    # with the churn 8.6 %; an ignored churn option would read the same as the hold.
    assert churning > 3 * max(held, 0.001), (held, churning, log[-2000:])
    assert jvm.is_running()


@pytest.mark.parametrize("options", ["fill:2", "fill:0.9,churn:600", "fill:0.9,churn:-1"])
def test_a_bad_option_is_refused_by_the_jvm_and_named(jvm: psutil.Process, options: str) -> None:
    with pytest.raises(agents.AgentError, match="refused"):
        agents.jcmd(jvm.pid, "JVMTI.agent_load", str(agents.heap_hog_jar()), options)
    assert jvm.is_running()


def test_a_status_file_whose_jvm_is_gone_reads_as_not_alive(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    path = tmp_path / f"audit-service-2-{gone.pid}"
    path.write_text("mark=x held_mib=10 after_gc_mib=120 max_mib=128\n")
    assert read_markers(tmp_path)[path]["alive"] is False
