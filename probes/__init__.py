"""SLO probes of the SQL audit service resilience suite (a Chaos Toolkit extension).

``probes.activities`` holds the Chaos Toolkit probes (measurements judged by an
experiment's tolerances); the modules beside it do the measuring: ``lag`` (from
Kafka), ``prom`` (Prometheus), ``recovery`` (RTO arithmetic), ``dataloss`` (ledger
against the stores, RPO), ``evaluate`` (SLO verdicts of a run) and ``slo`` (the
catalogue in ``docs/slo.yaml``).
"""

import logging
from importlib.metadata import PackageNotFoundError, version

from chaoslib.discovery.discover import discover_probes, initialize_discovery_result
from chaoslib.types import Discovery

__all__ = ["__version__", "discover"]

try:
    __version__ = version("sql-audit-resilience")
except PackageNotFoundError:
    __version__ = "unknown"

logger = logging.getLogger(__name__)


def discover(discover_system: bool = True) -> Discovery:
    """Discover the probes this extension offers.

    ``chaos discover`` cannot reach this package (it resolves the distribution
    ``sql-audit-resilience`` to ``faults``); docs/faults.md, "Discovery", gives the command that calls this.
    """
    logger.info("Discovering activities of the sql-audit-resilience probes")
    discovery = initialize_discovery_result("sql-audit-resilience-probes", __version__, "sql-audit-resilience")
    discovery["activities"].extend(discover_probes("probes.activities"))
    return discovery
