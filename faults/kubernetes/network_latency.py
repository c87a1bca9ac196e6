"""Kubernetes backend of :mod:`faults.network_latency`: Chaos Mesh NetworkChaos ``delay`` (needs Chaos Mesh)."""

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from faults.kubernetes import chaosmesh
from faults.kubernetes.client import Kube

FAULT = "network-latency"


def add_latency(edge: str, latency_ms: int, jitter_ms: int = 0, stream: str = "downstream",
                duration: float | None = None, configuration: Configuration | None = None,
                secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_latency.add_latency`."""
    what = f"add latency audit-service<->{edge}"
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int | float) or latency_ms <= 0:
        raise ActivityFailed(f"{what}: latency_ms={latency_ms!r} must be a number > 0")
    if isinstance(jitter_ms, bool) or not isinstance(jitter_ms, int | float) or not 0 <= jitter_ms <= latency_ms:
        raise ActivityFailed(f"{what}: jitter_ms={jitter_ms!r} must be in [0, latency_ms]")
    with Kube(configuration, what) as kube:
        dep = kube.settings.edge(edge, what)
        spec = {"delay": {"latency": f"{latency_ms:g}ms", "jitter": f"{jitter_ms:g}ms", "correlation": "0"}}
        return chaosmesh.inject(kube, FAULT, "delay", dep, stream, spec, duration, what)


def remove_latency(edge: str, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_latency.remove_latency`."""
    what = f"remove latency audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        return chaosmesh.remove(kube, FAULT, kube.settings.edge(edge, what))
