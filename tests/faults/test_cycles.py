"""Each fault, injected for real and reverted: the effect is observable, then the stack is at baseline
and the journal shows the fault applied and reverted."""

import math
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
import requests
from chaoslib.exceptions import ActivityFailed

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
from faults.local import proxies
from stack.core import LocalStack
from tests.faults.conftest import baseline_problems, wait_baseline

pytestmark = pytest.mark.stack


def _proxy(stack: LocalStack, edge: str) -> dict[str, Any]:
    return requests.get(f"{stack.endpoints.toxiproxy_url}/proxies/{edge}", timeout=5).json()


def _pg_via_proxy(stack: LocalStack, timeout: int = 2) -> float:
    """Seconds for connect + SELECT 1 through the service's postgres proxy (raises if it fails)."""
    t0 = time.monotonic()
    kwargs = stack.ctx.postgres_kwargs(via_proxy=True)
    with psycopg.connect(**kwargs, connect_timeout=timeout,  # type: ignore[arg-type]
                         options=f"-c statement_timeout={timeout * 1000}") as conn:
        conn.execute("SELECT 1")
    return time.monotonic() - t0


def _state(stack: LocalStack, program: str) -> dict[str, Any]:
    return stack.supervisor.process_info()[program]


def _check_journal(state_dir: Path, fault: str) -> None:
    entries = [e for _, e in journal.entries(state_dir)]
    assert [e["fault"] for e in entries] == [fault]
    entry = entries[0]
    assert entry["status"] == "reverted", entry
    assert entry["undo"]["activity"].startswith(f"faults.{fault}.")
    for key in ("run_id", "target", "parameters", "created_at", "expires_at", "reverted_at"):
        assert key in entry


def _cycle(stack: LocalStack, state_dir: Path, fault: str, inject: Callable[[], dict[str, Any]],
           during: Callable[[dict[str, Any]], None], remove: Callable[[], dict[str, Any]]) -> None:
    result = inject()
    try:
        assert journal.read(Path(result["journal"]))["status"] == "active"  # type: ignore[index]
        during(result)
    finally:
        removed = remove()
    assert result["fault_id"] in removed["reverted_entries"]
    wait_baseline(stack)
    _check_journal(state_dir, fault)
    assert remove()["reverted_entries"] == []  # idempotent: a second rollback is a no-op success


def test_partition_blackhole_postgres(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    def during(_: dict[str, Any]) -> None:
        assert {t["name"] for t in _proxy(stack, "postgres")["toxics"]} == {
            "chaos-partition-upstream", "chaos-partition-downstream"}
        with pytest.raises(psycopg.OperationalError):
            _pg_via_proxy(stack)

    _cycle(stack, state_dir, "network_partition",
           lambda: network_partition.partition_network("postgres", configuration=config), during,
           lambda: network_partition.remove_partition("postgres", configuration=config))
    assert _pg_via_proxy(stack, 5) < 5


def test_partition_refuse_clickhouse(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    def during(_: dict[str, Any]) -> None:
        assert _proxy(stack, "clickhouse")["enabled"] is False
        with pytest.raises(OSError), socket.create_connection(
                ("127.0.0.1", stack.endpoints.port("proxy_clickhouse")), timeout=2):
            pass

    _cycle(stack, state_dir, "network_partition",
           lambda: network_partition.partition_network("clickhouse", "refuse", configuration=config), during,
           lambda: network_partition.remove_partition("clickhouse", configuration=config))


def test_partition_reset_kafka(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    def during(_: dict[str, Any]) -> None:
        assert {t["type"] for t in _proxy(stack, "kafka")["toxics"]} == {"reset_peer"}

    _cycle(stack, state_dir, "network_partition",
           lambda: network_partition.partition_network("kafka", "reset", configuration=config), during,
           lambda: network_partition.remove_partition("kafka", configuration=config))


def test_latency_postgres(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    baseline = min(_pg_via_proxy(stack, 5) for _ in range(3))

    def during(_: dict[str, Any]) -> None:
        slow = _pg_via_proxy(stack, 10)
        assert slow >= 0.3 + baseline * 0.5, f"{slow:.3f} s with 300 ms latency vs {baseline:.3f} s baseline"

    _cycle(stack, state_dir, "network_latency",
           lambda: network_latency.add_latency("postgres", 300, 0, "downstream", configuration=config), during,
           lambda: network_latency.remove_latency("postgres", configuration=config))
    assert _pg_via_proxy(stack, 5) < 0.3


def test_packet_loss_kafka(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    def during(_: dict[str, Any]) -> None:
        toxics = _proxy(stack, "kafka")["toxics"]
        assert [(t["type"], t["toxicity"], t["stream"]) for t in toxics] == [("timeout", 0.25, "downstream")]

    _cycle(stack, state_dir, "network_loss",
           lambda: network_loss.add_packet_loss("kafka", 25, configuration=config), during,
           lambda: network_loss.remove_packet_loss("kafka", configuration=config))


def test_packet_loss_100_percent_blocks_postgres(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    def during(_: dict[str, Any]) -> None:
        with pytest.raises(psycopg.OperationalError):
            _pg_via_proxy(stack)

    _cycle(stack, state_dir, "network_loss",
           lambda: network_loss.add_packet_loss("postgres", 100, "both", configuration=config), during,
           lambda: network_loss.remove_packet_loss("postgres", configuration=config))


def test_kill_process_sigkill_is_restarted(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    old = _state(stack, "prometheus")["pid"]

    def during(result: dict[str, Any]) -> None:
        assert result["details"]["pid"] == old
        assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE

    _cycle(stack, state_dir, "process", lambda: process.kill_process("prometheus", configuration=config), during,
           lambda: process.restore_process("prometheus", configuration=config))
    assert _state(stack, "prometheus")["pid"] != old


def test_kill_process_graceful_with_downtime(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    def during(_: dict[str, Any]) -> None:
        assert _state(stack, "kafka")["statename"] == "STOPPED"

    _cycle(stack, state_dir, "process",
           lambda: process.kill_process("kafka", True, 60, configuration=config), during,
           lambda: process.restore_process("kafka", configuration=config))


def test_kill_replicas_of_a_group(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    # The audit-service replicas when the stack has them; any supervisor group exercises the same code.
    infos = stack.supervisor.process_info()
    group = "audit-service" if any(i["group"] == "audit-service" for i in infos.values()) else "infra"
    before = {n: i["pid"] for n, i in infos.items() if i["group"] == group}
    expected = math.ceil(len(before) * 0.4)

    def during(result: dict[str, Any]) -> None:
        killed = result["details"]["killed"]
        assert len(killed) == expected and result["details"]["of"] == len(before)
        assert all(result["details"]["pids"][n] == before[n] for n in killed)

    _cycle(stack, state_dir, "replicas",
           lambda: replicas.kill_replicas(percentage=40, group=group, configuration=config), during,
           lambda: replicas.restore_replicas(group, configuration=config))
    after = {n: i["pid"] for n, i in stack.supervisor.process_info().items() if n in before}
    assert sum(after[n] != before[n] for n in before) == expected


def test_postgres_failover_stop(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    def during(_: dict[str, Any]) -> None:
        assert _state(stack, "postgres")["statename"] == "STOPPED"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(**stack.ctx.postgres_kwargs(), connect_timeout=2)  # type: ignore[arg-type]

    _cycle(stack, state_dir, "postgres_failover",
           lambda: postgres_failover.fail_over_postgres(configuration=config), during,
           lambda: postgres_failover.restore_postgres(configuration=config))


def test_postgres_failover_kill(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    old = _state(stack, "postgres")["pid"]
    _cycle(stack, state_dir, "postgres_failover",
           lambda: postgres_failover.fail_over_postgres("kill", configuration=config),
           lambda r: None if r["details"]["pid"] == old else pytest.fail("wrong pid"),
           lambda: postgres_failover.restore_postgres(configuration=config))
    assert _state(stack, "postgres")["pid"] != old


def test_clickhouse_stall(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    def during(result: dict[str, Any]) -> None:
        assert psutil.Process(result["details"]["pid"]).status() == psutil.STATUS_STOPPED
        assert _state(stack, "clickhouse")["statename"] == "RUNNING"  # supervisord does not notice
        assert any("clickhouse" in p for p in baseline_problems(stack))

    _cycle(stack, state_dir, "clickhouse_stall",
           lambda: clickhouse_stall.stall_clickhouse(None, configuration=config), during,
           lambda: clickhouse_stall.resume_clickhouse(configuration=config))


def test_clickhouse_down(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    _cycle(stack, state_dir, "clickhouse_down",
           lambda: clickhouse_down.stop_clickhouse(configuration=config),
           lambda _: None if _state(stack, "clickhouse")["statename"] == "STOPPED" else pytest.fail("not stopped"),
           lambda: clickhouse_down.start_clickhouse(configuration=config))


def test_kafka_broker_loss(stack: LocalStack, config: dict[str, Any], state_dir: Path) -> None:
    def during(_: dict[str, Any]) -> None:
        assert _state(stack, "kafka")["statename"] == "STOPPED"
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", stack.endpoints.port("kafka")), 2):
            pass

    _cycle(stack, state_dir, "kafka_broker",
           lambda: kafka_broker.stop_kafka_broker(configuration=config), during,
           lambda: kafka_broker.start_kafka_broker(configuration=config))


def test_failed_apply_is_journaled_first_and_undone(stack: LocalStack, config: dict[str, Any], state_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry exists before the apply; an apply that fails half-way is undone and marked failed."""
    real_add = proxies.Toxiproxy.add_toxic
    seen_before_apply: list[str] = []

    def flaky_add(self: proxies.Toxiproxy, edge: str, name: str, *args: Any) -> None:
        seen_before_apply.extend(e["status"] for _, e in journal.entries(state_dir))
        if name.endswith("downstream"):
            raise ActivityFailed("simulated toxiproxy failure")
        real_add(self, edge, name, *args)

    monkeypatch.setattr(proxies.Toxiproxy, "add_toxic", flaky_add)
    with pytest.raises(ActivityFailed, match="simulated"):
        network_partition.partition_network("kafka", configuration=config)
    assert seen_before_apply and set(seen_before_apply) == {"applying"}
    assert [e["status"] for _, e in journal.entries(state_dir)] == ["failed"]
    assert _proxy(stack, "kafka")["toxics"] == []  # the upstream toxic that did get in was removed
