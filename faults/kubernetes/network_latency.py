"""Kubernetes backend of :mod:`faults.network_latency`: toxiproxy ``latency`` toxics in the servers beside the
service where the target file lists them (``k8s_toxiproxy_urls``, :mod:`.toxics`), else a Chaos Mesh NetworkChaos
``delay`` (needs Chaos Mesh)."""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults.kubernetes import chaosmesh, toxics
from faults.kubernetes.client import Kube

FAULT = "network-latency"
PREFIX = "chaos-latency"


def add_latency(edge: str, latency_ms: int, jitter_ms: int = 0, stream: str = "downstream",
                duration: float | None = None, configuration: Configuration | None = None,
                secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_latency.add_latency`."""
    what = f"add latency audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        if kube.settings.toxiproxy_urls:
            return toxics.add(kube, edge, PREFIX, "latency", stream, {"latency": latency_ms, "jitter": jitter_ms},
                              1.0, what)
        dep = kube.settings.edge(edge, what)
        spec = {"delay": {"latency": f"{latency_ms}ms", "jitter": f"{jitter_ms}ms", "correlation": "0"}}
        return chaosmesh.inject(kube, FAULT, "delay", dep, stream, spec, duration, what)


def remove_latency(edge: str, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Kubernetes backend of :func:`faults.network_latency.remove_latency`."""
    what = f"remove latency audit-service<->{edge}"
    with Kube(configuration, what) as kube:
        if kube.settings.toxiproxy_urls:
            return toxics.remove(kube, edge, PREFIX, what)
        return chaosmesh.remove(kube, FAULT, kube.settings.edge(edge, what))
