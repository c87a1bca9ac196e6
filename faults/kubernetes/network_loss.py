"""Kubernetes backend of :mod:`faults.network_loss`: Chaos Mesh NetworkChaos ``loss`` (needs Chaos Mesh).

Unlike the local approximation (a share of *connections* black-holed), this drops a share of
*packets* (``tc netem loss``); ``timeout_ms`` has no meaning here and must stay 0.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.kubernetes import chaosmesh
from faults.kubernetes.client import Kube

FAULT = "network-loss"


def add_packet_loss(edge: str, loss_percent: float, stream: str = "downstream", timeout_ms: int = 0,
                    duration: float | None = None, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_loss.add_packet_loss`."""
    what = f"add packet loss audit-service<->{edge}"
    if timeout_ms:
        raise ActivityFailed(f"{what}: timeout_ms={timeout_ms!r}: kubernetes drops packets (tc netem), "
                             "there is no connection to close; leave timeout_ms 0")
    with Kube(configuration, what) as kube:
        dep = kube.settings.edge(edge, what)
        spec = {"loss": {"loss": f"{loss_percent:g}", "correlation": "0"}}
        return chaosmesh.inject(kube, FAULT, "loss", dep, stream, spec, duration, what)


def remove_packet_loss(edge: str, configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_loss.remove_packet_loss`."""
    what = f"remove packet loss audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        return chaosmesh.remove(kube, FAULT, kube.settings.edge(edge, what))
