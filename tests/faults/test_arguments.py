"""Bad arguments are refused by the public activity, before any backend, with the same message on every target.

No stack or cluster needed: :mod:`faults.engine` is replaced by a tripwire, so a call that reaches
it fails the test. What needs the system (a program that does not exist, an edge already partitioned)
is the backends' to refuse: tests/faults/test_validation.py (local), tests/k8s (kubernetes).
"""

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

import faults
from faults import (
    checker_config,
    clickhouse_down,
    clickhouse_stall,
    engine,
    kafka_broker,
    memory,
    network_latency,
    network_loss,
    network_partition,
    postgres_failover,
    process,
    replicas,
)

BAD: list[tuple[str, Callable[[], Any], str]] = [
    ("unknown edge", lambda: network_partition.partition_network("redis"),
     r"^partition_network: edge='redis': unknown edge; edges: kafka, postgres, clickhouse"),
    ("member 1 is the edge itself", lambda: network_partition.remove_partition("kafka_1"),
     r"^remove_partition: edge='kafka_1': unknown edge"),
    ("unknown mode", lambda: network_partition.partition_network("kafka", "flood"),
     r"^partition_network: mode='flood': unknown mode; modes: blackhole, reset, refuse$"),
    ("negative duration", lambda: network_partition.partition_network("kafka", duration=-1),
     r"^partition_network: duration=-1: expected a number of seconds > 0"),
    ("duration as text", lambda: network_loss.add_packet_loss("kafka", 10, duration="10s"),
     r"^add_packet_loss: duration='10s': expected a number of seconds > 0"),
    ("zero latency", lambda: network_latency.add_latency("postgres", 0),
     r"^add_latency: latency_ms=0: expected an integer >= 1$"),
    ("fractional latency", lambda: network_latency.add_latency("postgres", 2.5),
     r"^add_latency: latency_ms=2.5: expected an integer >= 1$"),
    ("jitter above latency", lambda: network_latency.add_latency("postgres", 10, 50),
     r"^add_latency: jitter_ms=50: expected an integer in 0..10 \(latency_ms\)$"),
    ("bad stream", lambda: network_latency.add_latency("postgres", 10, stream="sideways"),
     r"^add_latency: stream='sideways': expected upstream, downstream or both$"),
    ("latency remove of an unknown edge", lambda: network_latency.remove_latency("redis"),
     r"^remove_latency: edge='redis'"),
    ("loss above 100", lambda: network_loss.add_packet_loss("kafka", 150),
     r"^add_packet_loss: loss_percent=150: expected a number in \(0, 100\]$"),
    ("loss as a boolean", lambda: network_loss.add_packet_loss("kafka", True),
     r"^add_packet_loss: loss_percent=True"),
    ("negative timeout", lambda: network_loss.add_packet_loss("kafka", 10, timeout_ms=-1),
     r"^add_packet_loss: timeout_ms=-1: expected an integer >= 0$"),
    ("empty program", lambda: process.kill_process(""), r"^kill_process: program='': expected a non-empty name$"),
    ("graceful as text", lambda: process.kill_process("kafka", "false"),  # type: ignore[arg-type]
     r"^kill_process: graceful='false': expected true or false$"),
    ("duration with SIGKILL", lambda: process.kill_process("kafka", duration=5),
     r"^kill_process: duration=5.0: duration only applies to graceful=true"),
    ("count and percentage", lambda: replicas.kill_replicas(count=1, percentage=10),
     r"^kill_replicas: count=1, percentage=10: give exactly one of count or percentage$"),
    ("neither count nor percentage", lambda: replicas.kill_replicas(),
     r"give exactly one of count or percentage"),
    ("zero count", lambda: replicas.kill_replicas(count=0), r"^kill_replicas: count=0: expected an integer >= 1$"),
    ("percentage 0", lambda: replicas.kill_replicas(percentage=0), r"^kill_replicas: percentage=0: expected"),
    ("replicas held down without graceful", lambda: replicas.kill_replicas(count=1, duration=5),
     r"^kill_replicas: duration=5.0: duration only applies to graceful=true"),
    ("restore of no group", lambda: replicas.restore_replicas(""), r"^restore_replicas: group=''"),
    ("unknown postgres method", lambda: postgres_failover.fail_over_postgres("drop"),
     r"^fail_over_postgres: method='drop': unknown method; methods: stop, kill, switchover$"),
    ("postgres kill with duration", lambda: postgres_failover.fail_over_postgres("kill", 5),
     r"^fail_over_postgres: duration=5.0: duration only applies to method=stop"),
    ("negative broker", lambda: kafka_broker.stop_kafka_broker(-1),
     r"^stop_kafka_broker: broker=-1: expected an integer >= 0$"),
    ("broker by name", lambda: kafka_broker.start_kafka_broker("kafka-2"),  # type: ignore[arg-type]
     r"^start_kafka_broker: broker='kafka-2'"),
    ("replica as text", lambda: clickhouse_down.stop_clickhouse(replica="1"),  # type: ignore[arg-type]
     r"^stop_clickhouse: replica='1': expected an integer >= 0$"),
    ("resume of a negative replica", lambda: clickhouse_stall.resume_clickhouse(-2), r"^resume_clickhouse: replica=-2"),
    ("stall of 0 s", lambda: clickhouse_stall.stall_clickhouse(0), r"^stall_clickhouse: duration=0"),
    ("memory limit 0", lambda: memory.oom_kill_replica(limit_mb=0), r"^oom_kill_replica: limit_mb=0"),
    ("checker value as text", lambda: checker_config.change_checker_threshold("slow_query", "threshold_ms", "many"),
     r"^change_checker_threshold: value='many': expected a number$"),
]


@pytest.fixture(autouse=True)
def _tripwire(monkeypatch: pytest.MonkeyPatch) -> None:
    def reached(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a bad call reached the engine: {args}")

    monkeypatch.setattr(engine, "inject", reached)
    monkeypatch.setattr(engine, "remove", reached)


@pytest.mark.parametrize(("call", "message"), [(c, m) for _, c, m in BAD], ids=[i for i, _, _ in BAD])
def test_a_bad_argument_is_refused_before_the_engine(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ActivityFailed, match=message):
        call()


def test_arguments_reach_the_engine_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(engine, "inject", lambda _m, _f, arguments, *a, **k: seen.append(arguments))
    network_latency.add_latency("kafka_2", 200.0, 20, "both", 30)
    replicas.kill_replicas(percentage=50)
    assert seen == [{"edge": "kafka_2", "latency_ms": 200, "jitter_ms": 20, "stream": "both", "duration": 30.0},
                    {"count": None, "percentage": 50.0, "graceful": False, "group": "audit-service",
                     "allow_all": False, "duration": None}]
    assert type(seen[0]["latency_ms"]) is int


def _fault_calls(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict):
        if doc.get("type") == "python" and doc.get("module") in faults.ACTIVITY_MODULES:
            yield doc
        for value in doc.values():
            yield from _fault_calls(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _fault_calls(value)


EXPERIMENTS = sorted((Path(faults.__file__).resolve().parent.parent / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_fault_call_of_the_experiments_passes_the_checks(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    reached: list[str] = []
    monkeypatch.setattr(engine, "inject", lambda _m, function, *a, **k: reached.append(function))
    monkeypatch.setattr(engine, "remove", lambda _m, function, *a, **k: reached.append(function))
    monkeypatch.setattr(engine, "act", lambda _m, function, *a, **k: reached.append(function))
    calls = list(_fault_calls(yaml.safe_load(path.read_text())))
    for call in calls:
        getattr(importlib.import_module(call["module"]), call["func"])(**call.get("arguments", {}))
    assert reached == [c["func"] for c in calls]
