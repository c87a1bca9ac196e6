"""Kubernetes backend of :mod:`faults.network_loss`: toxiproxy ``timeout`` toxics in the servers beside the
service where the target file lists them (``k8s_toxiproxy_urls``, :mod:`.toxics`: the local approximation, a
share of *connections* black-holed), else a Chaos Mesh NetworkChaos ``loss`` (needs Chaos Mesh), which drops a
share of *packets* (``tc netem loss``); ``timeout_ms`` has no meaning there and must stay 0.
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.kubernetes import chaosmesh, toxics
from faults.kubernetes.client import Kube

FAULT = "network-loss"
PREFIX = "chaos-loss"


def add_packet_loss(edge: str, loss_percent: float, stream: str = "downstream", timeout_ms: int = 0,
                    duration: float | None = None, configuration: Configuration | None = None,
                    secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_loss.add_packet_loss`."""
    what = f"add packet loss audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        if kube.settings.toxiproxy_urls:
            return toxics.add(kube, edge, PREFIX, "timeout", stream, {"timeout": timeout_ms},
                              loss_percent / 100.0, what)
        if timeout_ms:
            raise ActivityFailed(f"{what}: timeout_ms={timeout_ms!r}: Chaos Mesh drops packets (tc netem), "
                                 "there is no connection to close; leave timeout_ms 0")
        dep = kube.settings.edge(edge, what)
        spec = {"loss": {"loss": f"{loss_percent:g}", "correlation": "0"}}
        return chaosmesh.inject(kube, FAULT, "loss", dep, stream, spec, duration, what)


def remove_packet_loss(edge: str, configuration: Configuration | None = None,
                       secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_loss.remove_packet_loss`."""
    what = f"remove packet loss audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        if kube.settings.toxiproxy_urls:
            return toxics.remove(kube, edge, PREFIX, what)
        return chaosmesh.remove(kube, FAULT, kube.settings.edge(edge, what))
