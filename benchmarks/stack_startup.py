"""Benchmark: time from `up` to all healthy (cold and warm) and idle memory of the stack.

Cold = empty data directory (initdb, Kafka storage format, schemas created).
Warm = data directory kept from a previous run (`down` without `--purge`).
Idle memory = after the stack has been idle for --idle seconds: the sum of RSS over
supervisord and all its descendants, and the sum of PSS (shared pages split fairly),
which is the better "how much would this cost me" figure.

    .venv/bin/python benchmarks/stack_startup.py [--port-base 19400] [--cold 2] [--warm 3] [--idle 30] \
        [--service python|spring]

Prints one line per run and a summary; changes nothing outside its own data dir.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import psutil

from stack.core import LocalStack
from stack.paths import DEFAULT_DATA_ROOT


def _timed_up(stack: LocalStack) -> float:
    t0 = time.monotonic()
    status = stack.up()
    elapsed = time.monotonic() - t0
    if not status.healthy:
        raise SystemExit(f"stack not healthy: {status.as_dict()}")
    return elapsed


def _memory(stack: LocalStack) -> tuple[float, float, dict[str, float]]:
    pid = stack.supervisor.pid()
    assert pid
    root = psutil.Process(pid)
    rss = pss = 0.0
    by_component: dict[str, float] = {}
    infos = stack.supervisor.process_info()
    top = {int(i["pid"]): name for name, i in infos.items() if i["pid"]}
    for proc in [root, *root.children(recursive=True)]:
        try:
            mem = proc.memory_full_info()
        except psutil.Error:
            continue
        rss += mem.rss
        pss += mem.pss
        owner = "supervisord"
        for anc in [proc, *proc.parents()]:
            if anc.pid in top:
                owner = top[anc.pid]
                break
        by_component[owner] = by_component.get(owner, 0.0) + mem.pss
    mib = 1024 * 1024
    return rss / mib, pss / mib, {k: v / mib for k, v in sorted(by_component.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port-base", type=int, default=19400)
    ap.add_argument("--cold", type=int, default=2, help="cold starts (data dir purged before each)")
    ap.add_argument("--warm", type=int, default=3, help="warm starts (data dir kept)")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds idle before measuring memory")
    ap.add_argument("--service", choices=["python", "spring"], default="python", help="audit service of the stack")
    ap.add_argument("--data-root", type=Path, default=Path(DEFAULT_DATA_ROOT))
    args = ap.parse_args()

    data_dir = args.data_root / f"bench-{args.port_base}"
    stack = LocalStack(port_base=args.port_base, data_dir=data_dir, service=args.service)
    stack.down(purge=True)
    cold: list[float] = []
    warm: list[float] = []
    try:
        for i in range(args.cold):
            stack = LocalStack(port_base=args.port_base, data_dir=data_dir, service=args.service)
            cold.append(_timed_up(stack))
            print(f"cold start {i + 1}: {cold[-1]:.1f} s", flush=True)
            stack.down(purge=i < args.cold - 1 or args.warm == 0)
        for i in range(args.warm):
            stack = LocalStack(port_base=args.port_base, data_dir=data_dir, service=args.service)
            warm.append(_timed_up(stack))
            print(f"warm start {i + 1}: {warm[-1]:.1f} s", flush=True)
            if i < args.warm - 1:
                stack.down()
        if not stack.is_running():
            stack = LocalStack(port_base=args.port_base, data_dir=data_dir, service=args.service)
            stack.up()
        print(f"idle for {args.idle:.0f} s...", flush=True)
        time.sleep(args.idle)
        rss, pss, parts = _memory(stack)
    finally:
        stack.down(purge=True)
    components = len(stack.components())
    print(f"\nsummary ({psutil.cpu_count()} cores, {args.service} service, {components} components incl. "
          f"audit-service replicas; load average {psutil.getloadavg()[0]:.1f})")
    if cold:
        print(f"cold start to healthy: median {statistics.median(cold):.1f} s, max {max(cold):.1f} s (n={len(cold)})")
    if warm:
        print(f"warm start to healthy: median {statistics.median(warm):.1f} s, max {max(warm):.1f} s (n={len(warm)})")
    print(f"idle memory: RSS sum {rss:.0f} MiB, PSS sum {pss:.0f} MiB")
    for name, mib in parts.items():
        print(f"  {name:<16} {mib:7.0f} MiB PSS")


if __name__ == "__main__":
    main()
