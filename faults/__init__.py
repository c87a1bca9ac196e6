"""Fault library of the SQL audit service resilience suite (Chaos Toolkit actions).

Each fault is one module ``faults/<fault>.py`` exporting an inject/remove pair of
activities (``__all__``) that checks its arguments (:mod:`faults.arguments`) and hands them to
:mod:`faults.engine`, which picks the backend that acts from the settings' ``target``:
``faults/local/<fault>.py`` for the embedded stack, ``faults/kubernetes/<fault>.py`` for a
cluster. Every fault is journaled on disk before it is applied and can expire by itself;
``resilience cleanup`` and a per-run watchdog revert what a killed runner left. See
``docs/faults.md``. Discovery of every activity of the suite: :mod:`chaossqlaudit`.
"""

__all__ = ["ACTIVITY_MODULES", "UNDO_ACTIVITIES"]

ACTIVITY_MODULES = (
    "faults.replicas",
    "faults.process",
    "faults.network_partition",
    "faults.network_latency",
    "faults.network_loss",
    "faults.postgres_failover",
    "faults.clickhouse_stall",
    "faults.clickhouse_down",
    "faults.kafka_broker",
    "faults.memory",
    "faults.heap",
    "faults.checker_config",
    "faults.backup",
    "faults.store_loss",
    "faults.poison",
    "faults.postgres_isolation",
    "faults.zookeeper_loss",
    "faults.replica_count",
    "faults.replica_hang",
    "faults.stale_api_key",
)
"""Modules whose ``__all__`` functions are Chaos Toolkit actions (the public face of each fault)."""

UNDO_ACTIVITIES = frozenset({
    "faults.replicas.restore_replicas",
    "faults.process.restore_process",
    "faults.network_partition.remove_partition",
    "faults.network_latency.remove_latency",
    "faults.network_loss.remove_packet_loss",
    "faults.postgres_failover.restore_postgres",
    "faults.clickhouse_stall.resume_clickhouse",
    "faults.clickhouse_down.start_clickhouse",
    "faults.kafka_broker.start_kafka_broker",
    "faults.memory.release_memory_limit",
    "faults.heap.release_heap",
    "faults.checker_config.restore_checker_config",
    "faults.store_loss.restore_from_backup",
    "faults.poison.stop_poison",
    "faults.postgres_isolation.heal_postgres_leader",
    "faults.zookeeper_loss.restore_zookeeper",
    "faults.replica_count.restore_replica_count",
    "faults.replica_hang.resume_replicas",
    "faults.stale_api_key.stop_stale_tokens",
})
"""The undo of every fault (``module.function``, what :func:`faults.engine.inject` journals): the only activities
``resilience cleanup``, the expiry timers and the watchdog run from a journal entry. A journal is a file anyone
can write, so what an entry names is run only if it is one of these (``tests/faults/test_discovery.py`` checks
that every ``engine.inject`` of the fault modules journals one)."""
