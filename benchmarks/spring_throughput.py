"""The Spring Boot service (services/spring) beside the Python reference, in one run; prints numbers,
asserts nothing.

    .venv/bin/resilience up --port-base 20000
    .venv/bin/python benchmarks/spring_throughput.py --port-base 20000 [--events 40000] [--latency-seconds 30]

Measures, for each service (Spring: 3 ``java -jar`` replicas started here on a topic of their own, 6
partitions, through the stack's toxiproxy edges like the Python replicas; Python: the stack's 3 replicas):

1. start-up of one replica: spawn to readiness 200, and (Spring) spawn to its first partition assignment;
   its idle RSS 10 s later;
2. events/s end to end (consumed -> ClickHouse and PostgreSQL -> committed) with 3 replicas. The replicas
   are frozen (SIGSTOP) while a backlog of ``--events`` is produced and thawed (SIGCONT) together, so both
   services drain it as three warm members of a settled group, without joins or rebalances; the rate is
   the backlog over the time from the first commit to zero lag. A freeze longer than a service's session
   timeout would rebalance the group: the output says whether the members changed;
3. p50/p95/p99 end-to-end latency (``produced_at`` -> durable) and processing latency at half the Spring
   3-replica rate, for 30 s, from each service's histograms (bucket deltas, Prometheus-style
   interpolation); RSS of the replicas after it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import requests
from kafka import KafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from service_throughput import Bench, make_payloads, quantile

from stack.components.audit_service import GROUP
from stack.core import LocalStack
from stack.endpoints import CONSUMER_GROUP
from tests.spring.spring_harness import Replica, SpringService, build_jar

logger = logging.getLogger("benchmarks.spring_throughput")

MiB = 1024 * 1024


def rss_mib(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / MiB, 1)


def wait(what: str, cond: object, timeout: float, interval: float = 0.25) -> float:
    """Seconds until ``cond()`` is truthy; RuntimeError after ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():  # type: ignore[operator]
            return time.monotonic() - t0
        time.sleep(interval)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def members(admin: KafkaAdminClient, group: str) -> list[str]:
    info = admin.describe_groups([group])[group]
    return sorted(str(m["member_id"]) for m in info.get("members") or [])


def histograms(urls: list[str], names: dict[str, str]) -> dict[str, dict[float, float]]:
    """Cumulative bucket counts of the histograms ``names`` (series name -> kind), summed over ``urls``."""
    out: dict[str, dict[float, float]] = {kind: {} for kind in names.values()}
    pat = re.compile(r'^(\w+)\{.*?le="([^"]+)".*\} (\S+)$', re.M)
    for url in urls:
        for m in pat.finditer(requests.get(url, timeout=10).text):
            if m.group(1) in names:
                le = float("inf") if m.group(2) == "+Inf" else float(m.group(2))
                d = out[names[m.group(1)]]
                d[le] = d.get(le, 0.0) + float(m.group(3))
    return out


def percentiles(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> dict[str, float]:
    result: dict[str, float] = {}
    for kind in after:
        delta = {le: after[kind].get(le, 0) - before[kind].get(le, 0) for le in after[kind]}
        for q in (0.5, 0.95, 0.99):
            result[f"{kind}_p{int(q * 100)}_ms"] = round(quantile(delta, q) * 1000, 1)
    return result


class Drain:
    """Freeze ``pids``, produce a backlog, thaw them, time the drain to zero lag."""

    def __init__(self, producer: object, topic: str, lag: object, admin: KafkaAdminClient, group: str) -> None:
        self.producer = producer
        self.topic = topic
        self.lag = lag
        self.admin = admin
        self.group = group

    def run(self, pids: list[int], payloads: list[tuple[bytes, bytes]], timeout: float = 600) -> dict[str, object]:
        wait("lag 0 before the backlog", lambda: self.lag() == 0, 300)  # type: ignore[operator]
        before = members(self.admin, self.group)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        t_frozen = time.monotonic()
        try:
            for key, value in payloads:
                self.producer.send(self.topic, key=key, value=value)  # type: ignore[attr-defined]
            self.producer.flush(timeout=120)  # type: ignore[attr-defined]
            lag0 = self.lag()  # type: ignore[operator]
        finally:
            frozen = time.monotonic() - t_frozen
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        t_first = None
        lag_first = lag0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lag = self.lag()  # type: ignore[operator]
            now = time.monotonic()
            if t_first is None and lag < lag0:
                t_first, lag_first = now, lag
            if lag == 0 and t_first is not None:
                elapsed = now - t_first
                return {"events": lag0, "events_per_s": round(lag_first / elapsed, 1), "drain_s": round(elapsed, 2),
                        "frozen_s": round(frozen, 1), "rebalanced": members(self.admin, self.group) != before}
            time.sleep(0.25)
        raise RuntimeError(f"backlog of {lag0} not drained within {timeout:.0f} s (lag {self.lag()})")  # type: ignore[operator]


def produce_at(producer: object, topic: str, rate: float, seconds: float) -> dict[str, float]:
    t0 = time.perf_counter()
    i = 0
    chunk = max(1, int(rate / 50))  # 20 ms slices
    while time.perf_counter() - t0 < seconds:
        for key, value in make_payloads(chunk):
            producer.send(topic, key=key, value=value)  # type: ignore[attr-defined]
        i += chunk
        ahead = t0 + i / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    producer.flush(timeout=60)  # type: ignore[attr-defined]
    return {"target_events_per_s": round(rate, 1), "achieved_events_per_s": round(i / (time.perf_counter() - t0), 1),
            "events": i}


# ----------------------------------------------------------------------------------------------- Spring
def spring_phase(stack: LocalStack, events: int, latency_s: float) -> dict[str, Any]:
    jar = build_jar()
    svc = SpringService(stack, jar)
    # The same path to Kafka as the Python replicas: through the stack's toxiproxy edge.
    env = {"SPRING_KAFKA_BOOTSTRAP_SERVERS": stack.endpoints.kafka_bootstrap_service}
    out: dict[str, Any] = {"jar": str(jar)}
    try:
        first = svc.start(extra_env=env)
        out["startup"] = startup(first)
        others = [svc.start(extra_env=env) for _ in range(2)]
        for r in others:
            wait(f"{r.name} ready", lambda r=r: r.status("/actuator/health/readiness") == 200, 300)
        replicas = [first, *others]
        wait("3 members in the group", lambda: len(members(svc.admin, svc.group)) == 3, 300)
        wait("lag 0", lambda: svc.lag() == 0, 120)
        time.sleep(5)  # let the last rebalance settle
        drain = Drain(svc.producer, svc.topic, svc.lag, svc.admin, svc.group)
        out["drain_3_replicas"] = drain.run([r.proc.pid for r in replicas], make_payloads(events))
        out["rss_after_drain_mib"] = [rss_mib(r.proc.pid) for r in replicas]
        rate = float(out["drain_3_replicas"]["events_per_s"]) / 2
        out["latency_at_half_rate"] = spring_latency(svc, replicas, rate, latency_s)
        out["rss_after_latency_mib"] = [rss_mib(r.proc.pid) for r in replicas]
    finally:
        svc.close()
    return out


def startup(replica: Replica, timeout: float = 300) -> dict[str, float]:
    """Seconds from spawn to readiness 200 and to the first partition assignment; idle RSS 10 s later."""
    t0 = time.monotonic()
    times: dict[str, float] = {}
    while len(times) < 2:
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{replica.name} not ready and assigned within {timeout:.0f} s: {times}")
        if not replica.alive():
            raise RuntimeError(f"{replica.name} exited: {replica.tail()}")
        if "ready_s" not in times and replica.status("/actuator/health/readiness") == 200:
            times["ready_s"] = round(time.monotonic() - t0, 1)
        if "first_assignment_s" not in times and "assigned" in replica.log.read_text(errors="replace"):
            times["first_assignment_s"] = round(time.monotonic() - t0, 1)
        time.sleep(0.2)
    time.sleep(10)
    times["idle_rss_mib"] = rss_mib(replica.proc.pid)
    return times


def spring_latency(svc: SpringService, replicas: list[Replica], rate: float, seconds: float) -> dict[str, object]:
    urls = [r.url + "/actuator/prometheus" for r in replicas]
    names = {"sqlaudit_events_latency_seconds_bucket": "e2e", "sqlaudit_events_processing_seconds_bucket":
             "processing"}
    wait("lag 0", lambda: svc.lag() == 0, 300)
    before = histograms(urls, names)
    result: dict[str, object] = dict(produce_at(svc.producer, svc.topic, rate, seconds))
    wait("lag 0 after the latency phase", lambda: svc.lag() == 0, 300)
    time.sleep(1.0)
    result.update(percentiles(before, histograms(urls, names)))
    return result


# ----------------------------------------------------------------------------------------------- Python
def python_phase(port_base: int, data_dir: Path | None, events: int, rate: float,
                 latency_s: float) -> dict[str, Any]:
    bench = Bench(port_base, data_dir)
    out: dict[str, Any] = {}
    rpc = bench.stack.supervisor.rpc
    try:
        bench.start(bench.replicas)
        name = bench.replicas[0]
        rpc.stopProcess(f"{GROUP}:{name}", True)
        rpc.startProcess(f"{GROUP}:{name}", False)
        ready = wait("Python replica ready", lambda: bench.ready(name), 120)
        time.sleep(10)
        pids = bench.stack.supervisor.process_info()
        out["startup"] = {"ready_s": round(ready, 1), "idle_rss_mib": rss_mib(int(pids[name]["pid"]))}
        wait("3 replicas ready", lambda: all(bench.ready(n) for n in bench.replicas), 120)
        time.sleep(5)
        drain = Drain(bench.producer, bench.ctx.topic, bench.lag, bench.admin, CONSUMER_GROUP)
        replica_pids = [int(pids[n]["pid"]) for n in bench.replicas]
        out["drain_3_replicas"] = drain.run(replica_pids, make_payloads(events))
        out["rss_after_drain_mib"] = [rss_mib(p) for p in replica_pids]
        out["latency_at_same_rate_as_spring"] = bench.latency(rate, latency_s)
        out["rss_after_latency_mib"] = [rss_mib(p) for p in replica_pids]
    finally:
        bench.start(bench.replicas)
        bench.close()
    return out


def report(name: str, r: dict[str, Any]) -> None:
    s, d = r["startup"], r["drain_3_replicas"]
    lat = r.get("latency_at_half_rate") or r["latency_at_same_rate_as_spring"]
    assigned = f", first assignment {s['first_assignment_s']} s" if "first_assignment_s" in s else ""
    print(f"{name:6} start-up: ready {s['ready_s']} s{assigned}; idle RSS {s['idle_rss_mib']} MiB")
    print(f"{name:6} 3 replicas: {d['events_per_s']:>8} events/s ({d['events']} events in {d['drain_s']} s, "
          f"frozen {d['frozen_s']} s, rebalanced {d['rebalanced']}); RSS after {r['rss_after_drain_mib']} MiB")
    print(f"{name:6} latency at {lat['achieved_events_per_s']} events/s: end-to-end p50 {lat['e2e_p50_ms']} ms, "
          f"p95 {lat['e2e_p95_ms']} ms, p99 {lat['e2e_p99_ms']} ms; processing p95 {lat['processing_p95_ms']} ms; "
          f"RSS after {r['rss_after_latency_mib']} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-base", type=int, default=19000, help="port base of a running stack")
    parser.add_argument("--data-dir", type=Path, default=None, help="data dir of the stack, if not the default")
    parser.add_argument("--events", type=int, default=40000, help="backlog size of the throughput phase")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="duration of the latency phase")
    parser.add_argument("--skip-python", action="store_true", help="measure the Spring service only")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    stack = LocalStack(port_base=args.port_base, data_dir=args.data_dir)
    if not stack.is_running():
        raise SystemExit(f"no running stack at port base {args.port_base} (data dir {stack.data_dir})")
    load = os.getloadavg()
    spring = spring_phase(stack, args.events, args.latency_seconds)
    rate = float(spring["drain_3_replicas"]["events_per_s"]) / 2
    python = {} if args.skip_python else python_phase(args.port_base, args.data_dir, args.events, rate,
                                                      args.latency_seconds)
    results = {"spring": spring, "python": python, "load_average_at_start": [round(x, 1) for x in load],
               "load_average_at_end": [round(x, 1) for x in os.getloadavg()]}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, r in (("spring", spring), ("python", python)):
        if r:
            report(name, r)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
