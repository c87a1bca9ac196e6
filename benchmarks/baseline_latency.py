"""Baseline latency of the audit service under steady load, before any fault; prints numbers, asserts nothing.

    .venv/bin/python benchmarks/baseline_latency.py --profile minimal --port-base 20300 --rates 300,3000,7000
    .venv/bin/python benchmarks/baseline_latency.py --profile ha --port-base 20400 --rates 300 \\
        --arm before=/tmp/sar-base --arm after=.

Brings the stack up when it is not running (``--down`` stops and purges it at the end), then, for
each arm and each rate, runs the experiments' own load (``loadtests``: Locust, acks=all, the
ledger off) at a steady rate for ``--seconds`` and prints, over the steady part of that run:

* **exact, per event** (no histogram):
  - ``kafka``: a plain consumer on the service's (proxied) listener: receive time minus the
    record's timestamp, i.e. how long until an event can be read at all;
  - ``stored``: ``stored_at_ms - produced_at_ms`` of every row in ClickHouse (``stored_at_ms`` is
    stamped when the service builds the INSERT, so it is a lower bound of "durable": it excludes
    the ClickHouse and PostgreSQL writes and the offset commit);
  - ``probe producer's stored``: the same for the events of a plain kafka-python producer in an OS
    thread (app ``baseline-probe``, ``--probe-rate`` events/s, the load's producer settings) sent at
    the same time through the same Kafka and service: the difference to ``stored`` is the time the
    load's events spent inside the load generator (Locust, gevent);
* **from Prometheus** (the replicas' histograms, what the judge reads):
  - end-to-end and processing p95 over the whole steady window (``increase``);
  - the data-flow condition's own series: end-to-end p95 over ``rate(...[10s])`` every 0.5 s, its
    median and maximum, and the share of samples under 500 ms (the judge needs 80 % in the
    baseline of ``rto_data_flow``);
  - p95 of the ClickHouse and PostgreSQL batch writes and of the offset commit, and the mean batch size.

An *arm* runs the replicas from another source tree (e.g. a ``git worktree`` of the commit before a
change) in place of the supervised ones, with the same environment, so "before" and "after" are
measured in one run on one machine state. Without ``--arm`` the stack's own replicas are measured.
The load generator of an arm comes from the same tree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from clickhouse_driver import Client
from kafka import KafkaConsumer, TopicPartition

from probes import prom
from stack.components.audit_service import GROUP
from stack.components.base import Component
from stack.core import LocalStack

logger = logging.getLogger("benchmarks.baseline_latency")

SLO_S = 0.5
WARMUP_S = 15.0  # first seconds of each load run left out (producers connecting, first batches)
E2E = "sqlaudit_end_to_end_latency_seconds_bucket"
PROC = "sqlaudit_processing_latency_seconds_bucket"
SEL = 'job="audit-service"'
PROBE_APP = "baseline-probe"


@dataclass
class Arm:
    """Replicas (and load generator) run from ``tree``; ``None``: the stack's own supervised replicas."""

    name: str
    tree: Path | None
    env: dict[str, str] = field(default_factory=dict)


def parse_arm(text: str) -> Arm:
    """``name=PATH[,KEY=VALUE...]`` -> :class:`Arm` (PATH ``-``: the supervised replicas)."""
    name, _, rest = text.partition("=")
    if not name or not rest:
        raise argparse.ArgumentTypeError(f"--arm {text!r}: expected name=PATH[,SQLAUDIT_X=VALUE...]")
    path, *pairs = rest.split(",")
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("SQLAUDIT_"):
            raise argparse.ArgumentTypeError(f"--arm {text!r}: {pair!r} is not SQLAUDIT_X=VALUE")
        env[key] = value
    tree = None if path == "-" else Path(path).resolve()
    if tree is not None and not (tree / "sqlaudit" / "__main__.py").is_file():
        raise argparse.ArgumentTypeError(f"--arm {text!r}: {tree} has no sqlaudit/__main__.py")
    return Arm(name, tree, env)


# ---------------------------------------------------------------------- replicas
class Replicas:
    """The replicas of one arm: the supervised ones, or our own processes from another tree."""

    def __init__(self, stack: LocalStack, arm: Arm, log_dir: Path) -> None:
        self.stack = stack
        self.arm = arm
        self.log_dir = log_dir
        self.comps: list[Component] = [c for c in stack.components() if c.group == GROUP]
        self.procs: list[subprocess.Popen[bytes]] = []

    def _rpc(self) -> Any:
        return self.stack.supervisor.rpc

    def start(self) -> None:
        if self.arm.tree is None and not self.arm.env:
            self._start_supervised()
        else:
            self._stop_supervised()
            tree = self.arm.tree or Path(__file__).resolve().parent.parent
            for comp in self.comps:
                env = {**os.environ, **comp.environment, **self.arm.env, "PYTHONPATH": str(tree)}
                log = open(self.log_dir / f"{self.arm.name}-{comp.name}.log", "ab")  # noqa: SIM115
                self.procs.append(subprocess.Popen([sys.executable, "-m", "sqlaudit"], env=env, cwd=tree,
                                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self._wait_ready()

    def stop(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs = []

    def _start_supervised(self) -> None:
        info = self.stack.supervisor.process_info()
        for comp in self.comps:
            if info[comp.name]["statename"] != "RUNNING":
                self._rpc().startProcess(f"{GROUP}:{comp.name}", True)

    def _stop_supervised(self) -> None:
        info = self.stack.supervisor.process_info()
        for comp in self.comps:
            if info[comp.name]["statename"] == "RUNNING":
                self._rpc().stopProcess(f"{GROUP}:{comp.name}", True)

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for comp in self.comps:
            url = comp.endpoint
            while True:
                with contextlib.suppress(requests.RequestException):
                    if requests.get(url, timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{comp.name} ({self.arm.name}) not ready within {timeout:.0f} s: {url}")
                time.sleep(0.5)


# ------------------------------------------------------------------------- probes
class KafkaWatch(threading.Thread):
    """Reads every partition of the topic (no group) and records receive time minus record timestamp."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(name="kafka-watch", daemon=True)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), client_id="bench-baseline",
                                      enable_auto_commit=False, fetch_max_wait_ms=100, max_poll_records=5000)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.consumer.assign(tps)
        self.consumer.seek_to_end(*tps)
        for tp in tps:
            self.consumer.position(tp)
        self.samples: list[tuple[float, float]] = []  # (record timestamp s, delay s)
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                for recs in self.consumer.poll(timeout_ms=200).values():
                    now = time.time()
                    self.samples.extend((r.timestamp / 1000, now - r.timestamp / 1000) for r in recs)
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    def delays(self, start: float, end: float) -> list[float]:
        return [d for t, d in self.samples if start <= t < end]


def quantiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 (nearest rank) in ms, and the count."""
    if not values:
        return {"n": 0}
    v = sorted(values)

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, max(0, math.ceil(p * len(v)) - 1))] * 1000, 1)

    return {"n": len(v), "p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99), "max_ms": round(v[-1] * 1000, 1)}


def stored_delays(stack: LocalStack, start: float, end: float, probe: bool = False) -> dict[str, float]:
    """Exact p50/p95/p99 of ``stored_at_ms - produced_at_ms`` in ClickHouse for events produced in [start, end):
    the load's events, or (``probe``) only the probe producer's."""
    eps = stack.endpoints
    client = Client(host=eps.clickhouse_host, port=eps.clickhouse_port, database=stack.ctx.ch_database,
                    connect_timeout=5, send_receive_timeout=60)
    try:
        rows = client.execute(
            "SELECT count(), quantilesExact(0.5, 0.95, 0.99)(d), max(d) FROM (SELECT event_id, "
            "min(toInt64(stored_at_ms) - toInt64(produced_at_ms)) AS d FROM audit_events "
            f"WHERE produced_at_ms >= %(s)s AND produced_at_ms < %(e)s AND app {'=' if probe else '!='} %(app)s "
            "GROUP BY event_id)",
            {"s": int(start * 1000), "e": int(end * 1000), "app": PROBE_APP})
    finally:
        client.disconnect()
    n, qs, mx = rows[0]
    if not n:
        return {"n": 0}
    return {"n": int(n), "p50_ms": float(qs[0]), "p95_ms": float(qs[1]), "p99_ms": float(qs[2]), "max_ms": float(mx)}


def probe_producer(bootstrap: str, topic: str, rate: float, seconds: float) -> None:
    """``--probe-producer`` mode: events of app ``baseline-probe`` from a plain kafka-python producer in
    an OS thread (the load's producer settings: acks=all, idempotent, linger 5 ms), no gevent, no Locust.

    Sent at the same time as the load and through the same Kafka and service, they tell how much of
    the load's end-to-end latency is spent inside the load generator.
    """
    from kafka import KafkaProducer

    from sqlaudit.events import SqlEvent, SqlType, now_ms

    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", enable_idempotence=True,
                             linger_ms=5, client_id="bench-probe")
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        event = SqlEvent(event_id=uuid.uuid4(), app=PROBE_APP, database="bench", sql=f"SELECT {i}",
                         sql_type=SqlType.SELECT, duration_ms=1, rows_affected=1, produced_at=now_ms())
        producer.send(topic, key=PROBE_APP.encode(), value=event.to_bytes())
        i += 1
        ahead = t0 + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    producer.flush(timeout=30)
    producer.close(timeout=10)


def prometheus_figures(url: str, start: float, end: float) -> dict[str, Any]:
    """What the replicas' histograms say over [start, end] (see the module docstring)."""
    window = f"{max(1, round(end - start))}s"

    def at_end(query: str) -> float | None:
        try:
            v = prom.instant(url, query, at=end)
        except prom.ProbeError:
            return None
        return None if math.isnan(v) else round(v * 1000, 1)

    out: dict[str, Any] = {
        "e2e_p95_ms": at_end(f"histogram_quantile(0.95, sum by (le) (increase({E2E}{{{SEL}}}[{window}])))"),
        "processing_p95_ms": at_end(f"histogram_quantile(0.95, sum by (le) (increase({PROC}{{{SEL}}}[{window}])))"),
    }
    for sink in ("clickhouse", "postgres"):
        out[f"{sink}_write_p95_ms"] = at_end(
            f'histogram_quantile(0.95, sum by (le) (increase(sqlaudit_sink_write_latency_seconds_bucket'
            f'{{{SEL}, sink="{sink}"}}[{window}])))')
    out["commit_p95_ms"] = at_end(f"histogram_quantile(0.95, sum by (le) (increase("
                                  f"sqlaudit_offset_commit_latency_seconds_bucket{{{SEL}}}[{window}])))")
    try:
        out["batch_mean"] = round(prom.instant(
            url, f"sum(increase(sqlaudit_batch_size_sum{{{SEL}}}[{window}])) / "
                 f"sum(increase(sqlaudit_batch_size_count{{{SEL}}}[{window}]))", at=end), 1)
    except prom.ProbeError:
        out["batch_mean"] = None
    # The data-flow condition's latency half, exactly as probes.evaluate.rto_data_flow samples it.
    query = f"histogram_quantile(0.95, sum by (le) (rate({E2E}{{{SEL}}}[10s])))"
    try:
        values = [v for _, v in prom.range_query(url, query, start + 10, end, step_s=0.5)[0].points]
    except prom.ProbeError:
        values = []
    if values:
        out["e2e_p95_10s"] = {"samples": len(values), "median_ms": round(statistics.median(values) * 1000, 1),
                              "max_ms": round(max(values) * 1000, 1),
                              "under_slo_pct": round(100 * sum(v < SLO_S for v in values) / len(values), 1)}
    return out


# ---------------------------------------------------------------------------- load
def run_load(tree: Path, bootstrap: str, rate: float, seconds: float, run_dir: Path,
             user_rate: float = 100.0) -> dict[str, Any]:
    """The experiments' load from ``tree`` (``loadtests.locust_process.start_load``, ledger off), blocking.

    ``user_rate`` is the most events/s one Locust user (one producer) sends: 100, the experiments'
    value, by default."""
    code = ("import json, sys; from loadtests import locust_process as runner; "
            "h = runner.start_load(sys.argv[1], shape='steady', rate=float(sys.argv[2]), duration=float(sys.argv[3]), "
            "seed=7, ledger_dir='', run_dir=sys.argv[4], user_rate=float(sys.argv[5])); "
            "r = runner.wait_load(h, float(sys.argv[3]) + 60); print(json.dumps(r.as_dict(), default=str))")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", code, bootstrap, str(rate), str(seconds), str(run_dir),
                          str(user_rate)], env=env,
                         cwd=tree, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"load from {tree} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure(stack: LocalStack, arm: Arm, rate: float, seconds: float, work: Path,
            probe_rate: float = 0.0, users: int = 0) -> dict[str, Any]:
    eps = stack.endpoints
    bootstrap = eps.kafka_bootstrap if stack.ctx.profile == "minimal" else _direct_bootstrap(stack)
    tree = arm.tree or Path(__file__).resolve().parent.parent
    watch = KafkaWatch(eps.kafka_bootstrap_service.split(",")[0], stack.ctx.topic, stack.ctx.partitions)
    watch.start()
    run_dir = work / f"load-{arm.name}-{int(rate)}"
    load_before = load_average()
    probe = None
    if probe_rate > 0:
        probe = subprocess.Popen([sys.executable, __file__, "--probe-producer", bootstrap, stack.ctx.topic,
                                  str(probe_rate), str(seconds)], start_new_session=True)
    t0 = time.time()
    try:
        result = run_load(tree, bootstrap, rate, seconds, run_dir, rate / users if users else 100.0)
    finally:
        t1 = time.time()
        if probe is not None:
            try:
                probe.wait(60)
            except subprocess.TimeoutExpired:
                probe.kill()
                probe.wait(5)
        time.sleep(3)  # the last batches flush, Prometheus scrapes them
        watch.stop()
    start, end = t0 + WARMUP_S, t1 - 1.0
    time.sleep(2)
    stats = result.get("stats") or {}
    return {"arm": arm.name, "rate": rate, "users": users or math.ceil(rate / 100), "seconds": seconds,
            "window_s": round(end - start, 1),
            "achieved_eps": round(stats["rps"], 1) if "rps" in stats else None,
            "load_avg": f"{load_before} -> {load_average()}",
            "produce_ack_p95_ms": stats.get("p95_ms"),
            "kafka": quantiles(watch.delays(start, end)),
            "stored": stored_delays(stack, start, end),
            "stored_probe": stored_delays(stack, start, end, probe=True) if probe_rate > 0 else {},
            "prometheus": prometheus_figures(eps.prometheus_url, start, end)}


def _direct_bootstrap(stack: LocalStack) -> str:
    from stack.components.kafka import kafka_bootstrap_direct

    return kafka_bootstrap_direct(stack.ctx)


# ---------------------------------------------------------------------------- main
@contextlib.contextmanager
def running_stack(profile: str, port_base: int, down: bool) -> Iterator[LocalStack]:
    stack = LocalStack(port_base=port_base, profile=profile)
    if stack.is_running():
        if stack.ctx.profile != profile:
            raise SystemExit(f"a {stack.ctx.profile} stack runs at port base {port_base}, not {profile}")
    else:
        print(f"starting a {profile} stack at port base {port_base} ...", flush=True)
        stack.up()
    try:
        yield stack
    finally:
        if down:
            stack.down(purge=True)


def show(r: dict[str, Any]) -> str:
    p = r["prometheus"]
    ten = p.get("e2e_p95_10s", {})
    return (f"{r['arm']:>8} {r['rate']:>6.0f}/s (achieved {r['achieved_eps']}) | exact p95: kafka "
            f"{r['kafka'].get('p95_ms')} ms, stored {r['stored'].get('p95_ms')} ms (p50 {r['stored'].get('p50_ms')}), "
            f"probe producer's stored {r.get('stored_probe', {}).get('p95_ms')} ms | "
            f"prometheus p95: e2e {p['e2e_p95_ms']} ms, processing {p['processing_p95_ms']} ms; "
            f"10 s windows median {ten.get('median_ms')} max {ten.get('max_ms')} ms, "
            f"{ten.get('under_slo_pct')} % < 500 ms | writes p95 CH {p['clickhouse_write_p95_ms']} ms, "
            f"PG {p['postgres_write_p95_ms']} ms, commit {p.get('commit_p95_ms')} ms, batch {p['batch_mean']} | "
            f"produce ack p95 "
            f"{r['produce_ack_p95_ms']} ms | load avg {r['load_avg']}")


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--probe-producer":
        probe_producer(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("minimal", "ha"), default="minimal")
    parser.add_argument("--port-base", type=int, required=True, help="port base of the stack (started if not running)")
    parser.add_argument("--rates", default="300", help="comma-separated events/s, e.g. 300,3000,7000")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of each load run")
    parser.add_argument("--arm", action="append", type=parse_arm, default=[],
                        help="name=PATH[,SQLAUDIT_X=V...]: replicas and load from the tree PATH ('-': supervised); "
                             "repeat to compare; arms alternate per rate")
    parser.add_argument("--repeat", type=int, default=1, help="measure each (rate, arm) this many times, interleaved")
    parser.add_argument("--probe-rate", type=float, default=20.0,
                        help="events/s of a plain (thread, no Locust) producer alongside the load, app "
                             f"{PROBE_APP!r}; 0 disables it")
    parser.add_argument("--users", type=int, default=0,
                        help="Locust users (producers) at every rate; default: the experiments' one per 100 events/s "
                             "(70 producers at 7,000/s cost more CPU than the machine has)")
    parser.add_argument("--down", action="store_true", help="stop and purge the stack at the end")
    parser.add_argument("--json", type=Path, help="also write every result to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the stack's start-up probes retry by design
    arms = args.arm or [Arm("stack", None)]
    rates = [float(r) for r in args.rates.split(",") if r]
    results: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="baseline-latency-"))
    try:
        with running_stack(args.profile, args.port_base, args.down) as stack:
            print(f"{args.profile} stack at port base {args.port_base}; load average {load_average()}", flush=True)
            for rate in rates:
                for _ in range(args.repeat):
                    for arm in arms:
                        reps = Replicas(stack, arm, work)
                        try:
                            reps.start()
                            time.sleep(5)
                            r = measure(stack, arm, rate, args.seconds, work, args.probe_rate, args.users)
                        finally:
                            reps.stop()
                        r["profile"] = args.profile
                        results.append(r)
                        print(show(r), flush=True)
            Replicas(stack, Arm("stack", None), work).start()
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
