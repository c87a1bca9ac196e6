"""Throughput and latency of the audit service on a running local stack; prints numbers, asserts nothing.

    .venv/bin/resilience up --port-base 19100
    .venv/bin/python benchmarks/service_throughput.py --port-base 19100 [--events 40000] [--latency-seconds 30]

Measures, in one run:

1. events/s processed end to end (consumed -> durable in ClickHouse and PostgreSQL -> committed) by
   1 replica, then by 3 replicas: a backlog of ``--events`` events is produced while the replicas are
   stopped, then they are started and the time from the first commit to zero lag is measured;
2. a raw kafka-python consumer reading the same backlog (same proxied listener, no processing):
   the service's overhead is the ratio;
3. p95 processing latency (polled -> durable) and end-to-end latency (produced_at -> durable) at half
   the 3-replica rate, from the replicas' histograms (bucket deltas, linear interpolation).

Replicas are stopped and started through the stack's supervisor and all restarted at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import time
import uuid
from pathlib import Path

import requests
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from sqlaudit.events import SqlEvent, SqlType, now_ms
from stack.components.audit_service import GROUP, replica_name
from stack.core import LocalStack
from stack.endpoints import CONSUMER_GROUP

logger = logging.getLogger("benchmarks.service_throughput")

APPS = [f"bench-app-{i}" for i in range(30)]


def make_payloads(n: int, produced_at: int | None = None) -> list[tuple[bytes, bytes]]:
    """``n`` (key, value) pairs with a realistic mix: mostly fast SELECTs, some slow, some DML, a few errors."""
    rnd = random.Random(42)
    out = []
    for i in range(n):
        app = APPS[i % len(APPS)]
        kind = rnd.random()
        if kind < 0.7:
            sql, st, rows = f"SELECT * FROM orders WHERE id = {rnd.randint(1, 10**6)}", SqlType.SELECT, 1
        elif kind < 0.9:
            sql, st, rows = f"UPDATE stock SET n = n - 1 WHERE sku = '{rnd.randint(1, 5000)}'", SqlType.UPDATE, 1
        else:
            sql, st, rows = f"DELETE FROM carts WHERE age > {rnd.randint(1, 90)}", SqlType.DELETE, rnd.randint(0, 3000)
        event = SqlEvent(event_id=uuid.uuid4(), app=app, database="shop", sql=sql, sql_type=st,
                         duration_ms=rnd.choice([1, 2, 5, 10, 50, 1500]), rows_affected=rows,
                         error_code="40001" if rnd.random() < 0.02 else None,
                         produced_at=produced_at if produced_at is not None else now_ms())
        out.append((app.encode(), event.to_bytes()))
    return out


class Bench:
    def __init__(self, port_base: int, data_dir: Path | None) -> None:
        self.stack = LocalStack(port_base=port_base, data_dir=data_dir)
        if not self.stack.is_running():
            raise SystemExit(f"no running stack at port base {port_base} (data dir {self.stack.data_dir})")
        self.ctx = self.stack.ctx
        self.eps = self.stack.endpoints
        self.replicas = [replica_name(i) for i in range(self.ctx.replicas)]
        self.producer = KafkaProducer(bootstrap_servers=self.eps.kafka_bootstrap, acks="all", linger_ms=20,
                                      batch_size=256 * 1024, client_id="bench-producer")
        self.admin = KafkaAdminClient(bootstrap_servers=self.eps.kafka_bootstrap, client_id="bench-lag",
                                      request_timeout_ms=5000)
        self.offsets = KafkaConsumer(bootstrap_servers=self.eps.kafka_bootstrap, client_id="bench-offsets")

    def close(self) -> None:
        self.producer.close(timeout=30)
        self.admin.close()
        self.offsets.close()

    # ------------------------------------------------------------ replicas
    def stop(self, names: list[str]) -> None:
        rpc = self.stack.supervisor.rpc
        for n in names:
            if self.stack.supervisor.process_info()[n]["statename"] == "RUNNING":
                rpc.stopProcess(f"{GROUP}:{n}", True)

    def start(self, names: list[str]) -> None:
        rpc = self.stack.supervisor.rpc
        for n in names:
            if self.stack.supervisor.process_info()[n]["statename"] != "RUNNING":
                rpc.startProcess(f"{GROUP}:{n}", False)

    def ready(self, name: str) -> bool:
        port = self.eps.replica_port(int(name.rsplit("-", 1)[1]))
        try:
            return requests.get(f"http://127.0.0.1:{port}/actuator/health/readiness", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # --------------------------------------------------------------- kafka
    def tps(self) -> list[TopicPartition]:
        return [TopicPartition(self.ctx.topic, p) for p in range(self.ctx.partitions)]

    def end_offsets(self) -> dict[TopicPartition, int]:
        return self.offsets.end_offsets(self.tps())  # type: ignore[no-any-return]

    def lag(self) -> int:
        committed = self.admin.list_group_offsets(CONSUMER_GROUP)[CONSUMER_GROUP]
        ends = self.end_offsets()
        return sum(ends[tp] - max(0, committed[tp].offset if tp in committed else 0) for tp in self.tps())

    def produce(self, payloads: list[tuple[bytes, bytes]]) -> float:
        t0 = time.perf_counter()
        for key, value in payloads:
            self.producer.send(self.ctx.topic, key=key, value=value)
        self.producer.flush(timeout=120)
        return len(payloads) / (time.perf_counter() - t0)

    # ------------------------------------------------------------- phases
    def drain_rate(self, replicas: list[str], events: int, timeout: float = 600) -> dict[str, float]:
        """Produce a backlog with every replica stopped, start ``replicas``, time the drain."""
        self.stop(self.replicas)
        backlog_start = self.end_offsets()
        produce_rate = self.produce(make_payloads(events))
        lag0 = self.lag()
        self.start(replicas)
        deadline = time.monotonic() + timeout
        t_first = None
        lag_first = lag0
        while time.monotonic() < deadline:
            lag = self.lag()
            now = time.perf_counter()
            if t_first is None and lag < lag0:
                t_first, lag_first = now, lag
            if lag == 0 and t_first is not None:
                elapsed = now - t_first
                return {"replicas": len(replicas), "events": events, "backlog": lag0,
                        "events_per_s": round((lag_first - 0) / elapsed, 1), "drain_s": round(elapsed, 2),
                        "produce_events_per_s": round(produce_rate, 1),
                        "backlog_start": {str(tp.partition): o for tp, o in backlog_start.items()}}  # type: ignore[dict-item]
            time.sleep(0.25)
        raise RuntimeError(f"backlog of {lag0} not drained by {replicas} within {timeout:.0f} s (lag {self.lag()})")

    def raw_rate(self, start: dict[TopicPartition, int], end: dict[TopicPartition, int]) -> dict[str, float]:
        """A plain kafka-python consumer (no group, no processing) over the same records, same proxied listener."""
        consumer = KafkaConsumer(bootstrap_servers=self.eps.kafka_bootstrap_service, client_id="bench-raw",
                                 enable_auto_commit=False, max_poll_records=500, fetch_max_wait_ms=100)
        try:
            consumer.assign(self.tps())
            for tp in self.tps():
                consumer.seek(tp, start[tp])
            want = sum(end[tp] - start[tp] for tp in self.tps())
            n = 0
            t0 = time.perf_counter()
            while n < want:
                for tp, recs in consumer.poll(timeout_ms=500).items():
                    n += sum(1 for r in recs if r.offset < end[tp])
                if time.perf_counter() - t0 > 300:
                    raise RuntimeError(f"raw consumer read {n}/{want} in 300 s")
            elapsed = time.perf_counter() - t0
            return {"events": want, "events_per_s": round(want / elapsed, 1), "seconds": round(elapsed, 2)}
        finally:
            consumer.close()

    def histograms(self) -> dict[str, dict[float, float]]:
        """Cumulative bucket counts of the two latency histograms, summed over replicas."""
        out: dict[str, dict[float, float]] = {"processing": {}, "e2e": {}}
        names = {"sqlaudit_processing_latency_seconds_bucket": "processing",
                 "sqlaudit_end_to_end_latency_seconds_bucket": "e2e"}
        pat = re.compile(r'^(\w+)\{[^}]*le="([^"]+)"[^}]*\} (\S+)$', re.M)
        for name in self.replicas:
            port = self.eps.replica_port(int(name.rsplit("-", 1)[1]))
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            for m in pat.finditer(text):
                if m.group(1) in names:
                    le = float("inf") if m.group(2) == "+Inf" else float(m.group(2))
                    d = out[names[m.group(1)]]
                    d[le] = d.get(le, 0.0) + float(m.group(3))
        return out

    def latency(self, rate: float, seconds: float) -> dict[str, float]:
        """Produce at ``rate`` for ``seconds`` with every replica running; p50/p95/p99 from histogram deltas."""
        self.start(self.replicas)
        deadline = time.monotonic() + 120
        while not all(self.ready(n) for n in self.replicas):
            if time.monotonic() > deadline:
                raise RuntimeError("replicas not ready within 120 s")
            time.sleep(0.5)
        while self.lag() > 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        before = self.histograms()
        t0 = time.perf_counter()
        i = 0
        chunk = max(1, int(rate / 50))  # send in 20 ms slices
        while time.perf_counter() - t0 < seconds:
            for key, value in make_payloads(chunk):
                self.producer.send(self.ctx.topic, key=key, value=value)
            i += chunk
            ahead = t0 + i / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        self.producer.flush(timeout=60)
        achieved = i / (time.perf_counter() - t0)
        drain_deadline = time.monotonic() + 120
        while self.lag() > 0 and time.monotonic() < drain_deadline:
            time.sleep(0.5)
        time.sleep(1.0)
        after = self.histograms()
        result: dict[str, float] = {"target_events_per_s": round(rate, 1), "achieved_events_per_s": round(achieved, 1),
                                    "events": i}
        for kind in ("processing", "e2e"):
            delta = {le: after[kind].get(le, 0) - before[kind].get(le, 0) for le in after[kind]}
            for q in (0.5, 0.95, 0.99):
                result[f"{kind}_p{int(q * 100)}_ms"] = round(quantile(delta, q) * 1000, 1)
        return result


def quantile(cumulative: dict[float, float], q: float) -> float:
    """Prometheus-style histogram_quantile over cumulative bucket counts (linear inside a bucket)."""
    les = sorted(cumulative)
    total = cumulative[les[-1]] if les else 0
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le in les:
        count = cumulative[le]
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_count) / max(count - prev_count, 1e-9))
        prev_le, prev_count = le, count
    return les[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-base", type=int, default=19000, help="port base of a running stack")
    parser.add_argument("--data-dir", type=Path, default=None, help="data dir of the stack, if not the default")
    parser.add_argument("--events", type=int, default=40000, help="backlog size per throughput phase")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="duration of the latency phase")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bench = Bench(args.port_base, args.data_dir)
    results: dict[str, object] = {}
    try:
        one = bench.drain_rate(bench.replicas[:1], args.events)
        three = bench.drain_rate(bench.replicas, args.events)
        backlog_start: dict[str, int] = three.pop("backlog_start")  # type: ignore[assignment]
        start = {tp: int(backlog_start[str(tp.partition)]) for tp in bench.tps()}
        one.pop("backlog_start")
        raw = bench.raw_rate(start, bench.end_offsets())  # nothing else produced since the 3-replica backlog
        lat = bench.latency(float(three["events_per_s"]) / 2, args.latency_seconds)
        results = {"service_1_replica": one, "service_3_replicas": three, "raw_consumer": raw,
                   "overhead_ratio_3_replicas": round(raw["events_per_s"] / three["events_per_s"], 2),
                   "latency_at_half_rate": lat}
    finally:
        bench.start(bench.replicas)
        bench.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"service, 1 replica : {one['events_per_s']:>9.0f} events/s  ({one['backlog']} events in {one['drain_s']} s)")
    print(f"service, 3 replicas: {three['events_per_s']:>9.0f} events/s  ({three['backlog']} events in "
          f"{three['drain_s']} s)")
    print(f"raw consumer       : {raw['events_per_s']:>9.0f} events/s  ({raw['events']} events in {raw['seconds']} s)")
    print(f"overhead (raw / 3 replicas): {results['overhead_ratio_3_replicas']}x")
    print(f"latency at {lat['achieved_events_per_s']:.0f} events/s (target {lat['target_events_per_s']:.0f}, "
          f"{lat['events']} events): processing p50 {lat['processing_p50_ms']} ms, p95 {lat['processing_p95_ms']} ms, "
          f"p99 {lat['processing_p99_ms']} ms; end-to-end p50 {lat['e2e_p50_ms']} ms, p95 {lat['e2e_p95_ms']} ms, "
          f"p99 {lat['e2e_p99_ms']} ms")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
