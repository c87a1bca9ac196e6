"""The Chaos Toolkit face of sql-audit-resilience: one ``discover()`` for every activity the suite offers.

``chaos discover sql-audit-resilience --no-install`` imports the first top-level package of the
distribution (chaoslib resolves a distribution to one import name, the first in
``top_level.txt``); the Chaos Toolkit convention of a ``chaos<name>`` package makes this one
that package. It sits on top of the layers (it imports the faults, probes and load activities
and nothing imports it), so discovery cannot drift from what the experiments call.

Activities, by module (each module's ``__all__``):

* actions: the faults (``faults.<fault>``) and the load (``loadtests.activities``);
* probes: the measurements (``probes.activities``; the split-brain canary writer, ``probes.splitbrain``).
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from chaoslib.discovery.discover import discover_actions, discover_probes, initialize_discovery_result
from chaoslib.types import DiscoveredActivities, Discovery

from faults import ACTIVITY_MODULES as FAULT_MODULES

__all__ = ["ACTION_MODULES", "PROBE_MODULES", "__version__", "activities", "discover"]

try:
    __version__ = version("sql-audit-resilience")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "unknown"

logger = logging.getLogger(__name__)

ACTION_MODULES: tuple[str, ...] = (*FAULT_MODULES, "loadtests.activities")
"""Modules whose ``__all__`` functions are Chaos Toolkit actions."""
PROBE_MODULES: tuple[str, ...] = ("probes.activities", "probes.splitbrain")
"""Modules whose ``__all__`` functions are Chaos Toolkit probes."""


def activities() -> DiscoveredActivities:
    """Every action and probe of the suite: name, module, arguments and docstring."""
    found: DiscoveredActivities = []
    for module in ACTION_MODULES:
        found.extend(discover_actions(module))
    for module in PROBE_MODULES:
        found.extend(discover_probes(module))
    return found


def discover(discover_system: bool = True) -> Discovery:
    """Discover the faults, load actions and probes of the suite (``chaos discover sql-audit-resilience``).

    ``discover_system`` is accepted for Chaos Toolkit's interface; no system information is gathered.
    """
    logger.info("Discovering the activities of sql-audit-resilience")
    discovery = initialize_discovery_result("sql-audit-resilience", __version__, "sql-audit-resilience")
    discovery["activities"].extend(activities())
    return discovery
