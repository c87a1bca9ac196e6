"""Bad calls fail clearly and inject nothing; dry runs change nothing."""

from pathlib import Path
from typing import Any

import pytest
import requests
from chaoslib.exceptions import ActivityFailed

from faults import (
    backup,
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
from stack.core import LocalStack
from tests.faults.conftest import baseline_problems

pytestmark = pytest.mark.stack


def _snapshot(stack: LocalStack) -> tuple[Any, Any]:
    proxies = requests.get(f"{stack.endpoints.toxiproxy_url}/proxies", timeout=5).json()
    pids = {n: (i["statename"], i["pid"]) for n, i in stack.supervisor.process_info().items()}
    return proxies, pids


BAD_CALLS = [
    ("unknown edge", lambda c: network_partition.partition_network("redis", configuration=c),
     "edge='redis': unknown edge"),
    ("no second member on minimal", lambda c: network_partition.partition_network("clickhouse_2", configuration=c),
     "has no proxy for 'clickhouse_2'"),
    ("unknown mode", lambda c: network_partition.partition_network("kafka", "flood", configuration=c),
     "mode='flood': unknown mode"),
    ("negative duration", lambda c: network_partition.partition_network("kafka", duration=-1, configuration=c),
     "expected a number of seconds > 0"),
    ("bad latency", lambda c: network_latency.add_latency("postgres", 0, configuration=c), "latency_ms=0"),
    ("jitter > latency", lambda c: network_latency.add_latency("postgres", 10, 50, configuration=c), "jitter_ms=50"),
    ("bad stream", lambda c: network_latency.add_latency("postgres", 10, stream="sideways", configuration=c),
     "stream='sideways'"),
    ("loss > 100", lambda c: network_loss.add_packet_loss("kafka", 150, configuration=c), "loss_percent=150"),
    ("unknown program", lambda c: process.kill_process("nginx", configuration=c), "no supervised program 'nginx'"),
    ("duration with SIGKILL", lambda c: process.kill_process("kafka", duration=5, configuration=c),
     "duration only applies to graceful"),
    ("unknown group", lambda c: replicas.kill_replicas(count=1, group="no-such-group", configuration=c),
     "no supervisor group 'no-such-group'"),
    ("count and percentage", lambda c: replicas.kill_replicas(count=1, percentage=10, group="infra", configuration=c),
     "exactly one of count or percentage"),
    ("zero count", lambda c: replicas.kill_replicas(count=0, group="infra", configuration=c), "count=0"),
    ("blast radius count", lambda c: replicas.kill_replicas(count=99, group="infra", configuration=c),
     r"blast radius: 99 of \d+ exceeds the limit"),
    ("blast radius percentage", lambda c: replicas.kill_replicas(percentage=100, group="infra", configuration=c),
     r"blast radius: (\d+) of \1 exceeds the limit"),
    ("blast radius cap", lambda c: replicas.kill_replicas(count=2, group="infra",
                                                          configuration={**c, "max_replicas_killed": 1}),
     "exceeds the limit of 1"),
    ("no switchover without a standby", lambda c: postgres_failover.fail_over_postgres("switchover", configuration=c),
     "method 'switchover' needs a standby to switch over to"),
    ("kill with duration", lambda c: postgres_failover.fail_over_postgres("kill", 5, configuration=c),
     "duration only applies to method=stop"),
    ("no broker 2", lambda c: kafka_broker.stop_kafka_broker(2, configuration=c), "has one broker"),
    ("unknown target", lambda c: clickhouse_down.stop_clickhouse(configuration={**c, "target": "docker"}),
     "target='docker'"),
    ("graceful replicas need graceful", lambda c: replicas.kill_replicas(count=1, group="infra", duration=5,
                                                                         configuration=c),
     "duration only applies to graceful"),
    ("no kubernetes backend",
     lambda c: backup.take_backup(configuration={**c, "target": "kubernetes"}),
     "no 'kubernetes' backend"),
    ("bad dry_run value", lambda c: clickhouse_stall.stall_clickhouse(configuration={**c, "dry_run": "maybe"}),
     "dry_run='maybe'"),
]


@pytest.mark.parametrize(("call", "message"), [(c, m) for _, c, m in BAD_CALLS], ids=[i for i, _, _ in BAD_CALLS])
def test_bad_call_fails_clearly_and_injects_nothing(stack: LocalStack, config: dict[str, Any], state_dir: Path,
                                                    call: Any, message: str) -> None:
    before = _snapshot(stack)
    with pytest.raises(ActivityFailed, match=message):
        call(config)
    assert _snapshot(stack) == before
    assert journal.entries(state_dir) == []
    assert baseline_problems(stack) == []


def test_inject_twice_is_refused_and_the_first_stays(stack: LocalStack, config: dict[str, Any],
                                                     state_dir: Path) -> None:
    try:
        network_partition.partition_network("postgres", configuration=config)
        with pytest.raises(ActivityFailed, match="already partitioned"):
            network_partition.partition_network("postgres", "refuse", configuration=config)
        assert [e["status"] for _, e in journal.entries(state_dir)] == ["active"]
    finally:
        network_partition.remove_partition("postgres", configuration=config)


DRY_RUNS = [
    lambda c: network_partition.partition_network("kafka", configuration=c),
    lambda c: network_partition.partition_network("postgres", "refuse", configuration=c),
    lambda c: network_latency.add_latency("clickhouse", 200, 20, "both", configuration=c),
    lambda c: network_loss.add_packet_loss("kafka", 30, configuration=c),
    lambda c: process.kill_process("kafka", configuration=c),
    lambda c: process.kill_process("prometheus", True, 5, configuration=c),
    lambda c: replicas.kill_replicas(count=2, group="infra", configuration=c),
    lambda c: postgres_failover.fail_over_postgres("stop", 10, configuration=c),
    lambda c: postgres_failover.fail_over_postgres("kill", configuration=c),
    lambda c: clickhouse_stall.stall_clickhouse(5, configuration=c),
    lambda c: clickhouse_down.stop_clickhouse(configuration=c),
    lambda c: kafka_broker.stop_kafka_broker(configuration=c),
]


def test_dry_run_changes_nothing(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    dry = {**config, "dry_run": True}
    before = _snapshot(stack)
    for call in DRY_RUNS:
        result = call(dry)
        assert result["dry_run"] is True and result["plan"]["would"], result
    for remove in (lambda c: network_partition.remove_partition("kafka", configuration=c),
                   lambda c: replicas.restore_replicas("infra", configuration=c),
                   lambda c: clickhouse_stall.resume_clickhouse(configuration=c)):
        assert remove(dry)["dry_run"] is True
    assert _snapshot(stack) == before
    assert journal.entries(state_dir) == []
    assert not state_dir.exists() or not any(state_dir.rglob("*.json"))


def test_the_documented_configuration_keys_are_the_settings_models() -> None:
    """docs/faults.md shows the table the settings model renders (python -m target.settings), whole."""
    from pathlib import Path

    from target.settings import render_keys_table

    doc = (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()
    assert render_keys_table() in doc, "run: python -m target.settings, and paste it into docs/faults.md"
