"""Inject/revert every local fault N times and count what is left behind.

Usage (a running stack is required; use your own port base)::

    .venv/bin/python benchmarks/fault_cycles.py --port-base 19300 \
        --data-dir /var/tmp/sql-audit-resilience/test-19300 --cycles 100

After each revert it checks the stack's baseline (proxies enabled without
toxics, every supervised program RUNNING with a live, not-stopped pid) and
counts a leftover when the baseline is not reached within ``--settle`` seconds
(it then cleans up, so one leftover does not cascade). At the end it counts
open journal entries and live helper processes (expiry timers, watchdogs).
Prints one line per fault: cycles, leftovers, inject and revert p50/p95/max.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

from faults import (
    clickhouse_down,
    clickhouse_stall,
    journal,
    kafka_broker,
    network_latency,
    network_loss,
    network_partition,
    postgres_failover,
    process,
    replicas,
)
from faults.cleanup import cleanup
from stack.core import LocalStack

Cycle = tuple[Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], Any]]

FAULTS: dict[str, Cycle] = {
    "partition-blackhole-kafka": (lambda c: network_partition.partition_network("kafka", configuration=c),
                                  lambda c: network_partition.remove_partition("kafka", configuration=c)),
    "partition-refuse-postgres": (lambda c: network_partition.partition_network("postgres", "refuse", configuration=c),
                                  lambda c: network_partition.remove_partition("postgres", configuration=c)),
    "latency-clickhouse": (lambda c: network_latency.add_latency("clickhouse", 100, 10, "both", configuration=c),
                           lambda c: network_latency.remove_latency("clickhouse", configuration=c)),
    "loss-kafka": (lambda c: network_loss.add_packet_loss("kafka", 30, configuration=c),
                   lambda c: network_loss.remove_packet_loss("kafka", configuration=c)),
    "kill-process-prometheus": (lambda c: process.kill_process("prometheus", configuration=c),
                                lambda c: process.restore_process("prometheus", configuration=c)),
    "kill-replicas-infra-1": (lambda c: replicas.kill_replicas(count=1, group="infra", configuration=c),
                              lambda c: replicas.restore_replicas("infra", configuration=c)),
    "postgres-stop": (lambda c: postgres_failover.fail_over_postgres("stop", configuration=c),
                      lambda c: postgres_failover.restore_postgres(configuration=c)),
    "postgres-kill": (lambda c: postgres_failover.fail_over_postgres("kill", configuration=c),
                      lambda c: postgres_failover.restore_postgres(configuration=c)),
    "clickhouse-stall": (lambda c: clickhouse_stall.stall_clickhouse(30, configuration=c),
                         lambda c: clickhouse_stall.resume_clickhouse(configuration=c)),
    "clickhouse-down": (lambda c: clickhouse_down.stop_clickhouse(configuration=c),
                        lambda c: clickhouse_down.start_clickhouse(configuration=c)),
    "kafka-broker-stop": (lambda c: kafka_broker.stop_kafka_broker(configuration=c),
                          lambda c: kafka_broker.start_kafka_broker(configuration=c)),
}


def problems(stack: LocalStack) -> list[str]:
    """Differences from the baseline right now (empty: at baseline)."""
    found = []
    proxies = requests.get(f"{stack.endpoints.toxiproxy_url}/proxies", timeout=(2, 5)).json()
    for name, proxy in proxies.items():
        if not proxy["enabled"] or proxy["toxics"]:
            found.append(f"proxy {name} enabled={proxy['enabled']} toxics={len(proxy['toxics'])}")
    for name, info in stack.supervisor.process_info().items():
        try:
            status = psutil.Process(info["pid"]).status() if info["pid"] else "no pid"
        except psutil.Error:
            status = "gone"
        if info["statename"] != "RUNNING" or status in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, "gone"):
            found.append(f"{name} {info['statename']} {status}")
    return found


def helpers(state_dir: Path) -> int:
    n = 0
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "faults.cli" in cmd and str(state_dir) in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            n += 1
    return n


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port-base", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to reach baseline after a revert")
    parser.add_argument("--only", nargs="*", choices=sorted(FAULTS), help="subset of faults")
    args = parser.parse_args()
    stack = LocalStack(port_base=args.port_base, data_dir=args.data_dir)
    if problems(stack):
        print(f"stack not at baseline before the benchmark: {problems(stack)}", file=sys.stderr)
        return 2
    state_dir = Path(tempfile.mkdtemp(prefix=f"fault-cycles-{args.port_base}-"))
    config = {"stack_port_base": args.port_base, "fault_state_dir": str(state_dir),
              "run_id": f"bench-{int(time.time())}", "heartbeat_timeout": 30}
    if args.data_dir:
        config["stack_data_dir"] = str(args.data_dir)
    print(f"{'fault':<28} {'cycles':>6} {'errors':>6} {'leftover':>8}  inject p50/p95/max s   "
          f"revert p50/p95/max s   settle max s")
    total_left = total_err = 0
    t_start = time.monotonic()
    for name in args.only or FAULTS:
        inject, revert = FAULTS[name]
        t_in: list[float] = []
        t_out: list[float] = []
        settle: list[float] = []
        errors = leftovers = 0
        for _ in range(args.cycles):
            try:
                t0 = time.perf_counter()
                inject(config)
                t_in.append(time.perf_counter() - t0)
            except Exception as exc:
                errors += 1
                print(f"  {name}: inject failed: {exc}", file=sys.stderr)
            finally:
                t0 = time.perf_counter()
                try:
                    revert(config)
                except Exception as exc:
                    errors += 1
                    print(f"  {name}: revert failed: {exc}", file=sys.stderr)
                t_out.append(time.perf_counter() - t0)
            t0 = time.monotonic()
            while problems(stack) and time.monotonic() - t0 < args.settle:
                time.sleep(0.2)
            settle.append(time.monotonic() - t0)
            left = problems(stack) + [f"open entry {e['id']}" for _, e in journal.open_entries(state_dir)]
            if left:
                leftovers += 1
                print(f"  {name}: leftover after revert: {left}", file=sys.stderr)
                cleanup(state_dir)
        total_left += leftovers
        total_err += errors
        print(f"{name:<28} {args.cycles:>6} {errors:>6} {leftovers:>8}  "
              f"{statistics.median(t_in) if t_in else float('nan'):5.3f}/{pct(t_in, .95):5.3f}/{max(t_in or [0]):5.3f}"
              f"      {statistics.median(t_out):5.3f}/{pct(t_out, .95):5.3f}/{max(t_out):6.3f}"
              f"      {max(settle):5.2f}", flush=True)
    time.sleep(3)
    open_left = len(journal.open_entries(state_dir))
    helpers_left = helpers(state_dir)
    print(f"total: {total_err} errors, {total_left} cycles with leftovers, {open_left} open journal entries, "
          f"{helpers_left} helper processes alive 3 s after the end; {time.monotonic() - t_start:.0f} s; "
          f"journal {state_dir}")
    return 0 if total_left == total_err == open_left == helpers_left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
