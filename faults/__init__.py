"""Fault library of the SQL audit service resilience suite (Chaos Toolkit actions).

Each fault is one module ``faults/<fault>.py`` exporting an inject/remove pair of
activities (``__all__``) that checks its arguments (:mod:`faults.arguments`) and hands them to
:mod:`faults.engine`, which picks the backend that acts from the settings' ``target``:
``faults/local/<fault>.py`` for the embedded stack, ``faults/kubernetes/<fault>.py`` for a
cluster. Every fault is journaled on disk before it is applied and can expire by itself;
``resilience cleanup`` and a per-run watchdog revert what a killed runner left. See
``docs/faults.md``. Discovery of every activity of the suite: :mod:`chaossqlaudit`.
"""

__all__ = ["ACTIVITY_MODULES"]

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
