"""What a shorter heartbeat costs, and how fast the watchdog acts on a dead or hung runner.

Usage (no stack needed; the faults it journals point at a port base with no stack, so their undo
is "stack not running: nothing to undo")::

    .venv/bin/python benchmarks/heartbeat_cost.py --seconds 20 --trials 5

Prints four tables:

1. **Heartbeat thread**: CPU of the runner's heartbeat thread
   (:class:`faults.journal._Heartbeat`, the thread alone), per beat interval; and the
   longest gap between two beats seen (what a heartbeat timeout must absorb on this machine).
   CPU figures come from ``/proc/<pid>[/task/<tid>]/schedstat`` (nanoseconds).
2. **Watchdog**: CPU of a real watchdog process (``python -m faults.cli watchdog``) watching a
   live run with open faults and a registered load, per poll interval.
3. **Dead runner**: a runner process that journaled a fault and started its watchdog is SIGKILLed;
   seconds until the watchdog has reverted the fault (journal entry closed).
4. **Hung runner**: the same runner SIGSTOPped (alive, not beating); seconds until the revert.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from faults import journal, watchdog  # noqa: E402
from target.settings import DEFAULT_HEARTBEAT_TIMEOUT, resolve  # noqa: E402

NO_STACK_PORT_BASE = 64000  # nothing listens there: an undo finds "stack not running"


def _cpu(pid: int, tid: int | None = None) -> float:
    """CPU seconds of a process (or one of its threads), in nanoseconds' resolution (/proc/.../schedstat)."""
    path = f"/proc/{pid}/task/{tid}/schedstat" if tid else f"/proc/{pid}/schedstat"
    return int(Path(path).read_text().split()[0]) / 1e9


def heartbeat_cpu(interval: float, seconds: float, state: Path) -> tuple[float, float, int]:
    """(CPU ms per second of wall time, longest gap between beats in s, beats) of a heartbeat thread."""
    gaps: list[float] = []

    class Timed(journal._Heartbeat):
        def run(self) -> None:
            last = time.monotonic()
            while not self.stopped.wait(self.interval):
                journal.touch_heartbeat(self.state_dir, self.run_id)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

    beat = Timed(state, f"bench-{interval}", interval)
    beat.start()
    assert beat.native_id is not None
    c0, t0 = _cpu(os.getpid(), beat.native_id), time.monotonic()
    time.sleep(seconds)
    used = _cpu(os.getpid(), beat.native_id) - c0
    wall = time.monotonic() - t0
    beat.stopped.set()
    beat.join()
    return used * 1000 / wall, max(gaps, default=0.0), len(gaps)


def _open_fault(cfg: dict[str, object]) -> Path:
    settings = resolve(cfg)
    undo = {"activity": "faults.network_partition.remove_partition", "arguments": {"edge": "kafka"}}
    path, _ = journal.new_entry(settings, "faults.network_partition.partition_network", {"edge": "kafka"}, undo,
                                None, {"would": "nothing (benchmark)"})
    journal.update(path, status="active")
    return path


def watchdog_cpu(poll: float, seconds: float, state: Path, entries: int) -> float:
    """CPU ms per second of a watchdog watching a live run (this process beats) with ``entries`` open faults."""
    run_id = f"bench-wd-{poll}-{entries}"
    cfg = {"stack_port_base": NO_STACK_PORT_BASE, "fault_state_dir": str(state), "run_id": run_id,
           "heartbeat_timeout": 60}
    settings = resolve(cfg)
    for _ in range(entries):
        _open_fault(cfg)
    from faults import companions

    companions.register(settings, "load", state / run_id / "no-load.json", None, "locust")
    info = watchdog.spawn_detached(["watchdog", "--run", run_id, "--state-dir", str(state), "--poll", str(poll)],
                                   state / f"{run_id}.log")
    proc = psutil.Process(info["pid"])
    time.sleep(3.0)  # interpreter start-up is not the loop's cost
    c0, t0 = _cpu(proc.pid), time.monotonic()
    time.sleep(seconds)
    used = (_cpu(proc.pid) - c0) * 1000 / (time.monotonic() - t0)
    proc.terminate()
    proc.wait(10)
    journal.stop_heartbeat(settings)
    return used


RUNNER = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[2])
    from faults import journal, watchdog
    from target.settings import resolve
    cfg = json.loads(sys.argv[1])
    settings = resolve(cfg)
    undo = {"activity": "faults.network_partition.remove_partition", "arguments": {"edge": "kafka"}}
    path, _ = journal.new_entry(settings, "faults.network_partition.partition_network", {"edge": "kafka"}, undo,
                                None, {"would": "nothing (benchmark)"})
    journal.update(path, status="active")
    journal.start_heartbeat(settings)
    watchdog.ensure_watchdog(settings)
    print(path, flush=True)
    time.sleep(600)
""")


def heal_after(sig: int, timeout: float, state: Path, trial: int) -> float:
    """Seconds from ``sig`` to the runner until its watchdog closed the fault's journal entry."""
    run_id = f"bench-{signal.Signals(sig).name}-{timeout:g}-{trial}"
    cfg = {"stack_port_base": NO_STACK_PORT_BASE, "fault_state_dir": str(state), "run_id": run_id,
           "heartbeat_timeout": timeout}
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(cfg), str(REPO)], stdout=subprocess.PIPE,
                              text=True, cwd=str(REPO))
    assert runner.stdout is not None
    entry = Path(runner.stdout.readline().strip())
    time.sleep(6.0)  # the watchdog has started and imported the faults' modules, as during a run's warm-up
    t0 = time.monotonic()
    runner.send_signal(sig)
    try:
        while (journal.read(entry) or {}).get("status") in journal.OPEN:
            if time.monotonic() - t0 > timeout + 60:
                raise TimeoutError(f"{run_id}: not reverted within {timeout + 60:g} s")
            time.sleep(0.02)
        return time.monotonic() - t0
    finally:
        runner.kill()
        runner.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per CPU figure")
    parser.add_argument("--trials", type=int, default=5, help="kills per detection figure")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, load average "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; default heartbeat_timeout {DEFAULT_HEARTBEAT_TIMEOUT:g} s "
          f"(beat every timeout/5), watchdog poll {watchdog.POLL_S:g} s")
    with tempfile.TemporaryDirectory(prefix="heartbeat-bench-") as tmp:
        state = Path(tmp)
        print("\n| heartbeat interval | timeout it serves | CPU of the thread (ms per s) | longest gap between beats "
              "| beats |")
        print("| --- | --- | --- | --- | --- |")
        for interval in (3.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.1):
            ms, gap, beats = heartbeat_cpu(interval, args.seconds, state)
            print(f"| {interval:g} s | {interval * 5:g} s | {ms:.3f} | {gap:.3f} s | {beats} |", flush=True)
        print("\n| watchdog poll | open faults | CPU (ms/s) |")
        print("| --- | --- | --- |")
        for poll in (1.0, 0.5, 0.25, 0.1):
            for entries in (1, 5):
                used = watchdog_cpu(poll, args.seconds, state, entries)
                print(f"| {poll:g} s | {entries} | {used:.2f} |", flush=True)
        print("\n| runner | heartbeat timeout | fault reverted after (s): median | max | trials |")
        print("| --- | --- | --- | --- | --- |")
        for sig, name in ((signal.SIGKILL, "SIGKILL (dead)"), (signal.SIGSTOP, "SIGSTOP (hung)")):
            for timeout in (DEFAULT_HEARTBEAT_TIMEOUT, 15.0) if sig == signal.SIGSTOP else (DEFAULT_HEARTBEAT_TIMEOUT,):
                times = [heal_after(sig, timeout, state, i) for i in range(args.trials)]
                print(f"| {name} | {timeout:g} s | {statistics.median(times):.2f} | {max(times):.2f} | "
                      f"{len(times)} |", flush=True)


if __name__ == "__main__":
    main()
