"""Local backend of :mod:`faults.network_latency`: toxiproxy ``latency`` toxics."""

from typing import Any

from chaoslib.types import Configuration, Secrets

from faults.local import _toxics
from target.settings import resolve

PREFIX = "chaos-latency"


def add_latency(edge: str, latency_ms: int, jitter_ms: int = 0, stream: str = "downstream",
                duration: float | None = None, configuration: Configuration | None = None,
                secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_latency.add_latency`."""
    settings = resolve(configuration)
    what = f"latency audit-service<->{edge}"
    return _toxics.add(settings, edge, PREFIX, "latency", stream, {"latency": latency_ms, "jitter": jitter_ms},
                       1.0, what)


def remove_latency(edge: str, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_latency.remove_latency`."""
    return _toxics.remove(resolve(configuration), edge, PREFIX,
                          f"remove latency audit-service<->{edge}")
