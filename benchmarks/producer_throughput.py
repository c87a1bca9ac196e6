"""Producer throughput into the local stack's Kafka, acks=all, one record size for every path.

Measures acknowledged events per second for:

  (a)  the Locust user path (loadtests/locustfile.py via loadtests.locust_process), with and without the ledger
  (b)  a plain kafka-python producer loop, with and without ledger writes in the callback
  (c)  Kafka's own org.apache.kafka.tools.ProducerPerformance from the broker jars
  (d)  a plain confluent-kafka (librdkafka) loop, if confluent-kafka is installed

Each path writes ``--num-records`` records of the generator's events into a fresh
6-partition topic (like sql-audit-events). Path (a) produces generated events
(about ``record size`` bytes on average); (b), (c) and (d) send pre-built records of
that same average size. Prints one table; nothing is asserted.

    .venv/bin/resilience up --port-base 19200
    .venv/bin/python benchmarks/producer_throughput.py --port-base 19200 --num-records 50000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from loadtests.generator import GeneratorConfig, SqlEventGenerator
from loadtests.ledger import LedgerWriter, read_ledger
from loadtests.locust_process import start_load, stop_load, wait_load
from stack.context import Tools
from stack.endpoints import Endpoints

PRODUCER = {"acks": "all", "enable_idempotence": True, "linger_ms": 5, "batch_size": 16384,
            "max_in_flight_requests_per_connection": 5, "allow_auto_create_topics": False}


def new_topic(bootstrap: str, partitions: int = 6) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)], timeout_ms=10000)
    finally:
        admin.close()
    time.sleep(1.0)  # leaders elected
    return name


def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.delete_topics(names, timeout_ms=10000)
    finally:
        admin.close()


def payloads(n: int, seed: int = 1) -> tuple[list[tuple[bytes, bytes]], int]:
    gen = SqlEventGenerator(GeneratorConfig(seed=seed))
    out = []
    for _ in range(n):
        ev = gen.next().event
        out.append((ev.app.encode(), ev.to_bytes()))
    avg = round(sum(len(v) for _, v in out) / n)
    return out, avg


def fixed_size(records: list[tuple[bytes, bytes]], size: int) -> list[tuple[bytes, bytes]]:
    """Pad/truncate every value to ``size`` bytes (same record size as ProducerPerformance)."""
    return [(k, (v + b" " * size)[:size]) for k, v in records]


def kafka_python_loop(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]],
                      ledger_dir: Path | None) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER)
    ledger = LedgerWriter(ledger_dir, "bench") if ledger_dir else None
    acked = [0]
    done = threading.Event()
    n = len(records)

    def on_ack(eid: str, md: object) -> None:
        acked[0] += 1
        if ledger is not None:
            ledger.ack(eid, md.topic, md.partition, md.offset, 0)  # type: ignore[attr-defined]
        if acked[0] == n:
            done.set()

    ids = [str(uuid.uuid4()) for _ in range(n)]
    producer.send(topic, value=b"warm-up").get(timeout=10)
    start = time.perf_counter()
    for (key, value), eid in zip(records, ids, strict=True):
        producer.send(topic, value=value, key=key).add_callback(on_ack, eid)
    producer.flush(timeout=120)
    done.wait(timeout=120)
    elapsed = time.perf_counter() - start
    producer.close(timeout=10)
    if ledger is not None:
        ledger.close()
    assert acked[0] == n, f"only {acked[0]}/{n} acked"
    return n / elapsed


def confluent_loop(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float | None:
    try:
        from confluent_kafka import Producer
    except ImportError:
        return None
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "batch.size": 16384})
    acked = [0]

    def on_delivery(err: object, _msg: object) -> None:
        if err is None:
            acked[0] += 1

    producer.produce(topic, b"warm-up")
    producer.flush(10)
    acked[0] = 0
    start = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    assert acked[0] == len(records), f"only {acked[0]}/{len(records)} acked"
    return len(records) / elapsed


def producer_performance(tools: Tools, bootstrap: str, topic: str, n: int, size: int) -> float:
    cmd = [tools.java, "-Xmx512m", "-cp", f"{tools.kafka_libs}/*", "org.apache.kafka.tools.ProducerPerformance",
           "--topic", topic, "--num-records", str(n), "--record-size", str(size), "--throughput", "-1",
           "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", "enable.idempotence=true",
           "linger.ms=5", "batch.size=16384"]
    print("    $ " + " ".join([*cmd[:2], "-cp", "'<kafka libs>/*'", *cmd[4:]]), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    last = out.strip().splitlines()[-1]
    match = re.search(r"([\d.]+) records/sec", last)
    assert match, out
    return float(match.group(1))


def locust_path(bootstrap: str, topic: str, n: int, ledger: bool, users: int, workers: int) -> float:
    run_dir = Path(tempfile.mkdtemp(prefix="bench-locust-"))
    rate = 100_000.0  # far above what one process reaches: the users never wait
    handle = start_load(bootstrap, "steady", rate=rate, duration=600, seed=1, topic=topic, max_events=n,
                        run_dir=str(run_dir), ledger_dir=None if ledger else "", workers=workers,
                        user_rate=rate / users)
    try:
        result = wait_load(handle, timeout=600)
    finally:
        stop_load(handle)
    stats = json.loads((run_dir / "stats.json").read_text())
    requests = sum(e["num_requests"] for e in stats)
    failures = sum(e["num_failures"] for e in stats)
    assert requests == n and failures == 0, (requests, failures, result.exit_code)
    start = min(e["start_time"] for e in stats)
    last = max(e["last_request_timestamp"] for e in stats)
    if ledger:
        assert read_ledger(run_dir / "ledger").count == n
    return n / (last - start)


def measure(name: str, fn: Callable[[], float | None], results: dict[str, float | None]) -> None:
    print(f"  {name} ...", flush=True)
    results[name] = fn()
    value = results[name]
    print(f"  {name}: {value:,.0f} events/s" if value else f"  {name}: not measured", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-base", type=int, default=19200, help="port base of a running local stack")
    parser.add_argument("--num-records", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=4, help="Locust users (producers) per process in (a)")
    args = parser.parse_args()
    bootstrap = Endpoints(args.port_base).kafka_bootstrap
    tools = Tools.discover()
    n = args.num_records
    records, size = payloads(n)
    fixed = fixed_size(records, size)
    print(f"Kafka {bootstrap}, {n} records of {size} bytes (generated events average), acks=all, "
          f"idempotent, linger 5 ms; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    topics: list[str] = []

    def topic() -> str:
        topics.append(new_topic(bootstrap))
        return topics[-1]

    results: dict[str, float | None] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            measure("(c) ProducerPerformance (Java)",
                    lambda: producer_performance(tools, bootstrap, topic(), n, size), results)
            measure("(b) kafka-python loop", lambda: kafka_python_loop(bootstrap, topic(), fixed, None), results)
            measure("(b+L) kafka-python loop + ledger",
                    lambda: kafka_python_loop(bootstrap, topic(), fixed, Path(tmp) / "l"), results)
            measure("(d) confluent-kafka loop", lambda: confluent_loop(bootstrap, topic(), fixed), results)
            measure(f"(a) Locust, 1 process x {args.users} users, no ledger",
                    lambda: locust_path(bootstrap, topic(), n, False, args.users, 0), results)
            measure(f"(a+L) Locust, 1 process x {args.users} users, ledger",
                    lambda: locust_path(bootstrap, topic(), n, True, args.users, 0), results)
            measure(f"(a2+L) Locust, 2 workers x {args.users // 2} users, ledger",
                    lambda: locust_path(bootstrap, topic(), n, True, args.users, 2), results)
    finally:
        delete_topics(bootstrap, topics)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
