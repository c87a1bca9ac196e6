"""Benchmark: how close the measured RTO is to the ground truth, and how long judging takes.

For each of ``--kills`` rounds under steady load, SIGKILL one audit-service replica (the
fault library records the kill time in its journal), wait, then compare:

- measured: ``rto_replicas_ready`` as the probes compute it from Prometheus (1 s scrapes);
- ground truth: the restarted replica's own log line "readiness UP" (what the measured RTO
  samples: readiness does not wait for partitions, docs/metrics.md), minus the kill time; its
  "first offset commit since start" (the moment it consumes again, after the group's rebalance)
  is printed next to it.

It also times the evaluation of a scenario's whole SLO set over the round's window.

    .venv/bin/python benchmarks/rto_accuracy.py [--port-base 19000] [--kills 3] [--rate 300]

Uses (and needs) a running local stack at ``--port-base``; prints one line per round and a summary.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from faults import journal, replicas
from loadtests.locust_process import start_load, stop_load
from probes.evaluate import RunWindow, evaluate, rto_data_flow, rto_replicas_ready
from probes.slo import load_catalogue
from stack.core import LocalStack
from target.settings import DEFAULT_STATE_DIR

READY_MARK = "readiness UP"
COMMIT_MARK = "first offset commit since start"


def first_line_after(log: Path, mark: str, after: float) -> float | None:
    """Epoch seconds of the first line of ``log`` containing ``mark`` later than ``after``."""
    for line in log.read_text(errors="replace").splitlines():
        if mark in line:
            ts = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if ts > after:
                return ts
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port-base", type=int, default=19000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--rate", type=float, default=300)
    ap.add_argument("--observe", type=float, default=40, help="seconds observed after each kill")
    args = ap.parse_args()

    stack = LocalStack(port_base=args.port_base)
    if not stack.status().healthy:
        raise SystemExit(f"the stack at port base {args.port_base} is not healthy: run `resilience up` first")
    cat = load_catalogue()
    url = stack.endpoints.prometheus_url
    run_id = f"bench-rto-{int(time.time())}"
    cfg = {"stack_port_base": args.port_base, "run_id": run_id, "watchdog": False}
    tmp = Path(tempfile.mkdtemp(prefix="bench-rto-"))
    handle = start_load(stack.endpoints.kafka_bootstrap, "steady", rate=args.rate,
                        duration=args.kills * (args.observe + 25) + 30, run_dir=str(tmp), ledger_dir="")
    errors: list[float] = []
    judge_s: list[float] = []
    try:
        time.sleep(15)
        for i in range(args.kills):
            out = replicas.kill_replicas(count=1, configuration=cfg)
            program = out["details"]["killed"][0]
            kill_ts = journal.entries(Path(DEFAULT_STATE_DIR), run_id)[-1][1]["created_at"]
            time.sleep(args.observe)
            window = RunWindow(start=kill_ts - 10, end=time.time(), fault_start=kill_ts)
            rec = rto_replicas_ready(cat, cat.view("local"), url, window, expected_replicas=3, stabilization_s=10)
            log = stack.ctx.log_dir / f"{program}.log"
            truth = first_line_after(log, READY_MARK, kill_ts)
            commit = first_line_after(log, COMMIT_MARK, kill_ts)
            t0 = time.perf_counter()
            rto_replicas_ready(cat, cat.view("local"), url, window, 3, 10)
            rto_data_flow(cat, cat.view("local"), url, window, 10)
            evaluate(cat, cat.view("local"), url, window, scenario=cat.scenario("pod_failure"),
                     slo_ids=["availability", "pdb_min_available", "consumer_lag_critical", "latency_p95",
                              "latency_p95_end_to_end", "error_rate", "consumer_lag_warning",
                              "clickhouse_write_timeout"])
            judge_s.append(time.perf_counter() - t0)
            truth_rto = None if truth is None else truth - kill_ts
            if rec.rto_s is not None and truth_rto is not None:
                errors.append(rec.rto_s - truth_rto)
            measured = None if rec.rto_s is None else round(rec.rto_s, 2)
            print(f"round {i + 1}: killed {program}; measured RTO {measured} s ({rec.status.value}); "
                  f"ground truth {None if truth_rto is None else round(truth_rto, 2)} s (first commit after "
                  f"{None if commit is None else round(commit - kill_ts, 2)} s); "
                  f"SLO set judged in {judge_s[-1]:.2f} s", flush=True)
            replicas.restore_replicas(configuration=cfg)
            time.sleep(10)
    finally:
        stop_load(handle)
    if errors:
        print(f"\nRTO error (measured - truth) over {len(errors)} kills: mean {statistics.mean(errors):+.2f} s, "
              f"max |error| {max(abs(e) for e in errors):.2f} s")
    print(f"evaluating 2 RTOs + 8 PromQL SLOs: median {statistics.median(judge_s):.2f} s, max {max(judge_s):.2f} s")


if __name__ == "__main__":
    main()
