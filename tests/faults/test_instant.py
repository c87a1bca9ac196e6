"""Which faults are over the moment they happen (``instant``), and the fault window that follows from it.

No stack needed: the public activities are called with :func:`faults.engine.inject` recorded (what
each one decides from its own arguments), and the engine is run once with a stand-in backend (what
it writes to the journal and the window :func:`faults.journal.fault_window` reads back).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faults import (
    checker_config,
    clickhouse_down,
    clickhouse_stall,
    engine,
    journal,
    kafka_broker,
    memory,
    network_latency,
    network_loss,
    network_partition,
    postgres_failover,
    process,
    replica_hang,
    replicas,
)
from target.settings import resolve


def rule_before_the_split(action: str, params: dict[str, Any]) -> bool:
    """The rule ``resilience/runner.py:_fault_window`` applied by action name until the journal stored ``instant``."""
    return bool((action.endswith(("kill_replicas", "kill_process")) and not params.get("graceful"))
                or params.get("method") == "kill" or action.endswith("oom_kill_replica"))


CALLS: list[tuple[str, Callable[[], Any], bool]] = [
    ("kill_replicas SIGKILL", lambda: replicas.kill_replicas(count=1), True),
    ("kill_replicas percentage", lambda: replicas.kill_replicas(percentage=50), True),
    ("kill_replicas graceful", lambda: replicas.kill_replicas(count=1, graceful=True), False),
    ("kill_replicas graceful, held down", lambda: replicas.kill_replicas(count=1, graceful=True, duration=5), False),
    ("kill_process SIGKILL", lambda: process.kill_process("kafka"), True),
    ("kill_process graceful", lambda: process.kill_process("kafka", graceful=True), False),
    ("kill_process graceful, held down", lambda: process.kill_process("kafka", True, 5), False),
    ("fail_over_postgres kill", lambda: postgres_failover.fail_over_postgres("kill"), True),
    ("fail_over_postgres stop", lambda: postgres_failover.fail_over_postgres("stop", 10), False),
    ("fail_over_postgres switchover", lambda: postgres_failover.fail_over_postgres("switchover"), False),
    ("oom_kill_replica", lambda: memory.oom_kill_replica(), True),
    ("oom_kill_replica named", lambda: memory.oom_kill_replica("audit-service-1", 32), True),
    ("stop_kafka_broker", lambda: kafka_broker.stop_kafka_broker(), False),
    ("stop_kafka_broker SIGKILL, held down", lambda: kafka_broker.stop_kafka_broker(1, graceful=False), False),
    ("stop_clickhouse", lambda: clickhouse_down.stop_clickhouse(5), False),
    ("stall_clickhouse", lambda: clickhouse_stall.stall_clickhouse(), False),
    ("partition_network", lambda: network_partition.partition_network("kafka", duration=10), False),
    ("add_latency", lambda: network_latency.add_latency("postgres", 100), False),
    ("add_packet_loss", lambda: network_loss.add_packet_loss("clickhouse", 30), False),
    ("change_checker_threshold", lambda: checker_config.change_checker_threshold("slow_query", "threshold_ms", 5),
     False),
    ("hang_replicas", lambda: replica_hang.hang_replicas(count=1, duration=60), False),
]


@pytest.mark.parametrize(("call", "instant"), [(c, i) for _, c, i in CALLS], ids=[n for n, _, _ in CALLS])
def test_each_fault_decides_instant_from_its_arguments_as_the_old_rule_did(monkeypatch: pytest.MonkeyPatch,
                                                                           call: Callable[[], Any],
                                                                           instant: bool) -> None:
    seen: list[tuple[str, dict[str, Any], bool]] = []

    def recorded(module: str, function: str, arguments: dict[str, Any], *args: Any, instant: bool) -> dict[str, Any]:
        seen.append((f"{module}.{function}", arguments, instant))
        return {}

    monkeypatch.setattr(engine, "inject", recorded)
    call()
    [(action, arguments, decided)] = seen
    assert decided is instant
    assert decided is rule_before_the_split(action, arguments), (action, arguments)


@pytest.fixture
def configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for var in ("RESILIENCE_TARGET_CONFIG", "RESILIENCE_STATE_DIR", "RESILIENCE_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    return {"fault_state_dir": str(tmp_path / "journal"), "run_id": "instant-test", "watchdog": False}


def _inject_with_a_stand_in_backend(monkeypatch: pytest.MonkeyPatch, configuration: dict[str, Any],
                                    instant: bool, duration: float | None) -> journal.FaultWindow:
    def backend(**arguments: Any) -> dict[str, Any]:
        return {"would": "nothing"} if arguments["configuration"]["dry_run"] else {"changed": "nothing"}

    monkeypatch.setattr(engine, "_impl", lambda *_: backend)
    monkeypatch.setattr(journal, "start_heartbeat", lambda _settings: None)
    result = engine.inject("faults.process", "kill_process", {"program": "kafka"}, "restore_process",
                           {"program": "kafka"}, None, configuration, None, instant=instant)
    [(path, entry)] = journal.entries(Path(configuration["fault_state_dir"]), "instant-test")
    assert entry["instant"] is instant and entry["id"] == result["fault_id"]
    if duration:  # as an expiry would have recorded it
        journal.update(path, expires_at=entry["created_at"] + duration)
    window = journal.fault_window(resolve(configuration).fault_state_dir, "instant-test")
    assert window is not None and window.start == entry["created_at"]
    return window


def test_an_instant_fault_is_journaled_so_its_window_ends_where_it_starts(monkeypatch: pytest.MonkeyPatch,
                                                                          configuration: dict[str, Any]) -> None:
    window = _inject_with_a_stand_in_backend(monkeypatch, configuration, True, None)
    assert window.end == window.start


def test_a_fault_that_lasts_ends_at_its_expiry(monkeypatch: pytest.MonkeyPatch,
                                               configuration: dict[str, Any]) -> None:
    window = _inject_with_a_stand_in_backend(monkeypatch, configuration, False, 7.0)
    assert window.end == window.start + 7.0
