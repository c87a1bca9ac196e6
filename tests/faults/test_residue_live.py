"""The residue audit's readers on the real stack: each fault left in place is named; removed, nothing is left.

For every local fault: snapshot, inject (no expiry), snapshot again — the diff must name what the
fault did as a leftover — then remove it and settle — the diff must be clean (a restart is a note).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faults import (
    checker_config,
    clickhouse_down,
    clickhouse_stall,
    memory,
    network_latency,
    network_partition,
    postgres_failover,
    replicas,
    residue,
)
from stack.core import LocalStack
from target.settings import resolve

pytestmark = pytest.mark.stack

Call = Callable[[dict[str, Any]], Any]

FAULTS: dict[str, tuple[Call, Call, list[str]]] = {
    "partition": (lambda c: network_partition.partition_network("clickhouse", configuration=c),
                  lambda c: network_partition.remove_partition("clickhouse", configuration=c),
                  ["toxiproxy proxy clickhouse: toxic chaos-partition-upstream", "fault network_partition"]),
    "partition-refuse": (lambda c: network_partition.partition_network("postgres", "refuse", configuration=c),
                         lambda c: network_partition.remove_partition("postgres", configuration=c),
                         ["toxiproxy proxy postgres: DISABLED"]),
    "latency": (lambda c: network_latency.add_latency("kafka", 50, configuration=c),
                lambda c: network_latency.remove_latency("kafka", configuration=c),
                ["toxiproxy proxy kafka: toxic chaos-latency-downstream"]),
    "stall": (lambda c: clickhouse_stall.stall_clickhouse(None, configuration=c),
              lambda c: clickhouse_stall.resume_clickhouse(configuration=c),
              ["program clickhouse: pid(s)", "frozen (SIGSTOP)"]),
    "clickhouse-down": (lambda c: clickhouse_down.stop_clickhouse(configuration=c),
                        lambda c: clickhouse_down.start_clickhouse(configuration=c),
                        ["program clickhouse: STOPPED (was RUNNING before the run)",
                         "component clickhouse: unhealthy"]),
    "postgres-stop": (lambda c: postgres_failover.fail_over_postgres("stop", configuration=c),
                      lambda c: postgres_failover.restore_postgres(configuration=c),
                      ["program postgres: STOPPED"]),
    "checker-config": (lambda c: checker_config.change_checker_threshold("slow_query", "threshold_ms", 3000,
                                                                          configuration=c),
                       lambda c: checker_config.restore_checker_config(configuration=c),
                       ["content changed", "checkers.yaml.before-chaos left"]),
    "oom": (lambda c: memory.oom_kill_replica(configuration=c),
            lambda c: memory.release_memory_limit(configuration=c),
            ["left by the OOM fault"]),
}


@pytest.fixture
def settings(config: dict[str, Any]) -> Any:
    return resolve(config)


def _before(settings: Any) -> dict[str, Any]:
    """A snapshot once the stack is at rest (the previous test's replicas may still be rejoining)."""
    deadline = time.monotonic() + 120
    while True:
        snap = residue.snapshot(settings)
        if residue.diff(residue.at_rest(snap), snap, "at rest").clean or time.monotonic() > deadline:
            return snap
        time.sleep(1)


def test_a_stack_at_rest_matches_itself_and_the_rest_reference(stack: LocalStack, settings: Any) -> None:
    snap = _before(settings)
    assert residue.diff(residue.at_rest(snap), snap, "at rest").clean
    again = residue.snapshot(settings)
    audit = residue.diff(snap, again)
    assert audit.clean, audit.describe()
    assert set(snap["items"]) >= {"toxiproxy", "programs", "health", "kafka", "checker_config", "cgroups", "journal",
                                  "processes"}
    print(f"\nsnapshot of the minimal stack: {again['took_s']} s")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_left_in_place_is_named_and_its_removal_leaves_nothing(stack: LocalStack, config: dict[str, Any],
                                                                        settings: Any, fault: str) -> None:
    inject, remove, named = FAULTS[fault]
    cfg = {**config, "watchdog": False}
    before = _before(settings)
    inject(cfg)
    try:
        during = residue.diff(before, residue.snapshot(settings))
        found = " | ".join(map(str, during.leftovers))
        for text in named:
            assert text in found, f"{fault}: {text!r} not named in: {found}"
    finally:
        remove(cfg)
    _, audit, waited = residue.settle(settings, before, timeout=120)
    assert audit.clean, f"{fault} removed, yet after {waited:.0f} s: {audit.describe()}"
    print(f"\n{fault}: named {len(during.leftovers)} leftovers; back {waited:.1f} s after the remove "
          f"({'; '.join(map(str, audit.notes)) or 'no change'})")


def test_a_replica_the_run_killed_and_supervisord_restarted_is_not_residue(stack: LocalStack,
                                                                          config: dict[str, Any],
                                                                          settings: Any) -> None:
    before = _before(settings)
    killed = replicas.kill_replicas(count=1, configuration={**config, "watchdog": False})["details"]["killed"][0]
    replicas.restore_replicas(configuration={**config, "watchdog": False})
    _, audit, _ = residue.settle(settings, before, timeout=120)
    assert audit.clean, audit.describe()
    assert f"program {killed}: restarted during the run" in " | ".join(map(str, audit.notes))


@pytest.fixture
def stray(stack: LocalStack) -> Iterator[Callable[[list[str], Path | None], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, cwd=str(cwd) if cwd else None, start_new_session=True)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.kill()
            proc.wait(10)


def test_processes_left_behind_are_named(stack: LocalStack, settings: Any,
                                         stray: Callable[[list[str], Path | None], subprocess.Popen[bytes]]) -> None:
    before = _before(settings)
    orphan = stray(["sleep", "300"], stack.data_dir)  # what a restarted program may leave in its directory
    load = stray([sys.executable, "-c", "import time; time.sleep(300)", "locust", "--kafka-bootstrap",
                  str(settings.kafka_bootstrap)], None)  # a load generator producing into this stack
    time.sleep(0.5)
    found = " | ".join(map(str, residue.diff(before, residue.snapshot(settings)).leftovers))
    assert f"process pid {orphan.pid}: left in the stack's directory" in found, found
    assert f"load generator pid {load.pid}: still running" in found, found
