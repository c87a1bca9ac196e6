"""A real single-node Kubernetes cluster on this machine (``python -m cluster up | status | down``).

The lowest layer, like the embedded stack: it imports nothing of ``resilience``, ``faults``,
``probes`` or ``loadtests``. See docs/cluster.md.
"""

from cluster.core import ClusterStatus, ComponentStatus, LocalCluster
from cluster.errors import ClusterError, ComponentError, MissingToolError
from cluster.settings import ClusterSettings

__all__ = ["ClusterError", "ClusterSettings", "ClusterStatus", "ComponentError", "ComponentStatus", "LocalCluster",
           "MissingToolError"]
