"""Fault library of the SQL audit service resilience suite (a Chaos Toolkit extension).

Each fault is one module ``faults/<fault>.py`` exporting an inject/remove pair
of activities (``__all__``); the backend that acts is picked by
``configuration["target"]``: ``faults/local/<fault>.py`` for the embedded stack,
``faults/kubernetes/<fault>.py`` later. Every fault is journaled on disk before
it is applied and can expire by itself; ``resilience cleanup`` and a per-run
watchdog revert what a killed runner left. See ``docs/faults.md``.
"""

import logging
from importlib.metadata import PackageNotFoundError, version

from chaoslib.discovery.discover import discover_actions, initialize_discovery_result
from chaoslib.types import DiscoveredActivities, Discovery

__all__ = ["ACTIVITY_MODULES", "__version__", "discover"]

try:
    __version__ = version("sql-audit-resilience")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "unknown"

logger = logging.getLogger(__name__)

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
    "faults.config",
)
"""Modules whose ``__all__`` functions are Chaos Toolkit actions."""


def load_exported_activities() -> DiscoveredActivities:
    """Every action exported by :data:`ACTIVITY_MODULES` (names, arguments, docstrings)."""
    activities: DiscoveredActivities = []
    for module in ACTIVITY_MODULES:
        activities.extend(discover_actions(module))
    return activities


def discover(discover_system: bool = True) -> Discovery:
    """Discover the faults this extension offers (``chaos discover sql-audit-resilience --no-install``).

    ``chaos discover`` takes a distribution name, not a package name: see docs/faults.md, "Discovery".

    ``discover_system`` is accepted for Chaos Toolkit's interface; no system information is gathered.
    """
    logger.info("Discovering activities of the sql-audit-resilience fault library")
    discovery = initialize_discovery_result("sql-audit-resilience-faults", __version__, "sql-audit-resilience")
    discovery["activities"].extend(load_exported_activities())
    return discovery
