"""RTO / RPO of the ``ha`` profile under load, and its idle footprint.

Scenarios (each under steady load with a ledger, fault through the fault library):

* ``pg-kill-sync``     SIGKILL of the Patroni leader (Patroni + postmaster), synchronous_mode on
* ``pg-switchover``    Patroni switchover (REST API), synchronous_mode on
* ``pg-kill-async``    SIGKILL of the leader with synchronous_mode off
* ``broker-kill``      SIGKILL of one of three Kafka brokers (held down 15 s)
* ``ch-stall``         one ClickHouse replica SIGSTOPped for 30 s

PostgreSQL RTO: the longest gap between acknowledged commits (one every 20 ms through the
multi-host read-write conninfo) from the fault until the new primary took one; RPO: acknowledged
commits missing afterwards. Kafka RTO: the longest gap without an acknowledged produce after the
fault. ClickHouse RTO: the longest gap between batches stored on the surviving replica in the
30 s after the stall (the client's timeout plus its switch to ``alt_hosts``). Event RPO: the
ledger against ClickHouse once the group lag is 0.

Usage (the machine is shared: expect noise, run when it is quiet)::

    sudo .venv/bin/python benchmarks/ha_failover.py --port-base 19600 [--only pg-kill-sync ...] [--keep]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from faults import clickhouse_stall, kafka_broker, postgres_failover
from faults.cleanup import cleanup
from stack.components import clickhouse, patroni
from stack.core import LocalStack
from tests.ha import harness as h

RATE = 150.0
SLO = {"patroni_failover_rto_s": 30.0, "postgres_rpo_s": 300.0}


def footprint(stack: LocalStack) -> dict[str, Any]:
    """RSS and PSS (MiB) per supervised program (its process tree, plus a Patroni member's postmaster tree)."""
    out: dict[str, Any] = {}
    infos = stack.supervisor.process_info()
    for comp in stack.components():
        info = infos.get(comp.name)
        if not info or not info["pid"]:
            continue
        roots = [int(info["pid"])]
        if comp.pids is not None:
            roots.extend(comp.pids(stack.ctx))
        procs: list[psutil.Process] = []
        for pid in roots:
            try:
                root = psutil.Process(pid)
                procs.extend([root, *root.children(recursive=True)])
            except psutil.Error:
                pass
        rss = pss = 0
        for p in procs:
            try:
                mem = p.memory_full_info()
                rss += mem.rss
                pss += mem.pss
            except psutil.Error:
                pass
        out[comp.name] = {"rss_mib": round(rss / 2**20), "pss_mib": round(pss / 2**20), "processes": len(procs)}
    out["total"] = {"rss_mib": sum(v["rss_mib"] for v in out.values()),
                    "pss_mib": sum(v["pss_mib"] for v in out.values())}
    return out


def idle_cpu(stack: LocalStack, seconds: float = 10.0) -> float:
    """CPU cores used by the whole stack while idle (sum over its processes)."""
    sup = stack.supervisor.pid()
    assert sup
    procs = [psutil.Process(sup), *psutil.Process(sup).children(recursive=True)]
    procs += [psutil.Process(pm) for m in patroni.PG_MEMBERS if (pm := patroni.postmaster_pid(stack.ctx, m))]
    t0 = {p.pid: sum(p.cpu_times()[:2]) for p in procs}
    time.sleep(seconds)
    used = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            used += sum(p.cpu_times()[:2]) - t0[p.pid]
    return round(used / seconds, 2)


def pg_scenario(stack: LocalStack, work: Path, method: str, sync: bool) -> dict[str, Any]:
    cfg = h.fault_config(stack, work / "faults")
    patroni.set_synchronous_mode(stack.ctx, sync)
    h.wait_until(lambda: stack.status().healthy, 90, f"cluster settled with synchronous_mode={sync}")
    old = patroni.patroni_leader(stack.ctx)
    commits = h.CommitLedger(stack).start()
    handle = h.load(stack, work / "load", RATE, 40)
    try:
        time.sleep(12)
        fault_at = time.time()
        postgres_failover.fail_over_postgres(method, configuration=cfg)
        h.wait_until(lambda: (lead := patroni.patroni_leader(stack.ctx)) is not None and lead != old, 90, "new leader")
        leader_at = time.time()
        h.wait_until(lambda: commits.first_ack_after(leader_at) is not None, 90, "a write on the new primary")
        time.sleep(3)
    finally:
        postgres_failover.restore_postgres(configuration=cfg)
        commits.stop()
        result = h.stop(handle)
        cleanup(work / "faults")
        patroni.set_synchronous_mode(stack.ctx, True)
    lost, rpo = commits.lost(fault_at)
    report = h.drained_loss(stack, result, int(fault_at * 1000))
    recovered = commits.first_ack_after(leader_at) or time.time()
    return {"rto_s": round(commits.max_gap(fault_at, recovered), 2),
            "new_leader_after_s": round(leader_at - fault_at, 2),
            "commits_acked": len(commits.acked), "commits_lost": lost, "rpo_s": round(rpo, 3),
            "events_acked": report.acknowledged, "events_lost": len(report.lost), "events_rpo_s": report.rpo_s}


def broker_scenario(stack: LocalStack, work: Path) -> dict[str, Any]:
    cfg = h.fault_config(stack, work / "faults")
    handle = h.load(stack, work / "load", RATE, 35)
    try:
        time.sleep(8)
        fault_ms = int(time.time() * 1000)
        kafka_broker.stop_kafka_broker(1, duration=15, graceful=False, configuration=cfg)
        time.sleep(17)
    finally:
        kafka_broker.start_kafka_broker(1, configuration=cfg)
        result = h.stop(handle)
        cleanup(work / "faults")
    gap = h.ack_gap(result, fault_ms, fault_ms + 20000)
    report = h.drained_loss(stack, result, fault_ms)
    return {"rto_s": gap, "events_acked": report.acknowledged, "events_lost": len(report.lost),
            "rpo_s": report.rpo_s, "failed_produces": result.ledger.failed_count if result.ledger else None}


def ch_scenario(stack: LocalStack, work: Path) -> dict[str, Any]:
    cfg = h.fault_config(stack, work / "faults")
    survivor = clickhouse.CH_REPLICAS[1]
    handle = h.load(stack, work / "load", RATE, 45)
    first_ms: int | None = None
    try:
        time.sleep(8)
        fault_ms = int(time.time() * 1000)
        clickhouse_stall.stall_clickhouse(30, replica=0, configuration=cfg)

        def first_after() -> bool:
            nonlocal first_ms
            rows = clickhouse.query(stack.ctx, survivor, "SELECT count(), min(stored_at_ms) FROM sqlaudit.audit_events "
                                                     f"WHERE stored_at_ms > {fault_ms}", timeout=5)
            if int(rows[0][0]) > 0:
                first_ms = int(rows[0][1])
                return True
            return False
        h.wait_until(first_after, 30, "writes through the surviving replica")
        time.sleep(max(0.0, fault_ms / 1000 + 31 - time.time()))
    finally:
        clickhouse_stall.resume_clickhouse(replica=0, configuration=cfg)
        result = h.stop(handle)
        cleanup(work / "faults")
    converge = h.wait_replicas_converged(stack)
    # Sorted here: ClickHouse 18.16 reads "ORDER BY 1" as ordering by the constant 1 (no positional
    # arguments before 22.x), which left the stamps unsorted and made the first runs' "gap" meaningless.
    stamps = sorted(int(r[0]) for r in clickhouse.query(
        stack.ctx, survivor, "SELECT DISTINCT stored_at_ms FROM sqlaudit.audit_events "
                             f"WHERE stored_at_ms BETWEEN {fault_ms} AND {fault_ms + 30000}"))
    gap = max((b - a for a, b in itertools.pairwise([fault_ms, *stamps])), default=0) / 1000
    lost = {}
    for replica in (0, 1):
        report = h.drained_loss(stack, result, fault_ms, replica=replica)
        lost[f"events_lost_replica{replica}"] = len(report.lost)
    return {"rto_s": round(gap, 2), "first_write_on_survivor_s": round(((first_ms or fault_ms) - fault_ms) / 1000, 2),
            "events_acked": report.acknowledged, **lost, "rpo_s": report.rpo_s,
            "converged_after_resume_s": round(converge, 1)}


SCENARIOS = {
    "pg-kill-sync": lambda st, w: pg_scenario(st, w, "kill", True),
    "pg-switchover": lambda st, w: pg_scenario(st, w, "switchover", True),
    "pg-kill-async": lambda st, w: pg_scenario(st, w, "kill", False),
    "broker-kill": broker_scenario,
    "ch-stall": ch_scenario,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-base", type=int, default=19600)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), default=None)
    parser.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    args = parser.parse_args()
    stack = LocalStack(port_base=args.port_base, profile="ha")
    started = not stack.is_running()
    results: dict[str, Any] = {"load_events_per_s": RATE, "cpus": os.cpu_count(),
                               "loadavg_at_start": os.getloadavg()}
    try:
        if started:
            t0 = time.monotonic()
            assert stack.up().healthy
            results["startup_s"] = round(time.monotonic() - t0, 1)
        time.sleep(10)
        results["idle_footprint"] = footprint(stack)
        results["idle_cpu_cores"] = idle_cpu(stack)
        print(json.dumps({"idle": results}, indent=2), flush=True)
        for name in args.only if args.only is not None else SCENARIOS:
            with tempfile.TemporaryDirectory(prefix=f"ha-bench-{name}-") as tmp:
                t0 = time.monotonic()
                try:
                    out = SCENARIOS[name](stack, Path(tmp))
                except AssertionError as exc:
                    out = {"error": str(exc)[:500]}
                out["scenario_s"] = round(time.monotonic() - t0, 1)
                results[name] = out
                print(json.dumps({name: out}), flush=True)
    finally:
        if started and not args.keep:
            stack.down()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
