"""Kubernetes backend of :mod:`faults.network_latency`: Chaos Mesh NetworkChaos ``delay`` (needs Chaos Mesh)."""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults.kubernetes import chaosmesh
from faults.kubernetes.client import Kube

FAULT = "network-latency"


def add_latency(edge: str, latency_ms: int, jitter_ms: int = 0, stream: str = "downstream",
                duration: float | None = None, configuration: Configuration | None = None,
                secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_latency.add_latency`."""
    what = f"add latency audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        dep = kube.settings.edge(edge, what)
        spec = {"delay": {"latency": f"{latency_ms}ms", "jitter": f"{jitter_ms}ms", "correlation": "0"}}
        return chaosmesh.inject(kube, FAULT, "delay", dep, stream, spec, duration, what)


def remove_latency(edge: str, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_latency.remove_latency`."""
    what = f"remove latency audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        return chaosmesh.remove(kube, FAULT, kube.settings.edge(edge, what))
