"""Local backend of :mod:`faults.network_latency`: toxiproxy ``latency`` toxics."""

from typing import Any

from chaoslib.exceptions import ActivityFailed
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
    if not isinstance(latency_ms, int) or isinstance(latency_ms, bool) or latency_ms <= 0:
        raise ActivityFailed(f"{what}: latency_ms={latency_ms!r} must be a positive integer")
    if not isinstance(jitter_ms, int) or isinstance(jitter_ms, bool) or not 0 <= jitter_ms <= latency_ms:
        raise ActivityFailed(f"{what}: jitter_ms={jitter_ms!r} must be an integer in 0..latency_ms")
    return _toxics.add(settings, edge, PREFIX, "latency", stream, {"latency": latency_ms, "jitter": jitter_ms},
                       1.0, what)


def remove_latency(edge: str, configuration: Configuration | None = None,
                   secrets: Secrets | None = None) -> dict[str, Any]:
    """Local backend of :func:`faults.network_latency.remove_latency`."""
    return _toxics.remove(resolve(configuration), edge, PREFIX,
                          f"remove latency audit-service<->{edge}")
